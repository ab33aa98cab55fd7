import { describe, expect, it } from 'vitest';
import { InvalidTransitionError } from '../../../src/errors.js';
import {
  ACTORS,
  type Actor,
  allows,
  assertTransition,
  DELETED,
  isTransitional,
  machineFor,
  COPY_KINDS,
  OP_KINDS,
  opKindFor,
  resettableStatuses,
  SNAPSHOT_STATUSES,
  sourcesOf,
  VOLUME_STATUSES,
} from '../../../src/state/state-machine.js';

// The specification, written out independently of the module: `from>to` per actor, `new` is
// creation. Every (from, to, actor) triple not listed here must be refused (admin resets and
// unchanged statuses follow the two rules below).
const VOLUME_SPEC: Record<Exclude<Actor, 'admin'>, string[]> = {
  api: [
    'new>creating',
    'available>deleting', 'error>deleting', 'error_restoring>deleting', 'error_extending>deleting', 'error_managing>deleting',
    'available>extending', 'in-use>extending',
    'available>attaching', 'in-use>attaching', 'attaching>available', 'attaching>in-use',
    'available>reserved', 'reserved>attaching', 'reserved>available',
    'in-use>detaching', 'detaching>in-use',
    // The attachment API: a multiattach volume reserved again, completion, detaching a connection not completed.
    'in-use>reserved', 'reserved>in-use', 'reserved>detaching',
  ],
  worker: [
    'creating>available', 'creating>error',
    'deleting>deleted', 'deleting>error_deleting',
    'extending>available', 'extending>in-use', 'extending>error_extending',
    'attaching>in-use', 'attaching>available',
    'detaching>available', 'detaching>in-use',
    // A connection made or refused before attachment-complete; a detach leaving one not completed.
    'attaching>reserved', 'detaching>reserved',
  ],
  cleanup: [
    'creating>error', 'deleting>deleted', 'deleting>error_deleting', 'extending>error_extending',
    'attaching>available', 'attaching>in-use', 'detaching>in-use',
    'attaching>reserved', 'detaching>reserved',
  ],
};

const SNAPSHOT_SPEC: Record<Exclude<Actor, 'admin'>, string[]> = {
  api: ['new>creating', 'available>deleting', 'error>deleting'],
  worker: ['creating>available', 'creating>error', 'deleting>deleted', 'deleting>error_deleting'],
  cleanup: ['creating>error', 'deleting>deleted', 'deleting>error_deleting'],
};

const TRANSITIONAL = {
  volume: ['creating', 'deleting', 'extending', 'attaching', 'detaching'],
  snapshot: ['creating', 'deleting'],
};

function expected(resource: 'volume' | 'snapshot', from: string | null, to: string, by: Actor): boolean {
  const statuses: readonly string[] = resource === 'volume' ? VOLUME_STATUSES : SNAPSHOT_STATUSES;
  if (from !== null && from === to) return true; // not a transition
  // os-force_delete: from any status into deleting (the API's own conditions refuse an attached volume).
  if (by === 'api' && from !== null && to === 'deleting') return true;
  if (by === 'admin') return from !== null && to !== DELETED && !TRANSITIONAL[resource].includes(to) && statuses.includes(to);
  const spec = resource === 'volume' ? VOLUME_SPEC : SNAPSHOT_SPEC;
  return spec[by].includes(`${from ?? 'new'}>${to}`);
}

