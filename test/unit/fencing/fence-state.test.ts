// The operator's reading of fence state, pure: per incarnation and per host.
import { describe, expect, it } from 'vitest';
import type { FenceOp } from '../../../src/fencing/fence-queue.js';
import { fencesByHost, fenceStateOf } from '../../../src/fencing/fence-state.js';
import type { EndHow, IncarnationView } from '../../../src/membership/incarnation-records.js';

function view(host: string, n: number, opts: { alive?: boolean; end?: { how: EndHow; atMs: number }; record?: boolean } = {}): IncarnationView {
  const incarnation = `${host}:${n}`;
  return {
    record: opts.record === false ? undefined : { incarnation, host, cluster: 'c@be', process: null, joinedAtMs: n * 1000 },
    end: opts.end && { incarnation, host, how: opts.end.how, by: 'x@be:9', atMs: opts.end.atMs, detail: '' },
    alive: opts.alive ?? false,
  };
}

const op = { incarnation: 'h@be:1', attempt: 3, lastError: 'exit 1', nextAttemptAtMs: 42 } as FenceOp;

describe('fenceStateOf', () => {
  it('an end on record wins over everything; alive needs no fence; a dead one awaits its op or is not yet requested', () => {
    expect(fenceStateOf(view('h@be', 1, { end: { how: 'exec', atMs: 5 } }), op)).toEqual({ state: 'ended', how: 'exec', by: 'x@be:9', atMs: 5 });
    expect(fenceStateOf(view('h@be', 1, { alive: true }), undefined)).toEqual({ state: 'alive' });
    expect(fenceStateOf(view('h@be', 1), op)).toEqual({ state: 'awaiting', attempts: 3, lastError: 'exit 1', nextAttemptAtMs: 42 });
    expect(fenceStateOf(view('h@be', 1), undefined)).toEqual({ state: 'not-requested' });
  });
});

describe('fencesByHost', () => {
  it('lists each host\'s dead incarnations without an end, oldest first, and its latest end; the alive one is left out', () => {
    const byHost = fencesByHost([
      view('a@be', 3),
      view('a@be', 1, { end: { how: 'left', atMs: 100 } }),
      view('a@be', 2, { end: { how: 'self', atMs: 200 } }),
      view('a@be', 4, { alive: true }),
      view('a@be', 0),
      view('b@be', 7, { end: { how: 'manual', atMs: 50 }, record: false }),
      view('c@be', 1, { alive: true }),
    ]);
    expect(byHost.get('a@be')).toEqual({ awaiting: ['a@be:0', 'a@be:3'], lastEnd: { incarnation: 'a@be:2', how: 'self', by: 'x@be:9', atMs: 200 } });
    expect(byHost.get('b@be')).toEqual({ awaiting: [], lastEnd: { incarnation: 'b@be:7', how: 'manual', by: 'x@be:9', atMs: 50 } });
    expect(byHost.has('c@be')).toBe(false);
  });
});
