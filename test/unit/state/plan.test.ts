// The pure core both state stores share (src/state/plan.ts): what each request decides for what
// was read — a failed condition as a value, or the exact records to write.
import { describe, expect, it } from 'vitest';
import { InvalidInputError, InvalidTransitionError } from '../../../src/errors.js';
import { not } from '../../../src/state/expect.js';
import { planCreate, planOpUpdate, planRemove, planTransition, needsChildren } from '../../../src/state/plan.js';
import type { OpRecord, ResourceRef, VolumeRecord } from '../../../src/state/records.js';
import { valueOf } from '../../../src/state/state-store.js';
import { newVolume } from '../../contract/state-store.contract.js';

const NOW = 1_700_000_000_000;

function volume(over: Partial<VolumeRecord> = {}): VolumeRecord {
  return { ...newVolume(), status: 'available', created_at: NOW - 1_000, updated_at: null, revision: '7', ...over };
}

function op(ref: ResourceRef, over: Partial<OpRecord> = {}): OpRecord {
  return { type: ref.type, id: ref.id, opId: 'op-1', kind: 'delete_volume', status: 'deleting', cluster: 'ceph@rbd', owner: null, attempt: 0, params: {}, createdAt: NOW - 10, updatedAt: NOW - 10, publishedAt: null, revision: '8', ...over };
}

describe('planTransition', () => {
  const v = volume();
  const ref: ResourceRef = { type: 'volume', id: v.id };

  it('writes the patched record and creates the op record that holds the new transitional status', () => {
    const plan = planTransition(ref, { record: v, op: undefined }, { expect: { status: 'available' }, set: { status: 'deleting', previous_status: valueOf('status') }, op: { create: { kind: 'delete_volume', opId: 'op-9' } }, by: 'api' }, NOW);
    if (!('write' in plan)) throw new Error('expected a write');
    expect(plan.write.record).toMatchObject({ status: 'deleting', previous_status: 'available', updated_at: NOW });
    expect(plan.write.record).not.toHaveProperty('revision');
    expect(plan.write.op).toMatchObject({ opId: 'op-9', kind: 'delete_volume', status: 'deleting', owner: null, attempt: 0, createdAt: NOW });
  });

  it('names the first failed condition, on the record, on its op, or on a missing record', () => {
    expect(planTransition(ref, { record: v, op: undefined }, { expect: { status: 'in-use' }, set: {}, by: 'api' }, NOW)).toEqual({ failed: { field: 'status', expected: 'in-use', actual: 'available' } });
    expect(planTransition(ref, { record: v, op: undefined }, { expect: { status: not('error') }, expectOp: { owner: null }, set: {}, by: 'worker' }, NOW)).toEqual({ failed: { field: 'op.exists', expected: true, actual: false } });
    expect(planTransition(ref, { record: undefined, op: undefined }, { expect: {}, by: 'api' }, NOW)).toEqual({ failed: { field: 'exists', expected: true, actual: false } });
  });

  it('refuses an op create when one exists (a value), and a patch of a fixed or unknown field (an error)', () => {
    const deleting = volume({ status: 'deleting' });
    expect(planTransition(ref, { record: v, op: op(ref) }, { expect: {}, set: { status: 'deleting' }, op: { create: { kind: 'delete_volume' } }, by: 'api' }, NOW)).toEqual({ failed: { field: 'op.exists', expected: false, actual: true } });
    expect(() => planTransition(ref, { record: deleting, op: op(ref) }, { expect: {}, set: { id: 'x' } as never, by: 'admin' }, NOW)).toThrow(InvalidInputError);
    expect(() => planTransition(ref, { record: deleting, op: op(ref) }, { expect: {}, set: { nonsense: 1 } as never, by: 'admin' }, NOW)).toThrow(InvalidInputError);
  });

  it('keeps the invariant: a transitional status needs its op record, a final one must drop it', () => {
    expect(() => planTransition(ref, { record: v, op: undefined }, { expect: {}, set: { status: 'deleting' }, by: 'api' }, NOW)).toThrow(InvalidTransitionError);
    const deleting = volume({ status: 'deleting' });
    expect(() => planTransition(ref, { record: deleting, op: op(ref) }, { expect: {}, set: { status: 'error_deleting' }, op: { update: { attempt: 1 } }, by: 'worker' }, NOW)).toThrow(InvalidTransitionError);
    const done = planTransition(ref, { record: deleting, op: op(ref) }, { expect: { status: 'deleting' }, set: { status: 'error_deleting' }, op: 'remove', by: 'worker' }, NOW);
    expect(done).toMatchObject({ write: { record: { status: 'error_deleting' }, op: null } });
  });

  it("leaves the op record as it is when the request says nothing of it, and refuses a state machine's illegal move", () => {
    const deleting = volume({ status: 'deleting' });
    expect(planTransition(ref, { record: deleting, op: op(ref) }, { expect: {}, set: { name: 'x' }, by: 'api' }, NOW)).toMatchObject({ write: { op: 'keep' } });
    expect(() => planTransition(ref, { record: v, op: undefined }, { expect: {}, set: { status: 'creating' }, op: { create: { kind: 'create_volume' } }, by: 'api' }, NOW)).toThrow(InvalidTransitionError);
    expect(() => planTransition(ref, { record: v, op: undefined }, { expect: {}, set: { status: 'melting' } as never, by: 'admin' }, NOW)).toThrow(InvalidTransitionError);
  });
});

