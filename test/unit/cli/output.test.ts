import { describe, expect, it } from 'vitest';
import { escapeForTerminal, renderTable } from '../../../src/cli/output.js';

describe('CLI tables', () => {
  it('escape control and bidi characters in every cell', () => {
    const name = 'evil\u202e\u2066txt.exe\u001b[2J\r\nnext';
    const table = renderTable(['ID', 'Name\u0007'], [['1', name], [2, { nested: '\u200f' }]]);
    // eslint-disable-next-line no-control-regex -- the characters that must not reach a terminal
    expect(table).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f]/);
    expect(table).toContain('evil\\u202e\\u2066txt.exe\\u001b[2J\\r\\nnext');
    expect(table).toContain('Name\\u0007');
  });

  it('leave ordinary text alone', () => {
    expect(escapeForTerminal('vol-1 ünïcödé 日本 ✓')).toBe('vol-1 ünïcödé 日本 ✓');
  });
});
