import { describe, expect, it } from 'vitest';
import { checkJournal, type JournalEntry } from '../../../src/drivers/fake-journal.js';
import { decodeHistory, type RawEvent } from '../../chaos/history.js';
import { checkInvariants, findFencedWrites, formatTable, type HistoryEvent, overlapRow, p50max, type ProcessEnd, type RunRecord } from '../../chaos/invariants.js';
import { schedule, seeded } from '../../chaos/scenario.js';

const A = 'w1@be:a1';
const B = 'w2@be:b1';
const own = (incarnation: string, aliveRevision: number) => ({ incarnation, aliveRevision });

/** w1 alive [2, 20), w2 alive from 3. */
const lives: HistoryEvent[] = [
  { revision: 2, kind: 'alive-put', host: 'w1@be', incarnation: A, createRevision: 2 },
  { revision: 3, kind: 'alive-put', host: 'w2@be', incarnation: B, createRevision: 3 },
  { revision: 9, kind: 'alive-put', host: 'w1@be', incarnation: A, createRevision: 2 },
  { revision: 20, kind: 'alive-delete', host: 'w1@be' },
];

describe('findFencedWrites', () => {
  it('accepts claims and final writes of live owners, and a takeover of a dead owner by a live one', () => {
    const h: HistoryEvent[] = [
      ...lives,
      { revision: 10, kind: 'op-put', key: 'ops/volume/v1', owner: null, prevOwner: null },
      { revision: 11, kind: 'op-put', key: 'ops/volume/v1', owner: own(A, 2), prevOwner: null },
      { revision: 12, kind: 'op-delete', key: 'ops/volume/v1', prevOwner: own(A, 2) },
      { revision: 12, kind: 'resource-put', key: 'resources/volume/v1', updatedBy: A, status: 'available' },
      { revision: 13, kind: 'op-put', key: 'ops/volume/v2', owner: own(A, 2), prevOwner: null },
      { revision: 25, kind: 'op-put', key: 'ops/volume/v2', owner: own(B, 3), prevOwner: own(A, 2) },
      { revision: 26, kind: 'op-delete', key: 'ops/volume/v2', prevOwner: own(B, 3) },
      { revision: 26, kind: 'resource-put', key: 'resources/volume/v2', updatedBy: B, status: 'error' },
    ];
    expect(findFencedWrites(h)).toEqual([]);
  });

  it('reports a final write at or after the revision that deleted the writer’s alive key', () => {
    const h: HistoryEvent[] = [...lives, { revision: 20, kind: 'op-delete', key: 'ops/volume/v1', prevOwner: own(A, 2) }, { revision: 30, kind: 'op-delete', key: 'ops/volume/v3', prevOwner: own(A, 2) }];
    expect(findFencedWrites(h).map((b) => [b.revision, b.writer])).toEqual([
      [20, A],
      [30, A],
    ]);
  });

  it('reports a claim by an unknown incarnation, one with a stale alive revision, and a late hand-back', () => {
    const h: HistoryEvent[] = [
      ...lives,
      { revision: 5, kind: 'op-put', key: 'ops/volume/v1', owner: own('w9@be:z', 1), prevOwner: null },
      { revision: 6, kind: 'op-put', key: 'ops/volume/v2', owner: own(B, 1), prevOwner: null },
      { revision: 21, kind: 'op-put', key: 'ops/volume/v3', owner: null, prevOwner: own(A, 2) },
    ];
    expect(findFencedWrites(h).map((b) => b.why.split(' ')[0] + ' ' + b.key)).toEqual(['claim ops/volume/v1', 'claim ops/volume/v2', 'hand-back ops/volume/v3']);
  });

  it('reports a final status that names someone other than the op’s owner', () => {
    const h: HistoryEvent[] = [...lives, { revision: 12, kind: 'op-delete', key: 'ops/snapshot/s1', prevOwner: own(A, 2) }, { revision: 12, kind: 'resource-put', key: 'resources/snapshot/s1', updatedBy: B, status: 'available' }];
    expect(findFencedWrites(h)).toEqual([expect.objectContaining({ revision: 12, writer: B })]);
  });

  it('a restarted host is a new incarnation: the old one stays dead', () => {
    const A2 = 'w1@be:a2';
    const h: HistoryEvent[] = [
      ...lives,
      { revision: 22, kind: 'alive-put', host: 'w1@be', incarnation: A2, createRevision: 22 },
      { revision: 23, kind: 'op-put', key: 'ops/volume/v1', owner: own(A2, 22), prevOwner: own(A, 2) },
      { revision: 24, kind: 'op-delete', key: 'ops/volume/v9', prevOwner: own(A, 2) },
    ];
    expect(findFencedWrites(h).map((b) => b.revision)).toEqual([24]);
  });

  it("an admin's force-delete replaces a dead owner's op (a new op id): the API's write, nobody's life to check; a hand-back of the same op is still checked", () => {
    const h: HistoryEvent[] = [
      ...lives,
      { revision: 21, kind: 'op-put', key: 'ops/volume/v1', owner: null, prevOwner: own(A, 2), opId: 'force-1', prevOpId: 'extend-1' },
      { revision: 22, kind: 'op-put', key: 'ops/volume/v1', owner: own(B, 3), prevOwner: null, opId: 'force-1', prevOpId: 'force-1' },
      { revision: 23, kind: 'op-delete', key: 'ops/volume/v1', prevOwner: own(B, 3), prevOpId: 'force-1' },
      { revision: 24, kind: 'op-put', key: 'ops/volume/v2', owner: null, prevOwner: own(A, 2), opId: 'extend-2', prevOpId: 'extend-2' },
    ];
    expect(findFencedWrites(h).map((b) => `${b.revision} ${b.why.split(' ')[0]}`)).toEqual(['24 hand-back']);
  });
});