describe('planCreate, planRemove, planOpUpdate', () => {
  it('creates a record with its op, or says it exists; a child checks its parent', () => {
    const fresh = newVolume();
    const ref: ResourceRef = { type: 'volume', id: fresh.id };
    const plan = planCreate<VolumeRecord>(ref, { record: undefined, op: undefined }, { record: fresh, op: { kind: 'create_volume' } }, NOW);
    expect(plan).toMatchObject({ write: { record: { id: fresh.id, status: 'creating', created_at: NOW, updated_at: null }, op: { kind: 'create_volume', status: 'creating' } } });
    expect(planCreate<VolumeRecord>(ref, { record: volume(), op: undefined }, { record: fresh, op: { kind: 'create_volume' } }, NOW)).toEqual({ failed: { field: 'exists', expected: false, actual: true } });
    const parentRef: ResourceRef = { type: 'volume', id: 'parent' };
    const snapRef: ResourceRef = { type: 'snapshot', id: 'snap-1' };
    const request = { record: { id: 'snap-1', volume_id: 'parent', status: 'creating', cluster: 'ceph@rbd' } as never, op: { kind: 'create_snapshot' as const }, parent: { ref: parentRef, expect: { status: 'available' } } };
    expect(planCreate(snapRef, { record: undefined, op: undefined }, request, NOW)).toEqual({ failed: { field: 'volume.exists', expected: true, actual: false } });
    expect(planCreate(snapRef, { record: undefined, op: undefined }, request, NOW, volume({ status: 'in-use' }))).toEqual({ failed: { field: 'volume.status', expected: 'available', actual: 'in-use' } });
  });

  it('removes a record and its op when the conditions hold, counting snapshots only when asked', () => {
    const v = volume({ status: 'deleting' });
    const ref: ResourceRef = { type: 'volume', id: v.id };
    expect(planRemove(ref, { record: v, op: op(ref), children: 0 }, { expect: { status: 'deleting', snapshots: 0 }, by: 'worker' })).toEqual({ write: { record: null, op: null } });
    expect(planRemove(ref, { record: v, op: op(ref), children: 2 }, { expect: { snapshots: 0 }, by: 'worker' })).toEqual({ failed: { field: 'snapshots', expected: 0, actual: 2 } });
    expect(needsChildren('volume', { snapshots: 0 })).toBe(true);
    expect(needsChildren('volume', { status: 'x' })).toBe(false);
    expect(needsChildren('snapshot', { snapshots: 0 })).toBe(false);
  });

  it("updates an op under its conditions (the owner's incarnation), and refuses a negative attempt", () => {
    const ref: ResourceRef = { type: 'volume', id: 'v' };
    const owned = op(ref, { owner: { host: 'h1@be', incarnation: 'h1@be:1', aliveRevision: '3' } });
    expect(planOpUpdate(owned, { expect: { owner: 'h1@be:1' }, set: { attempt: 2 } }, NOW)).toMatchObject({ op: { attempt: 2, updatedAt: NOW } });
    expect(planOpUpdate(owned, { expect: { owner: null }, set: { attempt: 2 } }, NOW)).toEqual({ failed: { field: 'op.owner', expected: null, actual: 'h1@be:1' } });
    expect(planOpUpdate(undefined, { expect: {}, set: {} }, NOW)).toEqual({ failed: { field: 'op.exists', expected: true, actual: false } });
    expect(() => planOpUpdate(owned, { expect: {}, set: { attempt: -1 } }, NOW)).toThrow(InvalidInputError);
  });
});
