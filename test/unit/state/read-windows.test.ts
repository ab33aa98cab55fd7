// The etcd listing's windows of creation time, walked over an in-memory index as EtcdListing.page walks etcd:
// pages continue exactly where the last ended, no entry is skipped or read twice, and no range
// holds more than a bounded number of entries however many the scope holds.
import { describe, expect, it } from 'vitest';
import { TimeWindows, type WindowHint } from '../../../src/state/etcd-time-windows.js';
import { type IndexOrder, sortableKey } from '../../../src/state/list-plan.js';
import type { ResourceRecord } from '../../../src/state/records.js';

const BASE = '/h/index/volume/x/p:a/';
const END = Buffer.from('/h/index/volume/x/p:a0');
const NOW = 1_700_000_000_000;

interface Window {
  endFor(start: Buffer, end: Buffer): Buffer;
  observed(count: number, wanted: number, read: { readonly first: Buffer | undefined; readonly last: Buffer | undefined }, fromScopeStart: boolean): void;
  remember(exhausted: boolean): void;
}

/** Walks every page of `limit`; returns the keys in order and the largest range (entries etcd walked). */
function walk(keys: readonly Buffer[], open: () => Window, limit: number): { read: string[]; largest: number } {
  const read: string[] = [];
  let largest = 0;
  let start: Buffer = Buffer.from(BASE);
  for (let pages = 0; pages < 10_000; pages++) {
    const windows = open();
    const page: Buffer[] = [];
    let more = false;
    for (let round = 0; round < 24; round++) {
      const wanted = limit + 1 - page.length;
      const end = windows.endFor(start, END);
      const inRange = keys.filter((k) => Buffer.compare(k, start) >= 0 && Buffer.compare(k, end) < 0);
      largest = Math.max(largest, inRange.length);
      const got = inRange.slice(0, wanted);
      windows.observed(inRange.length, wanted, { first: got[0], last: got[got.length - 1] }, start.equals(Buffer.from(BASE)));
      page.push(...got);
      if (page.length > limit) {
        more = true;
        break;
      }
      if (inRange.length > got.length) start = Buffer.concat([got[got.length - 1]!, Buffer.from([0])]);
      else if (Buffer.compare(end, END) < 0) start = end;
      else break;
    }
    windows.remember(!more);
    const shown = page.slice(0, limit);
    read.push(...shown.map((k) => k.toString()));
    if (!more) return { read, largest };
    start = Buffer.concat([shown[shown.length - 1]!, Buffer.from([0])]);
  }
  throw new Error('no end');
}

function keysOf(records: readonly ResourceRecord[], order: IndexOrder): Buffer[] {
  return records.map((r) => Buffer.from(`${BASE}${sortableKey(r, order)}`)).sort(Buffer.compare);
}

function records(n: number, name: (i: number) => string | null, createdAt: (i: number) => number): ResourceRecord[] {
  return Array.from({ length: n }, (_, i) => ({ id: `id-${i}`, name: name(i), created_at: createdAt(i) }) as ResourceRecord);
}

describe('read windows over an index scope', () => {
  const shapes: [string, (i: number) => string | null, (i: number) => number][] = [
    ['dense names and times', (i) => `vol-${i}`, (i) => NOW - 100_000 + i],
    ['sparse times, long gaps, some missing names', (i) => (i % 7 === 0 ? null : `n${(i * 7919) % 1000}`), (i) => NOW - 3e10 + i * i * 997],
    ['random names', (i) => ((i * 2654435761) % 4294967296).toString(36), (i) => NOW - i * 60_000],
  ];
  for (const [shape, name, createdAt] of shapes) {
    for (const order of [
      { by: 'created_at', dir: 'desc' },
      { by: 'created_at', dir: 'asc' },
    ] as IndexOrder[]) {
      it(`${shape}, ${order.by} ${order.dir}: every entry once, in order, in bounded ranges`, () => {
        const all = keysOf(records(6_000, name, createdAt), order);
        const hints = new Map<string, WindowHint>();
        const open = () => new TimeWindows(BASE, order.dir, hints, NOW);
        const first = walk(all, open, 100);
        expect(first.read).toEqual(all.map((k) => k.toString()));
        // A second walk starts with what the first learnt: its ranges hold a few pages at most
        // (where the density changes), never the scope.
        const second = walk(all, open, 100);
        expect(second.read).toEqual(first.read);
        expect(second.largest).toBeLessThan(2_000);
      });
    }
  }
});