describe('decodeHistory', () => {
  it('decodes alive, op and resource events under the prefix and skips keys it does not know', () => {
    const raw: RawEvent[] = [
      { type: 'put', key: '/p/alive/w1@be', value: JSON.stringify({ incarnation: A }), prev: null, revision: 2, createRevision: 2 },
      { type: 'put', key: '/p/ops/volume/v1', value: JSON.stringify({ opId: 'o1', owner: { host: 'w1@be', incarnation: A, aliveRevision: '2' } }), prev: JSON.stringify({ opId: 'o1', owner: null }), revision: 4, createRevision: 3 },
      { type: 'delete', key: '/p/ops/volume/v1', value: null, prev: JSON.stringify({ opId: 'o1', owner: { incarnation: A, aliveRevision: '2' } }), revision: 5, createRevision: 0 },
      { type: 'put', key: '/p/resources/volume/v1', value: JSON.stringify({ status: 'available', updated_by: A }), prev: null, revision: 5, createRevision: 1 },
      { type: 'put', key: '/p/services/volume/w1@be', value: '{}', prev: null, revision: 6, createRevision: 6 },
      { type: 'delete', key: '/p/alive/w1@be', value: null, prev: null, revision: 7, createRevision: 0 },
    ];
    expect(decodeHistory('/p', raw)).toEqual([
      { revision: 2, kind: 'alive-put', host: 'w1@be', incarnation: A, createRevision: 2 },
      { revision: 4, kind: 'op-put', key: 'ops/volume/v1', owner: own(A, 2), prevOwner: null, opId: 'o1', prevOpId: 'o1' },
      { revision: 5, kind: 'op-delete', key: 'ops/volume/v1', prevOwner: own(A, 2), prevOpId: 'o1' },
      { revision: 5, kind: 'resource-put', key: 'resources/volume/v1', updatedBy: A, status: 'available' },
      { revision: 7, kind: 'alive-delete', host: 'w1@be' },
    ]);
  });
});

function entry(call: JournalEntry['call'], resource: string, pid: number, seq: number, start: number, end: number, member = 'w1@be'): JournalEntry[] {
  const base = { call, resource, opId: `op-${pid}-${seq}`, member, pid, seq };
  return [
    { ...base, event: 'start', t: start },
    { ...base, event: 'end', ok: true, t: end },
  ];
}

