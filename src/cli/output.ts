import Table from 'cli-table3';

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

/** Renders rows as a table for people. */
export function renderTable(head: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const table = new Table({ head: [...head], style: { head: [], border: [] } });
  for (const row of rows) table.push(row.map(cellText));
  return table.toString();
}

function cellText(c: unknown): string {
  if (c === null || c === undefined) return '';
  if (typeof c === 'string') return c;
  if (typeof c === 'number' || typeof c === 'boolean' || typeof c === 'bigint') return c.toString();
  return JSON.stringify(c) ?? '';
}

/** Renders a value as indented JSON for scripts. */
export function renderJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
