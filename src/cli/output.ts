import { createRequire } from 'node:module';
import type Table from 'cli-table3';

/** Where a command writes: data to `out`, messages to `err`. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

/** The process's standard streams. */
export const processIo: Io = {
  out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
};

/**
 * Characters a terminal must not receive raw from data: C0 and C1 controls (escape sequences,
 * carriage returns that overwrite a line, newlines that break a table), DEL, and the invisible
 * format characters that reorder or hide text — bidi embeddings, overrides and isolates
 * (Trojan Source), marks, zero-width characters, line and paragraph separators, the BOM.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE_FOR_TERMINAL = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/g;

const SHORT_ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * `text` with every character of {@link UNSAFE_FOR_TERMINAL} written as an escape (`\n`,
 * `\u202e`), so names and messages that came from the API show what they hold and cannot move
 * the cursor, recolour the terminal or reverse the text around them.
 */
export function escapeForTerminal(text: string): string {
  return text.replace(UNSAFE_FOR_TERMINAL, (c) => SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Renders rows as a table for people; every cell is escaped with {@link escapeForTerminal}. */
export function renderTable(head: readonly string[], rows: readonly (readonly unknown[])[]): string {
  // Loaded on the first table: `hearth serve` prints none, and never holds cli-table3.
  const TableOf = createRequire(import.meta.url)('cli-table3') as typeof Table;
  const table = new TableOf({ head: head.map(escapeForTerminal), style: { head: [], border: [] } });
  for (const row of rows) table.push(row.map((c) => escapeForTerminal(cellText(c))));
  return table.toString();
}

function cellText(c: unknown): string {
  if (c === null || c === undefined) return '';
  if (typeof c === 'string') return c;
  if (typeof c === 'number' || typeof c === 'boolean' || typeof c === 'bigint') return c.toString();
  return JSON.stringify(c) ?? '';
}

/**
 * Renders API rows as a table: `columns` pairs each heading with the row field it shows; an absent
 * or null field shows as `-`.
 */
export function renderColumns(columns: readonly (readonly [heading: string, field: string])[], rows: readonly Readonly<Record<string, unknown>>[]): string {
  return renderTable(
    columns.map(([heading]) => heading),
    rows.map((r) => columns.map(([, field]) => (r[field] === null || r[field] === undefined ? '-' : r[field]))),
  );
}

/** Renders a value as indented JSON for scripts. */
export function renderJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
