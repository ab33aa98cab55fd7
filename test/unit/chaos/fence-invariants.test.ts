import { describe, expect, it } from 'vitest';
import {
  type DeathFaults,
  fenceEvents,
  fenceKilledPids,
  fenceOrderRow,
  fencedOnceRow,
  type FencingProcess,
  formatFences,
  proveFenceOrder,
  type RefusedFence,
  refusedFenceRow,
} from '../../chaos/fence-invariants.js';
import { decodeHistory, type HistoryEvent, type RawEvent } from '../../chaos/history.js';

const A = 'w1@be:a1';
const B = 'w2@be:b1';
const C = 'w3@be:c1';
const own = (incarnation: string, aliveRevision: number) => ({ incarnation, aliveRevision });
const end = (revision: number, incarnation: string, how: string, by: string): HistoryEvent => ({ revision, kind: 'end-put', incarnation, host: incarnation.split(':')[0] as string, how, by, atMs: revision * 100, created: true });
const lockPut = (revision: number, key: string, holder: string, version = 1, createRevision = revision): HistoryEvent => ({ revision, kind: 'lock-put', lock: 'v1-delete_volume', key: `locks/v1-delete_volume/${key}`, holder, version, createRevision });
const lockDelete = (revision: number, key: string, holder: string): HistoryEvent => ({ revision, kind: 'lock-delete', lock: 'v1-delete_volume', key: `locks/v1-delete_volume/${key}`, holder });

/** A (pid 7) and B (pid 8) and C (pid 9) alive from 2, 3, 4; A dies at 20 (its lease: the alive key and its lock key at once). */
const base: HistoryEvent[] = [
  { revision: 2, kind: 'alive-put', host: 'w1@be', incarnation: A, createRevision: 2 },
  { revision: 2, kind: 'incarnation-put', incarnation: A, host: 'w1@be', pid: 7 },
  { revision: 3, kind: 'alive-put', host: 'w2@be', incarnation: B, createRevision: 3 },
  { revision: 3, kind: 'incarnation-put', incarnation: B, host: 'w2@be', pid: 8 },
  { revision: 4, kind: 'alive-put', host: 'w3@be', incarnation: C, createRevision: 4 },
  { revision: 4, kind: 'incarnation-put', incarnation: C, host: 'w3@be', pid: 9 },
  { revision: 10, kind: 'op-put', key: 'ops/volume/v1', owner: own(A, 2), prevOwner: null },
  lockPut(11, 'a', A),
  lockPut(12, 'b', B),
  { revision: 20, kind: 'alive-delete', host: 'w1@be' },
  lockDelete(20, 'a', A),
  { revision: 21, kind: 'fence-op-put', incarnation: A, diedAtMs: 1_950, runner: null, lastError: null },
];

/** Fenced at 22 (exec, by B), B's hand-off mark at 23, B takes the op over at 24. */
const good: HistoryEvent[] = [...base, end(22, A, 'exec', B), lockPut(23, 'b', B, 2, 12), { revision: 24, kind: 'op-put', key: 'ops/volume/v1', owner: own(B, 3), prevOwner: own(A, 2) }];

const faults: DeathFaults = { kills: 1, zombies: 0, refusedFences: 0 };

