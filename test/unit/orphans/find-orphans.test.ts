import { describe, expect, it } from 'vitest';
import type { OwnerRef } from '../../../src/identity.js';
import {
  countByCluster,
  deadReason,
  dueForCleanup,
  findOrphans,
  type LiveIncarnation,
  nextDueAt,
  orphanKey,
} from '../../../src/orphans/find-orphans.js';
import type { OpRecord } from '../../../src/state/records.js';

const T0 = 1_700_000_000_000;

function op(id: string, owner: OwnerRef | null, over: Partial<OpRecord> = {}): OpRecord {
  return {
    type: 'volume',
    id,
    opId: `op-${id}`,
    kind: 'delete_volume',
    status: 'deleting',
    cluster: 'c@be',
    owner,
    attempt: owner ? 1 : 0,
    params: {},
    createdAt: T0,
    updatedAt: T0 + 100,
    publishedAt: T0 + 50,
    revision: '10',
    ...over,
  };
}

const owner = (host: string, inc: string, rev = '5'): OwnerRef => ({ host, incarnation: `${host}:${inc}`, aliveRevision: rev });
const live = (host: string, inc: string, rev = '5'): LiveIncarnation => ({ host, incarnation: `${host}:${inc}`, aliveRevision: rev });

/** Every way an owner can relate to the alive entries, and what detection must say. */
const OWNER_CASES: readonly { name: string; owner: OwnerRef | null; alive: LiveIncarnation[]; expected: 'owner-gone' | 'owner-replaced' | undefined }[] = [
  { name: 'queued (no owner), nobody alive', owner: null, alive: [], expected: undefined },
  { name: 'queued (no owner), members alive', owner: null, alive: [live('a', '1')], expected: undefined },
  { name: 'owner alive, same incarnation and revision', owner: owner('a', '1'), alive: [live('a', '1')], expected: undefined },
  { name: 'owner alive on a single node (revisions 0)', owner: owner('a', '1', '0'), alive: [live('a', '1', '0')], expected: undefined },
  { name: 'owner revision 0, alive entry with a revision', owner: owner('a', '1', '0'), alive: [live('a', '1', '9')], expected: undefined },
  { name: 'owner with a revision, alive entry 0', owner: owner('a', '1', '9'), alive: [live('a', '1', '0')], expected: undefined },
  { name: 'host has no alive entry', owner: owner('a', '1'), alive: [], expected: 'owner-gone' },
  { name: 'only other hosts alive', owner: owner('a', '1'), alive: [live('b', '1'), live('c', '7')], expected: 'owner-gone' },
  { name: 'host restarted: newer incarnation alive', owner: owner('a', '1'), alive: [live('a', '2', '8')], expected: 'owner-replaced' },
  { name: 'host restarted on a single node', owner: owner('a', '1', '0'), alive: [live('a', '2', '0')], expected: 'owner-replaced' },
  { name: 'same incarnation name, alive key recreated', owner: owner('a', '1', '5'), alive: [live('a', '1', '6')], expected: 'owner-replaced' },
  { name: 'a same-named incarnation of another host alive', owner: owner('a', '1'), alive: [{ host: 'b', incarnation: 'a:1', aliveRevision: '5' }], expected: 'owner-gone' },
];

describe('findOrphans (pure)', () => {
  for (const c of OWNER_CASES) {
    for (const death of [undefined, T0 + 50, T0 + 5_000] as const) {
      it(`${c.name}; death ${death === undefined ? 'unknown' : death > T0 + 100 ? 'after the op changed' : 'before the op changed'}`, () => {
        const ops = [op('v1', c.owner)];
        const deaths = new Map<string, number>(c.owner && death !== undefined ? [[c.owner.incarnation, death]] : []);
        const now = T0 + 10_000;
        const found = findOrphans(ops, c.alive, now, deaths);
        if (c.owner) expect(deadReason(c.owner, new Map(c.alive.map((a) => [a.host, a])))).toBe(c.expected);
        if (c.expected === undefined) {
          expect(found).toEqual([]);
          return;
        }
        const since = death === undefined ? T0 + 100 : Math.max(death, T0 + 100);
        expect(found).toEqual([{ op: ops[0], owner: c.owner, reason: c.expected, since, ageMs: now - since }]);
      });
    }
  }

  it('keeps the op exactly as listed (a claim compares it) and never reports a negative age', () => {
    const listed = op('v1', owner('a', '1'), { attempt: 3, revision: '77' });
    const [o] = findOrphans([listed], [], T0);
    expect(o?.op).toBe(listed);
    expect(o?.ageMs).toBe(0);
  });

  it('considers every op: a mix of queued, alive-owned and dead-owned ops across hosts and clusters', () => {
    const alive = [live('a', '2', '20'), live('b', '1', '11')];
    const ops = [
      op('q', null),
      op('a-old', owner('a', '1', '10'), { updatedAt: T0 + 300 }),
      op('a-new', owner('a', '2', '20')),
      op('b', owner('b', '1', '11')),
      op('c', owner('c', '1', '12'), { cluster: 'other@be', type: 'snapshot', kind: 'create_snapshot', status: 'creating', updatedAt: T0 + 200 }),
    ];
    const found = findOrphans(ops, alive, T0 + 1_000);
    expect(found.map((o) => [o.op.id, o.reason])).toEqual([
      ['c', 'owner-gone'],
      ['a-old', 'owner-replaced'],
    ]);
    expect(Object.fromEntries(countByCluster(found))).toEqual({ 'c@be': 1, 'other@be': 1 });
  });

  it('sorts by since, then type, then id', () => {
    const ops = [op('b', owner('x', '1')), op('a', owner('x', '1')), op('z', owner('x', '1'), { updatedAt: T0 }), op('a', owner('x', '1'), { type: 'snapshot' })];
    expect(findOrphans(ops, [], T0 + 1).map((o) => `${o.op.type}/${o.op.id}`)).toEqual(['volume/z', 'snapshot/a', 'volume/a', 'volume/b']);
  });

  it('an orphan claimed again (new attempt) is a new orphan for logs', () => {
    const first = findOrphans([op('v', owner('x', '1'))], [], T0)[0]!;
    const second = findOrphans([op('v', owner('y', '1'), { attempt: 2 })], [], T0)[0]!;
    expect(orphanKey(first)).not.toBe(orphanKey(second));
  });
});

describe('grace period (automatic cleanup)', () => {
  const orphans = findOrphans(
    [op('old', owner('x', '1'), { updatedAt: T0 }), op('new', owner('x', '1'), { updatedAt: T0 + 40_000 }), op('mid', owner('x', '1'), { updatedAt: T0 + 20_000 })],
    [],
    T0 + 60_000,
  );

  it('takes orphans at least graceMs old', () => {
    expect(dueForCleanup(orphans, 30_000).map((o) => o.op.id)).toEqual(['old', 'mid']);
    expect(dueForCleanup(orphans, 60_000).map((o) => o.op.id)).toEqual(['old']);
    expect(dueForCleanup(orphans, 0)).toHaveLength(3);
  });

  it('says when the next one comes of age', () => {
    expect(nextDueAt(orphans, 30_000)).toBe(T0 + 70_000);
    expect(nextDueAt(orphans, 50_000)).toBe(T0 + 70_000);
    expect(nextDueAt(orphans, 45_000)).toBe(T0 + 65_000);
    expect(nextDueAt(orphans, 0)).toBeUndefined();
    expect(nextDueAt([], 10)).toBeUndefined();
  });
});
