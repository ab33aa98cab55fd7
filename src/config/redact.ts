import { optionEntries } from './entries.js';
import type { Config } from './schema.js';

/** Text shown in place of a secret. */
export const REDACTED = '[REDACTED]';

/**
 * Runs of text that may hold a URL: split at whitespace, quotes and angle brackets only, so that
 * a password holding `,` `;` `(` or `]` stays inside its run and is redacted with it.
 */
const RUN_WITH_AT = /[^\s"'`<>]*@[^\s"'`<>]*/g;

/**
 * Removes the password of every `user:password@host` in `text`, with a scheme
 * (`amqp://user:pw@host/vh` → `amqp://user:[REDACTED]@host/vh`) or without one, as libraries
 * write their targets (gRPC's `dns:user:pw@host:2379` → `dns:[REDACTED]@host:2379`). A user
 * without a password (`amqps://hearth@host/vh`, as with `amqp.passwordFile`) is no secret and
 * stays; so do host ids such as `node1@rbd`, which have no `:` before the `@`.
 *
 * Within a run of text that contains `@`, everything from the first `:` of the user part up to
 * the last `@` goes. Where that takes more than a password (`dns:user:pw` loses its user too, a
 * list of URLs in one run loses what lies between the first password and the last `@`), it errs
 * towards hiding: the text is for people and logs, never parsed back.
 */
export function redactUrl(text: string): string {
  if (!text.includes('@')) return text;
  return text.replace(RUN_WITH_AT, redactList);
}

/** A comma that starts another URL (`amqp.url` lists one per node). */
const NEXT_URL = /,(?=[a-z][a-z0-9+.-]*:\/\/)/i;

/**
 * A run that is a list of URLs (`amqp://u:p@a/v,amqp://u:q@b/v`) is redacted URL by URL, so
 * every host stays readable. Where a piece before the last has no `@`, the comma may have been
 * inside a password: then the run is redacted whole, which hides more but never less.
 */
function redactList(run: string): string {
  const pieces = run.split(NEXT_URL);
  if (pieces.length === 1 || pieces.slice(0, -1).some((p) => !p.includes('@') && /^[a-z][a-z0-9+.-]*:\/\/[^/]*:/i.test(p))) return redactRun(run);
  return pieces.map((p) => (p.includes('@') ? redactRun(p) : p)).join(',');
}

function redactRun(run: string): string {
  const at = run.lastIndexOf('@');
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(run);
  // The user part starts after `scheme://`, else at the start of the run. A `/` does not end it:
  // a raw `/` in a password is common enough, and hiding part of a path is harmless.
  const start = scheme ? scheme[0].length : 0;
  const userinfo = run.slice(start, at);
  const colon = userinfo.indexOf(':');
  if (colon < 0) return run;
  const user = userinfo.slice(0, colon);
  // `scheme://:pw@host` has no user to keep: the whole user part goes.
  const kept = scheme && user === '' ? REDACTED : `${user}:${REDACTED}`;
  return `${run.slice(0, start)}${kept}${run.slice(at)}`;
}

/** A copy of the configuration that is safe to print or log: secrets replaced. */
export function redactConfig(config: Config): Record<string, unknown> {
  const copy = structuredClone(config) as unknown as Record<string, unknown>;
  for (const entry of optionEntries) {
    const parts = entry.path.split('.');
    const last = parts.pop() as string;
    const parent = parts.reduce<Record<string, unknown>>((node, p) => node[p] as Record<string, unknown>, copy);
    const value = parent[last];
    if (entry.spec.secret === 'value') {
      if (typeof value === 'string' && value !== '') parent[last] = REDACTED;
    } else if (typeof value === 'string') {
      // Any option may hold a URL by mistake (a password pasted into the wrong one): redact them all.
      parent[last] = redactUrl(value);
    } else if (Array.isArray(value)) {
      parent[last] = value.map((v: unknown) => (typeof v === 'string' ? redactUrl(v) : v));
    }
  }
  return copy;
}

/** `password=…`, `api_token: …`, `"secret": "…"`: a secret-like key, then `=` or `:`, then its value. */
const SECRET_ASSIGNMENT = /(["']?[\w.-]*(?:password|passwd|secret|token|api[_-]?key)[\w.-]*["']?[ \t]*[=:][ \t]*)("[^"\n]*"|'[^'\n]*'|[^\s"']+)/gi;
/** `--password hunter2`, `-password hunter2`: a secret-like option, then its value as the next word. */
const SECRET_OPTION = /(\s|^)(--?[\w-]*(?:password|passwd|secret|token|api-key)[\w-]*[ \t]+)(?!-)(\S+)/gim;
/** `Authorization: Bearer …` / `Basic …`. */
const AUTHORIZATION = /(authorization[ \t]*[=:][ \t]*)(?:(bearer|basic|token)[ \t]+)?\S+/gi;

/**
 * Free text another program wrote (a fence command's output), made fit for a log: URL
 * credentials removed ({@link redactUrl}) and the value after a secret-like key (`password=…`,
 * `token: …`, `--password …`, `Authorization: Bearer …`) replaced. Heuristic, and it errs
 * towards hiding: the text is for people, never parsed back. It cannot know a secret printed
 * bare, so the command should not print one.
 */
export function redactText(text: string): string {
  return redactUrl(text)
    .replace(AUTHORIZATION, (_m, key: string, scheme: string | undefined) => `${key}${scheme ? `${scheme} ` : ''}${REDACTED}`)
    .replace(SECRET_ASSIGNMENT, (_m, key: string) => `${key}${REDACTED}`)
    .replace(SECRET_OPTION, (_m, before: string, option: string) => `${before}${option}${REDACTED}`);
}