describe.each(['volume', 'snapshot'] as const)('%s state machine', (resource) => {
  const statuses: readonly string[] = resource === 'volume' ? VOLUME_STATUSES : SNAPSHOT_STATUSES;
  const froms: (string | null)[] = [null, ...statuses];
  const tos = [...statuses, DELETED];

  it(`decides every (from, to, actor) triple as specified: ${froms.length} × ${tos.length} × ${ACTORS.length}`, () => {
    const mismatches: string[] = [];
    let checked = 0;
    for (const from of froms) {
      for (const to of tos) {
        for (const by of ACTORS) {
          checked++;
          if (allows(resource, from, to, by) !== expected(resource, from, to, by)) mismatches.push(`${by}: ${from ?? 'new'} → ${to}`);
        }
      }
    }
    expect(mismatches).toEqual([]);
    expect(checked).toBe(froms.length * tos.length * ACTORS.length);
  });

  it('throws a typed error for every refused transition and nothing for allowed ones', () => {
    for (const from of froms) {
      for (const to of tos) {
        for (const by of ACTORS) {
          if (allows(resource, from, to, by)) {
            expect(() => assertTransition(resource, from, to, by)).not.toThrow();
            continue;
          }
          const err = (() => {
            try {
              assertTransition(resource, from, to, by);
            } catch (e) {
              return e;
            }
            return undefined;
          })();
          expect(err).toBeInstanceOf(InvalidTransitionError);
          expect(err).toMatchObject({ code: 'INVALID_TRANSITION', resource, from: from ?? '(absent)', to });
        }
      }
    }
  });

  it('tracks every transitional status with exactly one op kind of the same resource (copies share creating with create)', () => {
    expect([...machineFor(resource).transitional].sort()).toEqual([...TRANSITIONAL[resource]].sort());
    for (const status of statuses) {
      const kinds = OP_KINDS.filter((k) => k.resource === resource && k.status === status && !COPY_KINDS.includes(k.kind));
      expect(kinds.length).toBe(isTransitional(resource, status) ? 1 : 0);
      expect(opKindFor(resource, status)?.kind).toBe(kinds[0]?.kind);
    }
  });

  it('lets a worker and a cleaner leave every transitional status', () => {
    for (const status of TRANSITIONAL[resource]) {
      expect(tos.some((to) => to !== status && allows(resource, status, to, 'worker'))).toBe(true);
      const spec = OP_KINDS.find((k) => k.resource === resource && k.status === status)!;
      if (spec.cleanup.type === 'rerun') expect(allows(resource, status, DELETED, 'cleanup') || allows(resource, status, 'available', 'cleanup')).toBe(true);
      if (spec.cleanup.type === 'set-status') expect(allows(resource, status, spec.cleanup.status, 'cleanup')).toBe(true);
      if (spec.cleanup.type === 'previous-status') expect(allows(resource, status, spec.cleanup.fallback, 'cleanup')).toBe(true);
    }
  });

  it('reaches every status from creation (through admin resets at worst)', () => {
    const reached = new Set<string>();
    let frontier: (string | null)[] = [null];
    while (frontier.length > 0) {
      const next: string[] = [];
      for (const from of frontier) {
        for (const to of statuses) {
          if (!reached.has(to) && ACTORS.some((by) => allows(resource, from, to, by))) {
            reached.add(to);
            next.push(to);
          }
        }
      }
      frontier = next;
    }
    expect([...reached].sort()).toEqual([...statuses].sort());
  });

  it('offers os-reset_status every status that needs no worker', () => {
    expect(resettableStatuses(resource)).toEqual(statuses.filter((s) => !TRANSITIONAL[resource].includes(s)));
  });
});

describe('sourcesOf', () => {
  it('gives Cinder\'s delete and extend conditions in table order', () => {
    expect(sourcesOf('volume', 'deleting', 'api')).toEqual(['available', 'error', 'error_restoring', 'error_extending', 'error_managing']);
    expect(sourcesOf('volume', 'extending', 'api')).toEqual(['available', 'in-use']);
    expect(sourcesOf('snapshot', 'deleting', 'api')).toEqual(['available', 'error']);
    expect(sourcesOf('snapshot', 'deleting', 'api', { forced: true })).toEqual(['available', 'error', 'creating', 'error_deleting']);
    expect(sourcesOf('volume', 'creating', 'api')).toEqual([]);
  });
});