/** A run where everything held. */
function goodRun(): RunRecord {
  return {
    leaseTtlMs: 3_000,
    accepted: [
      { kind: 'create_volume', type: 'volume', id: 'v1', final: 'available', last: false },
      { kind: 'delete_volume', type: 'volume', id: 'v1', final: 'deleted', last: true },
      { kind: 'create_volume', type: 'volume', id: 'v2', last: true },
    ],
    endStatus: new Map([
      ['volume/v1', 'deleted'],
      ['volume/v2', 'error'],
    ]),
    listed: [{ type: 'volume', id: 'v2', status: 'error', name: 'chaos-0-1' }],
    journal: checkJournal([...entry('createVolume', 'volume:v1', 1, 1, 0, 10), ...entry('deleteVolume', 'volume:v1', 2, 1, 10, 20, 'w2@be')]),
    // w1 (pid 7) dies at 20 owning v2; w2 (pid 8) fences it (process-gone) at 21 and takes v2 over at 25.
    history: [
      ...lives,
      { revision: 2, kind: 'incarnation-put', incarnation: A, host: 'w1@be', pid: 7 },
      { revision: 3, kind: 'incarnation-put', incarnation: B, host: 'w2@be', pid: 8 },
      { revision: 12, kind: 'op-delete', key: 'ops/volume/v1', prevOwner: own(A, 2) },
      { revision: 13, kind: 'op-put', key: 'ops/volume/v2', owner: own(A, 2), prevOwner: null },
      { revision: 21, kind: 'end-put', incarnation: A, host: 'w1@be', how: 'process-gone', by: B, atMs: 2_100, created: true },
      { revision: 25, kind: 'op-put', key: 'ops/volume/v2', owner: own(B, 3), prevOwner: own(A, 2) },
    ],
    opsLeft: [],
    processes: [
      { name: 'worker-w1', pid: 7, by: 'kill', code: null, signal: 'SIGKILL' },
      { name: 'worker-w2', pid: 8, by: 'stop', code: 0, signal: null, fenced: [{ incarnation: A, how: 'process-gone' }] },
    ],
    kills: [
      { host: 'w1', killedAt: 1_000, ops: 2, detectedAt: 3_500, takenOverAt: 7_000 },
      { host: 'w2', killedAt: 10_000, ops: 1, detectedAt: 13_000, takenOverAt: 15_000 },
      { host: 'w3', killedAt: 20_000, ops: 0 },
    ],
    freezes: [{ pid: 7, from: 100, to: 200 }],
    deathFaults: { kills: 3, zombies: 1, refusedFences: 0 },
    refusals: [],
    badInputs: [
      { what: 'truncated JSON', outcome: 400, faultBody: true },
      { what: 'too big', outcome: 413, faultBody: true },
      { what: 'amqp: not JSON', outcome: 'dead-lettered' },
    ],
    badName: 'chaos-bad-',
  };
}

const failed = (r: RunRecord): string[] => checkInvariants(r).filter((x) => x.result === 'FAIL').map((x) => x.name);

