import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderOpKindTable, renderTransitionTable } from '../../../src/state/state-machine.js';

const DOC = resolve(import.meta.dirname, '../../../docs/state.md');

function block(doc: string, name: string): string | undefined {
  const m = new RegExp(`<!-- BEGIN ${name} \\(generated\\) -->\\n([\\s\\S]*?)\\n<!-- END ${name} -->`).exec(doc);
  return m?.[1];
}

describe('docs/state.md', () => {
  it('shows the transition tables and op kinds exactly as the state machine module has them', async () => {
    const doc = await readFile(DOC, 'utf8');
    // On a mismatch, paste the expected text between the markers.
    expect(block(doc, 'volume-transitions')).toBe(renderTransitionTable('volume'));
    expect(block(doc, 'snapshot-transitions')).toBe(renderTransitionTable('snapshot'));
    expect(block(doc, 'op-kinds')).toBe(renderOpKindTable());
  });
});
