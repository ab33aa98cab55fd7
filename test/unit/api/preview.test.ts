import { describe, expect, it } from 'vitest';
import { preview, PREVIEW_MAX_CHARS, previewKeys, previewText } from '../../../src/preview.js';

describe('preview', () => {
  it('bounds the length of any value', () => {
    const deep = JSON.parse(`${'['.repeat(5_000)}${']'.repeat(5_000)}`) as unknown;
    const wide = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, 'v'.repeat(100)]));
    for (const value of ['x'.repeat(60_000), deep, wide, Array.from({ length: 10_000 }, () => 1), { a: { b: { c: { d: 1 } } } }]) {
      expect(preview(value).length).toBeLessThanOrEqual(PREVIEW_MAX_CHARS);
    }
    expect(preview('x'.repeat(60_000))).toMatch(/^"x+…"$/);
    expect(preview({ a: { b: { c: 1 } } })).toBe('{"a": {"b": {…}}}');
    expect(preview([1, 2, 3, 4, 5, 6, 7])).toBe('[1, 2, 3, 4, 5, …]');
  });

  it('never throws', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const getter = Object.defineProperty({}, 'boom', { enumerable: true, get: () => { throw new Error('no'); } });
    const hostile = new Proxy({}, { ownKeys: () => { throw new Error('no'); } });
    for (const value of [cyclic, getter, hostile, undefined, Symbol('s'), () => 1, 10n ** 100n, Object.create(null) as object]) {
      expect(() => preview(value)).not.toThrow();
    }
    expect(preview(hostile)).toBe('(unprintable value)');
    expect(preview(getter)).toBe('{"boom": "(unreadable)"}');
  });

  it('escapes control and bidi characters, so a quoted value cannot hide the text around it', () => {
    expect(preview('a\u202eb\u0000c\u2066')).toBe('"a\\u202eb\\u0000c\\u2066"');
    expect(previewText('x\u001b[31my')).toBe('x\\u001b[31my');
    expect(previewText('y'.repeat(100), 10)).toBe('yyyyyyyyy…');
  });

  it('lists at most five keys, then how many more', () => {
    expect(previewKeys(['a', 'b'])).toBe('a, b');
    expect(previewKeys(['a', 'b'], { quoted: true })).toBe("'a', 'b'");
    expect(previewKeys(Array.from({ length: 10_000 }, (_, i) => `k${i}`))).toBe('k0, k1, k2, k3, k4 and 9995 more');
  });
});
