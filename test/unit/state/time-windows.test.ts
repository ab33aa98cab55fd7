import { describe, expect, it } from 'vitest';
import { TimeWindows, type WindowHint } from '../../../src/state/etcd-time-windows.js';
import { TIME_MAX, timeDigits } from '../../../src/state/list-plan.js';

const BASE = '/h/index/volume/created-desc/p:x/';
const END = Buffer.from('/h/index/volume/created-desc/p:x0');
const NONE = { first: undefined, last: undefined };

describe('creation-time windows of a created_at index read', () => {
  it('starts a newest-first read at now: everything created in the last width, or later, is in the first window', () => {
    const w = new TimeWindows(BASE, 'desc', new Map(), 1_700_000_000_000);
    expect(w.endFor(Buffer.from(BASE), END).toString()).toBe(`${BASE}${timeDigits(TIME_MAX - 1_700_000_000_000 + 1_000)}`);
    // Continuing after a key: from its time on.
    const after = Buffer.from(`${BASE}${timeDigits(5_000)}abcdef/\u0000`);
    expect(w.endFor(after, END).toString()).toBe(`${BASE}${timeDigits(6_000)}`);
  });

  it('widens a window that held too few entries, in proportion, and remembers the width a full window\'s entries fitted', () => {
    const hints = new Map<string, WindowHint>();
    const w = new TimeWindows(BASE, 'asc', hints, 0);
    const start = Buffer.from(`${BASE}${timeDigits(0)}`);
    w.observed(0, 101, NONE, false);
    expect(w.endFor(start, END).toString()).toBe(`${BASE}${timeDigits(16_000)}`);
    w.observed(40, 101, NONE, false);
    expect(w.endFor(start, END).toString()).toBe(`${BASE}${timeDigits(96_000)}`);
    // A full window whose 61 wanted entries spanned 3 s of it: twice that.
    w.observed(1_000, 61, { first: Buffer.from(`${BASE}${timeDigits(10_000)}a/`), last: Buffer.from(`${BASE}${timeDigits(12_999)}b/`) }, false);
    w.remember(false);
    expect(hints.get(BASE)).toEqual({ width: 6_000 });
    expect(new TimeWindows(BASE, 'asc', hints, 0).endFor(start, END).toString()).toBe(`${BASE}${timeDigits(hints.get(BASE)!.width)}`);
  });

  it('remembers where the scope\'s first entry was: a read from the start ends its first window just past it', () => {
    const hints = new Map<string, WindowHint>();
    const w = new TimeWindows(BASE, 'desc', hints, 1_700_000_000_000);
    // A full window whose 101 entries spanned 100 ms: the next page's window is twice that.
    w.observed(500, 101, { first: Buffer.from(`${BASE}${timeDigits(123_456_789)}abc/`), last: Buffer.from(`${BASE}${timeDigits(123_456_889)}def/`) }, true);
    w.remember(false);
    expect(hints.get(BASE)).toEqual({ width: 202, first: 123_456_789 });
    const next = new TimeWindows(BASE, 'desc', hints, 1_700_000_000_000);
    expect(next.endFor(Buffer.from(BASE), END).toString()).toBe(`${BASE}${timeDigits(123_456_789 + 202)}`);
  });

  it('never ends past the scope, and keeps a bounded number of hints', () => {
    const hints = new Map<string, WindowHint>();
    const w = new TimeWindows(BASE, 'asc', hints, 0);
    for (let i = 0; i < 20; i++) w.observed(0, 101, NONE, false);
    expect(w.endFor(Buffer.from(`${BASE}${timeDigits(1)}`), END)).toEqual(END);
    for (let i = 0; i < 1_500; i++) new TimeWindows(`${BASE}${i}/`, 'asc', hints, 0).remember(false);
    expect(hints.size).toBe(1_000);
  });
});
