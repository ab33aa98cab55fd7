/**
 * Bounded previews of values a caller sent, for error messages that quote them.
 *
 * A 400 that quotes the offending value helps a client, but the value is the caller's: a 60 kB
 * string, an object nested 10,000 levels deep, a key named `__proto__`, or a getter that throws.
 * {@link preview} renders any value as short JSON-like text: depth, items and length capped,
 * strings cut, and it never throws — an error message can always be built.
 */

/** Longest preview, in characters (the `…` included). */
export const PREVIEW_MAX_CHARS = 80;
/** Deepest nesting shown; deeper containers are written `{…}` / `[…]`. */
export const PREVIEW_MAX_DEPTH = 2;
/** Items shown per array or object before `…`. */
const PREVIEW_MAX_ITEMS = 5;

/** Options of {@link preview}. */
export interface PreviewOptions {
  /** @default {@link PREVIEW_MAX_CHARS} */
  readonly maxChars?: number;
  /** @default {@link PREVIEW_MAX_DEPTH} */
  readonly maxDepth?: number;
}

/**
 * `value` as JSON-like text of at most `maxChars` characters. Strings are quoted and escaped as
 * JSON escapes them (so control and bidi characters never reach a terminal raw), containers
 * deeper than `maxDepth` and items past the fifth are elided, and anything JSON cannot show
 * (undefined, functions, symbols, bigints) is named by its type.
 */
export function preview(value: unknown, options: PreviewOptions = {}): string {
  const maxChars = Math.max(8, options.maxChars ?? PREVIEW_MAX_CHARS);
  const maxDepth = Math.max(0, options.maxDepth ?? PREVIEW_MAX_DEPTH);
  let text: string;
  try {
    text = render(value, maxDepth, maxChars);
  } catch {
    text = '(unprintable value)';
  }
  return text.length > maxChars ? `${text.slice(0, maxChars - 1)}…` : text;
}

/**
 * A string for a message without quotes: cut to `maxChars` characters (with `…`), then escaped
 * as JSON and {@link preview} escape it, so it cannot hold control or bidi characters.
 */
export function previewText(s: string, maxChars = PREVIEW_MAX_CHARS): string {
  const cut = s.length > maxChars ? `${s.slice(0, Math.max(1, maxChars - 1))}…` : s;
  return escapeInvisible(JSON.stringify(cut).slice(1, -1));
}

/** A string as a JSON string literal of about `budget` characters (cut, with `…`, inside the quotes). */
function quote(s: string, budget: number): string {
  const room = Math.max(1, budget - 3);
  const cut = s.length > room ? `${s.slice(0, room)}…` : s;
  return escapeInvisible(JSON.stringify(cut));
}

/**
 * JSON.stringify leaves bidi controls, line and paragraph separators, and other invisible
 * format characters as they are; escape them too, so a quoted value cannot reorder or hide the
 * text around it.
 */
function escapeInvisible(s: string): string {
  return s.replace(/[\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function render(value: unknown, depth: number, budget: number): string {
  switch (typeof value) {
    case 'string':
      return quote(value, budget);
    case 'number':
    case 'boolean':
      return String(value);
    case 'bigint':
      return quote(`${value.toString().slice(0, budget)}n`, budget);
    case 'undefined':
      return 'undefined';
    case 'function':
      return '(function)';
    case 'symbol':
      return '(symbol)';
    case 'object':
      break;
  }
  if (value === null) return 'null';
  const isArray = Array.isArray(value);
  if (depth <= 0) return isArray ? '[…]' : '{…}';
  const parts: string[] = [];
  let used = 2;
  const keys = isArray ? null : Object.keys(value);
  const count = isArray ? (value as unknown[]).length : (keys as string[]).length;
  for (let i = 0; i < count && i < PREVIEW_MAX_ITEMS && used < budget; i++) {
    let item: unknown;
    let prefix = '';
    if (isArray) {
      item = (value as unknown[])[i];
    } else {
      const key = (keys as string[])[i] as string;
      prefix = `${quote(key, budget - used)}: `;
      item = readProperty(value as Record<string, unknown>, key);
    }
    const part = prefix + render(item, depth - 1, budget - used - prefix.length);
    parts.push(part);
    used += part.length + 2;
  }
  if (count > parts.length) parts.push('…');
  return isArray ? `[${parts.join(', ')}]` : `{${parts.join(', ')}}`;
}

/** An own property's value; a getter that throws reads as a marker instead. */
function readProperty(o: Record<string, unknown>, key: string): unknown {
  try {
    return o[key];
  } catch {
    return '(unreadable)';
  }
}

/**
 * Keys the caller sent, for "unexpected keys" messages: each a bounded preview, at most five,
 * then how many more — so a body with 10,000 keys does not come back whole. `quoted` writes
 * them as jsonschema does (`'a', 'b'`); without it as Cinder's filter messages do (`a, b`).
 */
export function previewKeys(keys: readonly string[], options: { readonly quoted?: boolean } = {}): string {
  const shown = 5;
  const listed = keys.slice(0, shown).map((k) => (options.quoted ? `'${previewText(k, 40)}'` : previewText(k, 40)));
  return keys.length > shown ? `${listed.join(', ')} and ${keys.length - shown} more` : listed.join(', ');
}
