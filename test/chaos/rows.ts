/** One row of the fault suite's invariant table, and the helpers every check builds it with. */

/** One row of the printed table. */
export interface InvariantRow {
  readonly name: string;
  readonly result: 'PASS' | 'FAIL';
  readonly detail: string;
}

/** A row: PASS when `pass`. */
export const row = (name: string, pass: boolean, detail: string): InvariantRow => ({ name, result: pass ? 'PASS' : 'FAIL', detail });

/** The first three of `items` and how many there were, for a detail. */
export const few = (items: readonly string[]): string => (items.length > 3 ? `${items.slice(0, 3).join('; ')}; … (${items.length})` : items.join('; '));