describe('proveFenceOrder', () => {
  it('accepts a takeover and a hand-off mark that both come after the dead owner’s end record', () => {
    const p = proveFenceOrder(good);
    expect(p.problems).toEqual([]);
    expect(p.deaths).toEqual([A]);
    expect(p.takeovers.map((m) => [m.revision, m.from])).toEqual([[24, A]]);
    expect(p.marks.map((m) => [m.revision, m.from])).toEqual([[23, A]]);
  });

  it('reports a takeover or a mark before the end record, and one with no end record at all', () => {
    const early: HistoryEvent[] = [...base, lockPut(21, 'b', B, 2, 12), { revision: 22, kind: 'op-put', key: 'ops/volume/v1', owner: own(B, 3), prevOwner: own(A, 2) }, end(25, A, 'exec', B)];
    expect(proveFenceOrder(early).problems).toEqual([
      `hand-off mark of lock v1-delete_volume by ${B} at revision 21 from ${A}, before its end (exec) at 25`,
      `takeover of ops/volume/v1 by ${B} at revision 22 from ${A}, before its end (exec) at 25`,
    ]);
    const never: HistoryEvent[] = [...base, { revision: 22, kind: 'op-put', key: 'ops/volume/v1', owner: own(B, 3), prevOwner: own(A, 2) }];
    expect(proveFenceOrder(never).problems).toEqual([`takeover of ops/volume/v1 by ${B} at revision 22 from ${A}, which has no end on record at all`]);
  });

  it('needs no fence for a lock released while its owner was alive', () => {
    const h: HistoryEvent[] = [base[0], base[2], lockPut(11, 'a', A), lockPut(12, 'b', B), lockDelete(13, 'a', A), { revision: 20, kind: 'alive-delete', host: 'w1@be' }] as HistoryEvent[];
    const p = proveFenceOrder(h);
    expect(p.problems).toEqual([]);
    expect(p.marks).toEqual([]);
    expect(p.letGo).toEqual({ theirEnd: 0, gaveUp: 0 });
  });

  it('a waiter next in line after a dead owner that let go unmarked: fine if it wrote nothing of the resource, a failure if it did', () => {
    const gaveUp: HistoryEvent[] = [...base, end(22, A, 'exec', B), lockDelete(23, 'b', B)];
    expect(proveFenceOrder(gaveUp)).toMatchObject({ problems: [], letGo: { theirEnd: 0, gaveUp: 1 } });
    const died: HistoryEvent[] = [...base, { revision: 21, kind: 'alive-delete', host: 'w2@be' }, lockDelete(21, 'b', B), end(22, A, 'exec', C), end(23, B, 'exec', C)];
    expect(proveFenceOrder(died)).toMatchObject({ problems: [], letGo: { theirEnd: 1, gaveUp: 0 } });
    const worked: HistoryEvent[] = [...base, { revision: 21, kind: 'op-put', key: 'ops/volume/v1', owner: own(B, 3), prevOwner: null }, { revision: 22, kind: 'op-delete', key: 'ops/volume/v1', prevOwner: own(B, 3) }, lockDelete(23, 'b', B), end(24, A, 'exec', C)];
    expect(proveFenceOrder(worked).problems).toEqual([`${B} held lock v1-delete_volume after ${A} died and wrote ops/volume/v1 at revision 22 without a hand-off mark`]);
  });

  it('a clean leave is no death: its end is written with the alive key’s deletion, and what moves after it is counted apart', () => {
    const h: HistoryEvent[] = [...base.slice(0, 9), { revision: 20, kind: 'alive-delete', host: 'w1@be' }, end(20, A, 'left', A), { revision: 21, kind: 'op-put', key: 'ops/volume/v1', owner: own(B, 3), prevOwner: own(A, 2) }];
    const p = proveFenceOrder(h);
    expect(p).toMatchObject({ deaths: [], problems: [] });
    expect(p.takeovers).toHaveLength(1);
    expect(fenceOrderRow(h, faults)).toMatchObject({ result: 'FAIL', detail: expect.stringContaining('nothing to check') as unknown });
    expect(fenceOrderRow(h, { kills: 0, zombies: 0, refusedFences: 0 })).toMatchObject({ result: 'PASS' });
  });
});

describe('fenceOrderRow', () => {
  it('passes with the counts, fails on a move before the fence, and fails loudly with no death to check', () => {
    expect(fenceOrderRow(good, faults)).toMatchObject({ result: 'PASS', detail: expect.stringContaining('1 incarnations ended without a clean leave (ended by: exec 1); 1 takeovers of their ops and 1 hand-off marks') as unknown });
    expect(fenceOrderRow([...base, { revision: 22, kind: 'op-put', key: 'ops/volume/v1', owner: own(B, 3), prevOwner: own(A, 2) }], faults).result).toBe('FAIL');
    expect(fenceOrderRow(base.slice(0, 6), faults)).toMatchObject({ result: 'FAIL', detail: expect.stringContaining('0 deaths') as unknown });
  });
});

describe('fencedOnceRow', () => {
  const stopped = (pid: number, fenced: FencingProcess['fenced'] = []): FencingProcess => ({ name: `worker (pid ${pid})`, pid, by: 'stop', code: 0, signal: null, fenced });

  it('passes when the survivor that fenced logged it once', () => {
    expect(fencedOnceRow(good, [stopped(8, [{ incarnation: A, how: 'exec' }]), stopped(9)], faults)).toMatchObject({ result: 'PASS', detail: expect.stringContaining('1 automatic end records (exec 1), one per incarnation; 1 by workers that lived on') as unknown });
  });

  it('fails on a second log line, a line that disagrees with etcd, or a survivor that never logged its fence', () => {
    expect(fencedOnceRow(good, [stopped(8, [{ incarnation: A, how: 'exec' }]), stopped(9, [{ incarnation: A, how: 'exec' }])], faults).detail).toContain(`${A} logged as fenced 2 times`);
    expect(fencedOnceRow(good, [stopped(8, [{ incarnation: A, how: 'process-gone' }])], faults).result).toBe('FAIL');
    expect(fencedOnceRow(good, [stopped(8)], faults).detail).toContain('which lived on, but logged 0 times there');
  });

  it('does not require the line of a fencer killed within a second of its fence (its log may be cut), but does of one killed later', () => {
    // The end record of `good` says 2,200 ms.
    const killed: FencingProcess = { name: 'worker (pid 8)', pid: 8, by: 'kill', code: null, signal: 'SIGKILL', endedAt: 2_900 };
    expect(fencedOnceRow(good, [killed], faults)).toMatchObject({ result: 'PASS', detail: expect.stringContaining('1 by workers killed within 1 s or unknown') as unknown });
    expect(fencedOnceRow(good, [{ ...killed, endedAt: 3_300 }], faults).detail).toContain('which lived on, but logged 0 times there');
    expect(fencedOnceRow(good, [{ ...killed, endedAt: 3_300, fenced: [{ incarnation: A, how: 'exec' }] }], faults).result).toBe('PASS');
  });
});