describe('checkInvariants', () => {
  it('passes a run where everything held, with kill timings as p50/max', () => {
    const rows = checkInvariants(goodRun());
    expect(rows.filter((r) => r.result === 'FAIL')).toEqual([]);
    expect(rows.find((r) => r.name.startsWith('kill -9 → orphans detected'))?.detail).toContain('3 kills, 2 mid-operation: p50 2.50 s, max 3.00 s');
    expect(rows.find((r) => r.name.startsWith('kill -9 → takeover'))?.detail).toContain('p50 5.00 s, max 6.00 s');
    expect(formatTable(rows).split('\n')).toHaveLength(rows.length + 2);
  });

  it('no volume attached and deleted at once: a delete written over attachments, or a connection after the delete began, fails the row', () => {
    const g = goodRun();
    const name = 'no volume attached and deleted at once';
    const connectedFirst = checkJournal([...entry('initializeConnection', 'volume:v1', 3, 1, 0, 5), ...entry('deleteVolume', 'volume:v1', 2, 1, 10, 20)]);
    expect(failed({ ...g, journal: connectedFirst })).toEqual([]);
    expect(checkInvariants({ ...g, journal: connectedFirst }).find((r) => r.name === name)?.detail).toBe('1 connections made, none on a volume being deleted');
    const connectedAfter = checkJournal([...entry('deleteVolume', 'volume:v1', 2, 1, 10, 20), ...entry('initializeConnection', 'volume:v1', 3, 1, 21, 25)]);
    expect(failed({ ...g, journal: connectedAfter })).toEqual([name]);
    const deletingAttached: HistoryEvent = { revision: 99, kind: 'resource-put', key: 'resources/volume/v1', updatedBy: null, status: 'deleting', attachments: 1 };
    expect(failed({ ...g, history: [...g.history, deletingAttached] })).toEqual([name]);
  });

  it('a request a force-delete superseded needs no final status of its own; the force-delete does', () => {
    const g = goodRun();
    const extend = { kind: 'extend_volume', type: 'volume', id: 'v7', last: false, superseded: true } as const;
    const force = { kind: 'force_delete_volume', type: 'volume', id: 'v7', last: true } as const;
    const row = (r: RunRecord) => checkInvariants(r).find((x) => x.name === 'every accepted request reached a final status (none lost)');
    const passed = row({ ...g, accepted: [...g.accepted, extend, { ...force, final: 'deleted' }] });
    expect(passed?.result).toBe('PASS');
    expect(passed?.detail).toContain('1 replaced by a force-delete');
    expect(row({ ...g, accepted: [...g.accepted, extend, { ...force, final: 'error_deleting' }] })?.result).toBe('PASS');
    expect(row({ ...g, accepted: [...g.accepted, extend, force], endStatus: new Map([['volume/v7', 'deleting']]) })?.result).toBe('FAIL');
    expect(row({ ...g, accepted: [...g.accepted, { ...extend, superseded: false }, { ...force, final: 'deleted' }] })?.result).toBe('FAIL');
  });

  it('fails each invariant on its own violation', () => {
    const g = goodRun();
    expect(failed({ ...g, accepted: [...g.accepted, { kind: 'extend_volume', type: 'volume', id: 'v2', last: false }] })).toEqual(['every accepted request reached a final status (none lost)']);
    expect(failed({ ...g, accepted: [{ kind: 'delete_volume', type: 'volume', id: 'v3', last: true }], endStatus: new Map([['volume/v3', 'deleting']]) })[0]).toBe('every accepted request reached a final status (none lost)');
    expect(failed({ ...g, listed: [{ type: 'snapshot', id: 's', status: 'creating' }] })).toEqual(['no resource left in a transitional status']);
    expect(failed({ ...g, journal: checkJournal([...entry('deleteVolume', 'volume:v1', 1, 1, 0, 10), ...entry('deleteVolume', 'volume:v1', 2, 1, 5, 6)]) })).toEqual(['no two driver calls on one resource overlapped']);
    expect(failed({ ...g, journal: checkJournal([...entry('createVolume', 'volume:v1', 1, 1, 0, 10), ...entry('createVolume', 'volume:v1', 2, 1, 20, 30)]) })).toEqual(['no create succeeded twice']);
    expect(failed({ ...g, history: [...g.history, { revision: 30, kind: 'op-delete', key: 'ops/volume/v1', prevOwner: own(A, 2) }] })).toEqual(['no write by a fenced worker was accepted']);
    expect(failed({ ...g, history: g.history.filter((e) => e.kind !== 'op-delete') })).toEqual(['no write by a fenced worker was accepted']);
    const fenceOrder = "a dead incarnation's work and locks moved only after its fence (etcd history)";
    expect(failed({ ...g, history: g.history.map((e) => (e.kind === 'end-put' ? { ...e, revision: 26 } : e)) })).toEqual([fenceOrder]);
    expect(failed({ ...g, processes: [g.processes[0] as ProcessEnd, { ...(g.processes[1] as ProcessEnd), fenced: [] }] })).toEqual(['each death fenced once (end records and the workers’ logs)']);
    expect(failed({ ...g, opsLeft: ['/chaos/ops/volume/v2'] })).toEqual(['the ops/ prefix is empty at the end']);
    expect(failed({ ...g, processes: [...g.processes, { name: 'worker-w2', by: 'none', code: 1, signal: null }] })).toEqual(['no process crashed (broker and etcd restarts included)']);
    expect(failed({ ...g, processes: [...g.processes, { name: 'api', by: 'stop', code: 1, signal: null }] })).toEqual(['no process crashed (broker and etcd restarts included)']);
    expect(failed({ ...g, processes: [...g.processes, { name: 'api', by: 'stop', code: 0, signal: null, stray: ['(node:1) UnhandledPromiseRejectionWarning: boom'] }] })).toEqual(['no process crashed (broker and etcd restarts included)']);
    expect(failed({ ...g, processes: [...g.processes, { name: 'api', by: 'stop', code: 0, signal: null, stray: [] }] })).toEqual([]);
    const api = 'malformed/oversized API requests: 4xx with a Cinder fault, nothing written';
    expect(failed({ ...g, badInputs: [{ what: 'x', outcome: 500, faultBody: true }, ...g.badInputs.slice(2)] })).toEqual([api]);
    expect(failed({ ...g, badInputs: [{ what: 'x', outcome: 400, faultBody: false }, ...g.badInputs.slice(2)] })).toEqual([api]);
    expect(failed({ ...g, listed: [...g.listed, { type: 'volume', id: 'v9', status: 'available', name: 'chaos-bad-' }] })).toEqual([api]);
    expect(failed({ ...g, badInputs: [...g.badInputs, { what: 'amqp: big', outcome: 'missing' }] })).toEqual(['malformed/oversized AMQP messages: dead-lettered, nothing done']);
    expect(failed({ ...g, badInputs: [...g.badInputs, { what: 'amqp: big', outcome: 'dead-lettered', touched: true }] })).toEqual(['malformed/oversized AMQP messages: dead-lettered, nothing done']);
    expect(failed({ ...g, kills: [{ host: 'w1', killedAt: 0, ops: 1, detectedAt: 4_001, takenOverAt: 9_000 }] })).toEqual(['kill -9 → orphans detected (bound TTL + 1 s = 4 s)']);
    // After an etcd election the clock starts at the election, and a new leader adds its election timeout to every lease.
    expect(failed({ ...g, kills: [{ host: 'w1', killedAt: 0, electedAt: 2_000, ops: 1, detectedAt: 6_900, takenOverAt: 9_000 }] })).toEqual([]);
    expect(failed({ ...g, kills: [{ host: 'w1', killedAt: 0, electedAt: 2_000, ops: 1, detectedAt: 7_100, takenOverAt: 9_000 }] })).toEqual(['kill -9 → orphans detected (bound TTL + 1 s = 4 s)']);
    expect(failed({ ...g, kills: [{ host: 'w1', killedAt: 0, ops: 1, takenOverAt: 9_000 }] })).toEqual(['kill -9 → orphans detected (bound TTL + 1 s = 4 s)']);
    // Its op left it 128 ms after the kill, long before its lease could expire: the API replaced it (a force-delete), nothing to detect.
    expect(failed({ ...g, kills: [{ host: 'w1', killedAt: 0, ops: 1, detectedAt: 3_000, takenOverAt: 5_000 }, { host: 'w2', killedAt: 0, ops: 1, takenOverAt: 128 }] })).toEqual([]);
    expect(failed({ ...g, kills: [{ host: 'w1', killedAt: 0, ops: 1, detectedAt: 3_000 }] })).toEqual(['kill -9 → takeover of every orphan']);
  });

  it('a delete re-run after a lost final write is no duplicate; a create or an extend of one op twice is', () => {
    const g = goodRun();
    const rerun = checkJournal([...entry('deleteVolume', 'volume:v1', 1, 1, 0, 10), ...entry('deleteVolume', 'volume:v1', 2, 1, 20, 30)]);
    expect(rerun.duplicates).toHaveLength(1);
    expect(failed({ ...g, journal: rerun })).toEqual([]);
    expect(checkInvariants({ ...g, journal: rerun }).find((r) => r.name === 'no create succeeded twice')?.detail).toContain('1 deletes re-run by cleanup');
    const ext = [...entry('extendVolume', 'volume:v1', 1, 1, 0, 10), ...entry('extendVolume', 'volume:v1', 2, 1, 20, 30)].map((e) => ({ ...e, opId: 'same' }));
    expect(failed({ ...g, journal: checkJournal(ext) })).toEqual(['no create succeeded twice']);
  });

  it('an overlap with a call a frozen worker had in flight fails like any other: there is no exception', () => {
    const g = goodRun();
    const frozen = entry('createSnapshot', 'snapshot:s1', 7, 1, 90, 250);
    const other = entry('deleteSnapshot', 'snapshot:s1', 8, 1, 150, 160, 'w3@be');
    expect(failed({ ...g, journal: checkJournal([...frozen, ...other]) })).toEqual(['no two driver calls on one resource overlapped']);
    expect(overlapRow(checkJournal([...frozen, ...other])).detail).toBe('snapshot:s1: createSnapshot@w1@be / deleteSnapshot@w3@be');
  });

  it('a process the suite did not kill passes only when etcd shows its exec fence (the fence command killed it)', () => {
    const g = goodRun();
    const fenceKilled: ProcessEnd = { name: 'worker-w1', pid: 7, by: 'none', code: null, signal: 'SIGKILL' };
    const crashed = ['no process crashed (broker and etcd restarts included)'];
    expect(failed({ ...g, processes: [fenceKilled, g.processes[1] as ProcessEnd] })).toEqual(crashed); // ended process-gone: not the fence's kill
    const exec = g.history.map((e) => (e.kind === 'end-put' ? { ...e, how: 'exec' } : e));
    const stopped = { ...(g.processes[1] as ProcessEnd), fenced: [{ incarnation: A, how: 'exec' }] };
    expect(failed({ ...g, history: exec, processes: [fenceKilled, stopped] })).toEqual([]);
    expect(checkInvariants({ ...g, history: exec, processes: [fenceKilled, stopped] }).find((r) => r.name === crashed[0])?.detail).toContain("the fence's (1: an exec end of its incarnation in etcd)");
    expect(failed({ ...g, history: exec, processes: [{ ...fenceKilled, pid: 99 }, stopped] })).toEqual(crashed);
  });

  it('fails the rows that need samples when there are none', () => {
    const g = goodRun();
    expect(failed({ ...g, kills: [], badInputs: [], history: g.history.filter((e) => e.kind !== 'end-put' && !(e.kind === 'op-put' && e.prevOwner)) })).toEqual([
      "a dead incarnation's work and locks moved only after its fence (etcd history)",
      'each death fenced once (end records and the workers’ logs)',
      'malformed/oversized API requests: 4xx with a Cinder fault, nothing written',
      'malformed/oversized AMQP messages: dead-lettered, nothing done',
      'kill -9 → orphans detected (bound TTL + 1 s = 4 s)',
      'kill -9 → takeover of every orphan',
    ]);
  });
});

describe('p50max, schedule', () => {
  it('p50 is the lower median; max the largest', () => {
    expect(p50max([])).toBeUndefined();
    expect(p50max([5, 1, 3, 2])).toEqual({ p50: 2, max: 5 });
  });

  it('schedules every fault once per count, the first one a kill, and replays with the same seed', () => {
    const o = { kills: 20, zombies: 2, refusedFences: 1, partitions: 2, brokerRestarts: 1, etcdRestarts: 1 };
    const s = schedule(o, seeded(7));
    expect(s[0]).toBe('kill');
    expect(s.filter((f) => f === 'kill')).toHaveLength(20);
    expect(s.filter((f) => f === 'zombie')).toHaveLength(2);
    expect(s.filter((f) => f === 'fence-refused')).toHaveLength(1);
    expect(s.filter((f) => f.startsWith('partition'))).toEqual(expect.arrayContaining(['partition-pause', 'partition-cut']));
    expect(s).toHaveLength(27);
    expect(schedule(o, seeded(7))).toEqual(s);
    expect(schedule({ ...o, kills: 0 }, seeded(1))).toHaveLength(7);
  });
});