describe('refusedFenceRow', () => {
  const refusal: RefusedFence = { host: 'w1', incarnation: A, owned: ['ops/volume/v1'], refusedAttempts: 2, stillOwned: 1, confirmStatus: 200 };
  const refusedFaults: DeathFaults = { kills: 0, zombies: 0, refusedFences: 1 };
  const h: HistoryEvent[] = [
    ...base,
    { revision: 22, kind: 'fence-op-put', incarnation: A, diedAtMs: 1_950, runner: B, lastError: 'exec: fence command fence-kill.mjs exited 1: refused for w1@be: out of reach' },
    end(30, A, 'manual', 'operator'),
    { revision: 31, kind: 'op-put', key: 'ops/volume/v1', owner: own(B, 3), prevOwner: own(A, 2) },
  ];

  it('passes when the refused fence kept the ops until the operator’s confirmation, and they moved after it', () => {
    expect(refusedFenceRow(h, [refusal], refusedFaults)).toMatchObject({ result: 'PASS', detail: expect.stringContaining('1 refused attempts on record') as unknown });
    expect(refusedFenceRow(h, [], { ...refusedFaults, refusedFences: 0 }).result).toBe('PASS');
  });

  it('fails when the fence was not the operator’s, an op moved before, nothing was refused, or the fault never happened', () => {
    const byExec = h.map((e) => (e.kind === 'end-put' ? { ...e, how: 'exec', by: B } : e));
    expect(refusedFenceRow(byExec, [refusal], refusedFaults).detail).toContain('not by the operator');
    expect(refusedFenceRow(h, [{ ...refusal, stillOwned: 0 }], refusedFaults).detail).toContain('1 of its 1 ops changed hands before the confirmation');
    expect(refusedFenceRow(h.filter((e) => e.kind !== 'fence-op-put'), [refusal], refusedFaults).detail).toContain('no refused attempt recorded');
    expect(refusedFenceRow(h, [], refusedFaults).detail).toContain('1 refused fences scheduled, 0 happened');
  });
});

describe('fence events', () => {
  it('lists the ends of unclean deaths with the death’s time, and the pids an exec fence killed', () => {
    expect(fenceEvents(good)).toEqual([{ incarnation: A, host: 'w1@be', how: 'exec', by: B, atMs: 2_200, revision: 22, diedAtMs: 1_950 }]);
    expect([...fenceKilledPids(good)]).toEqual([7]);
    expect(formatFences(fenceEvents(good), 0)).toContain(`${A}  exec by ${B} at revision 22, 250 ms after the death was seen`);
  });
});

describe('decodeHistory (fencing keys)', () => {
  it('decodes incarnation records, end records, fence operations and lock keys with their versions', () => {
    const raw: RawEvent[] = [
      { type: 'put', key: '/p/incarnations/w1@be:a1', value: JSON.stringify({ incarnation: A, host: 'w1@be', process: { pid: 7 } }), prev: null, revision: 2, createRevision: 2, version: 1 },
      { type: 'put', key: '/p/locks/v1-delete_volume/1a', value: B, prev: null, revision: 3, createRevision: 3, version: 1 },
      { type: 'put', key: '/p/locks/v1-delete_volume/1a', value: B, prev: B, revision: 5, createRevision: 3, version: 2 },
      { type: 'delete', key: '/p/locks/v1-delete_volume/1a', value: null, prev: B, revision: 6, createRevision: 0, version: 0 },
      { type: 'put', key: '/p/fences/w1@be:a1', value: JSON.stringify({ incarnation: A, diedAtMs: 9, owner: { incarnation: B }, lastError: 'x' }), prev: null, revision: 4, createRevision: 4, version: 1 },
      { type: 'put', key: '/p/fenced/w1@be:a1', value: JSON.stringify({ incarnation: A, host: 'w1@be', how: 'exec', by: B, atMs: 10, detail: '' }), prev: null, revision: 4, createRevision: 4, version: 1 },
    ];
    expect(decodeHistory('/p', raw)).toEqual([
      { revision: 2, kind: 'incarnation-put', incarnation: A, host: 'w1@be', pid: 7 },
      { revision: 3, kind: 'lock-put', lock: 'v1-delete_volume', key: 'locks/v1-delete_volume/1a', holder: B, version: 1, createRevision: 3 },
      { revision: 5, kind: 'lock-put', lock: 'v1-delete_volume', key: 'locks/v1-delete_volume/1a', holder: B, version: 2, createRevision: 3 },
      { revision: 6, kind: 'lock-delete', lock: 'v1-delete_volume', key: 'locks/v1-delete_volume/1a', holder: B },
      { revision: 4, kind: 'fence-op-put', incarnation: A, diedAtMs: 9, runner: B, lastError: 'x' },
      { revision: 4, kind: 'end-put', incarnation: A, host: 'w1@be', how: 'exec', by: B, atMs: 10, created: true },
    ]);
  });
});
