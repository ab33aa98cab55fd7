// The StateStore contract: one suite, run on every adapter (SQLite in test/unit/state, etcd in
// test/integration/state), so the single node provably has the cluster's semantics.
import { randomUUID } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClosedError, FencedError, InvalidInputError, InvalidTransitionError } from '../../src/errors.js';
import type { Fence } from '../../src/fence.js';
import type { OwnerRef } from '../../src/identity.js';
import { ManualClock } from '../../src/lifecycle/clock.js';
import { not } from '../../src/state/expect.js';
import { VersionUnsupportedError } from '../../src/protocol.js';
import { createStateMetrics, type StateMetrics } from '../../src/state/metrics.js';
import type { SnapshotRecord, VolumeRecord } from '../../src/state/records.js';
import { type NewRecord, type StateStore, valueOf } from '../../src/state/state-store.js';

/** A fence the harness can take away, as a lost lease would. */
export interface TestFence {
  readonly fence: Fence;
  revoke(): Promise<void>;
}

/** One adapter under test. */
export interface StateStoreHarness {
  readonly store: StateStore;
  /** A fence that holds until revoked (etcd: a real alive key on a lease). */
  makeFence(): Promise<TestFence>;
  /** The stored text of a record, as the adapter keeps it (bypassing the store). */
  readStored(which: StoredRef): Promise<string | undefined>;
  /** Replaces the stored text of a record behind the store's back (bad input, another release's record). */
  writeStored(which: StoredRef, text: string): Promise<void>;
  close(): Promise<void>;
}

/** One stored record: a resource or the op record of a resource. */
export interface StoredRef {
  readonly kind: 'resource' | 'op';
  readonly type: 'volume' | 'snapshot';
  readonly id: string;
}

/** Builds an adapter on the given clock and metrics. */
export type StateStoreFactory = (deps: { clock: ManualClock; metrics: StateMetrics }) => Promise<StateStoreHarness>;

const ME: OwnerRef = { host: 'node1@rbd', incarnation: 'node1@rbd:aaa', aliveRevision: '0' };
const PEER: OwnerRef = { host: 'node2@rbd', incarnation: 'node2@rbd:bbb', aliveRevision: '0' };

/** A new volume in `creating`, as the API builds it. */
export function newVolume(over: Partial<NewRecord<VolumeRecord>> = {}): NewRecord<VolumeRecord> {
  return {
    id: randomUUID(),
    name: 'vol',
    description: null,
    size: 1,
    status: 'creating',
    previous_status: null,
    project_id: 'admin',
    user_id: 'admin',
    cluster: 'ceph@rbd',
    host: null,
    attach_status: 'detached',
    availability_zone: 'nova',
    volume_type: '__DEFAULT__',
    migration_status: null,
    bootable: false,
    multiattach: false,
    metadata: {},
    snapshot_id: null,
    source_volid: null,
    source_held: false,
    // Schema 2's fields as a record of schema 1 reads back (no attachments, the default type).
    attachments: [],
    volume_type_id: '3d7d2a34-2a8f-5d0e-9a0a-5f1c7b0e4c11',
    ...over,
  };
}

/** A new snapshot in `creating` of `volumeId`, as the API builds it. */
export function newSnapshot(volumeId: string, over: Partial<NewRecord<SnapshotRecord>> = {}): NewRecord<SnapshotRecord> {
  return {
    id: randomUUID(),
    volume_id: volumeId,
    name: 'snap',
    description: null,
    size: 1,
    status: 'creating',
    previous_status: null,
    project_id: 'admin',
    user_id: 'admin',
    cluster: 'ceph@rbd',
    host: null,
    progress: '0%',
    metadata: {},
    ...over,
  };
}

function metricValue(registry: Registry, labels: Record<string, string>): Promise<number> {
  return registry
    .getSingleMetric('hearth_transitions_total')!
    .get()
    .then((m) => m.values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((a, v) => a + v.value, 0));
}

/** Registers the contract suite for one adapter. */
export function describeStateStore(name: string, factory: StateStoreFactory): void {
  describe(`StateStore contract: ${name}`, () => {
    let h: StateStoreHarness;
    let store: StateStore;
    let clock: ManualClock;
    let registry: Registry;

    beforeEach(async () => {
      clock = new ManualClock(1_700_000_000_000);
      registry = new Registry();
      h = await factory({ clock, metrics: createStateMetrics(registry) });
      store = h.store;
    });
    afterEach(async () => {
      await h.close();
    });

    /** Creates a volume and completes its creation: an `available` volume with no op. */
    async function availableVolume(over: Partial<NewRecord<VolumeRecord>> = {}): Promise<VolumeRecord> {
      const created = await store.create('volume', { record: newVolume(over), op: { kind: 'create_volume' } });
      if (!created.ok) throw new Error('create failed');
      const done = await store.transition({ type: 'volume', id: created.record.id }, { expect: { status: 'creating' }, set: { status: 'available' }, op: 'remove', by: 'worker' });
      if (!done.ok) throw new Error('completion failed');
      return done.record;
    }

    describe('record versions', () => {
      it('stores every record with the schema version it was written at', async () => {
        const created = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
        if (!created.ok) throw new Error('create failed');
        for (const kind of ['resource', 'op'] as const) {
          const stored = JSON.parse((await h.readStored({ kind, type: 'volume', id: created.record.id }))!) as Record<string, unknown>;
          expect(stored.v).toEqual(expect.any(Number));
        }
        // The version is the store's business: records come back without it.
        expect(await store.get({ type: 'volume', id: created.record.id })).not.toHaveProperty('v');
      });

      for (const [what, v] of [
        ['a version far in the future', 99],
        ['no version', undefined],
        ['a version of the wrong type', '1'],
      ] as const) {
        it(`refuses a record with ${what}: a typed error naming it, and nothing written on its account`, async () => {
          const volume = await availableVolume();
          const ref = { kind: 'resource', type: 'volume', id: volume.id } as const;
          const { v: _old, ...body } = JSON.parse((await h.readStored(ref))!) as Record<string, unknown>;
          const bad = JSON.stringify(v === undefined ? body : { ...body, v });
          await h.writeStored(ref, bad);
          const read = store.get({ type: 'volume', id: volume.id });
          await expect(read).rejects.toBeInstanceOf(VersionUnsupportedError);
          await expect(store.get({ type: 'volume', id: volume.id })).rejects.toThrow(new RegExp(`record .*${volume.id}`));
          await expect(store.list('volume')).rejects.toBeInstanceOf(VersionUnsupportedError);
          const write = store.transition({ type: 'volume', id: volume.id }, { expect: { status: 'available' }, set: { status: 'deleting' }, op: { create: { kind: 'delete_volume' } }, by: 'api' });
          await expect(write).rejects.toBeInstanceOf(VersionUnsupportedError);
          expect(await h.readStored(ref)).toBe(bad);
          expect(await h.readStored({ kind: 'op', type: 'volume', id: volume.id })).toBeUndefined();
        });
      }

      it('refuses an op record it cannot read the same way', async () => {
        const created = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
        if (!created.ok) throw new Error('create failed');
        const ref = { kind: 'op', type: 'volume', id: created.record.id } as const;
        const bad = JSON.stringify({ ...(JSON.parse((await h.readStored(ref))!) as object), v: 1_000 });
        await h.writeStored(ref, bad);
        await expect(store.getOp({ type: 'volume', id: created.record.id })).rejects.toBeInstanceOf(VersionUnsupportedError);
        await expect(store.listOps()).rejects.toBeInstanceOf(VersionUnsupportedError);
        const done = store.transition({ type: 'volume', id: created.record.id }, { expect: { status: 'creating' }, set: { status: 'available' }, op: 'remove', by: 'worker' });
        await expect(done).rejects.toBeInstanceOf(VersionUnsupportedError);
        expect(await h.readStored(ref)).toBe(bad);
      });

      it('hands back the op as stored with its bytes as stored, version included; a token it cannot read, or one a rewrite outdated, costs only a read', async () => {
        const created = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume', params: { size: 1 } } });
        if (!created.ok || !created.op || created.stored === undefined) throw new Error('create failed');
        const ref = { kind: 'op', type: 'volume', id: created.record.id } as const;
        const asStored = (await h.readStored(ref))!;
        expect((JSON.parse(asStored) as { v?: unknown }).v).toEqual(expect.any(Number));
        // The token ends with exactly the stored bytes: a claim that assumes it compares against them.
        expect(created.stored.endsWith(asStored)).toBe(true);
        expect(store.opOfStored(created.stored)).toEqual(created.op);
        expect(store.opOfStored(created.stored)).not.toHaveProperty('v');
        // A token whose record this build cannot read names no op: the job takes the ordinary path.
        const future = (created.stored.slice(0, -asStored.length) + JSON.stringify({ ...(JSON.parse(asStored) as object), v: 1_000 })) as typeof created.stored;
        expect(store.opOfStored(future)).toBeUndefined();
        // The op rewritten behind the store's back (as another release or a migration would): the
        // token is stale, and the claim is decided on the op as it is now.
        await h.writeStored(ref, JSON.stringify({ ...(JSON.parse(asStored) as object), attempt: 5 }));
        const claim = await store.updateOp(
          { type: 'volume', id: created.record.id },
          { expect: { opId: created.op.opId, owner: null, attempt: 0 }, set: { owner: ME, attempt: 1 }, assume: created.stored },
        );
        expect(claim).toEqual({ ok: false, failed: { field: 'op.attempt', expected: 0, actual: 5 } });
        expect(await store.getOp({ type: 'volume', id: created.record.id })).toMatchObject({ owner: null, attempt: 5 });
      });
    });

    describe('create', () => {
      it('creates a resource and its op record in one write, stamping times and revision', async () => {
        const record = newVolume({ name: 'a' });
        const res = await store.create('volume', { record, op: { kind: 'create_volume', params: { size: 1 } } });
        expect(res.ok).toBe(true);
        if (!res.ok) return;
        expect(res.record).toMatchObject({ ...record, created_at: clock.now(), updated_at: null });
        expect(res.record.revision).toBe(res.revision);
        expect(res.op).toMatchObject({ type: 'volume', id: record.id, kind: 'create_volume', status: 'creating', cluster: 'ceph@rbd', owner: null, attempt: 0, params: { size: 1 }, createdAt: clock.now(), updatedAt: clock.now(), publishedAt: null });
        expect(res.op?.opId).toMatch(/^[0-9a-f-]{36}$/);
        expect(await store.get({ type: 'volume', id: record.id })).toEqual(res.record);
        expect(await store.getOp({ type: 'volume', id: record.id })).toEqual(res.op);
      });

      it('is conditional on absence: a second create names `exists`', async () => {
        const record = newVolume();
        await store.create('volume', { record, op: { kind: 'create_volume' } });
        const again = await store.create('volume', { record, op: { kind: 'create_volume' } });
        expect(again).toEqual({ ok: false, failed: { field: 'exists', expected: false, actual: true } });
      });

      it('refuses to create a transitional resource without an op, or with the wrong op kind', async () => {
        const record = newVolume();
        await expect(store.create('volume', { record })).rejects.toBeInstanceOf(InvalidTransitionError);
        await expect(store.create('volume', { record, op: { kind: 'delete_volume' } })).rejects.toBeInstanceOf(InvalidTransitionError);
        await expect(store.create('volume', { record: { ...record, status: 'available' }, op: { kind: 'create_volume' } })).rejects.toBeInstanceOf(InvalidTransitionError);
        expect(await store.get({ type: 'volume', id: record.id })).toBeUndefined();
      });
    });

    describe('transition', () => {
      it('changes the record when every condition holds and reports the new revision', async () => {
        const vol = await availableVolume();
        await clock.advance(1_000);
        const res = await store.transition({ type: 'volume', id: vol.id }, { expect: { status: 'available', size: 1 }, set: { name: 'renamed' }, by: 'api' });
        expect(res.ok).toBe(true);
        if (!res.ok) return;
        expect(res.record).toMatchObject({ name: 'renamed', status: 'available', updated_at: clock.now() });
        expect(res.revision).not.toBe(vol.revision);
        expect((await store.get({ type: 'volume', id: vol.id }))?.revision).toBe(res.revision);
      });

      it('names the condition that failed, with what the field held', async () => {
        const vol = await availableVolume();
        const res = await store.transition({ type: 'volume', id: vol.id }, { expect: { size: 1, status: ['error', 'in-use'] }, set: { name: 'x' }, by: 'api' });
        expect(res).toEqual({ ok: false, failed: { field: 'status', expected: ['error', 'in-use'], actual: 'available' } });
        expect((await store.get({ type: 'volume', id: vol.id }))?.revision).toBe(vol.revision);
      });

      it('reports a missing resource as the `exists` condition', async () => {
        const res = await store.transition({ type: 'volume', id: randomUUID() }, { expect: {}, set: { name: 'x' }, by: 'api' });
        expect(res).toEqual({ ok: false, failed: { field: 'exists', expected: true, actual: false } });
      });

      it('has Cinder semantics: null matches missing, lists are one-of, not() negates and matches missing', async () => {
        const vol = await availableVolume();
        const ref = { type: 'volume' as const, id: vol.id };
        const attempt = (e: Record<string, unknown>) => store.transition(ref, { expect: e as never, set: { description: 'x' }, by: 'api' });
        expect((await attempt({ migration_status: null })).ok).toBe(true);
        expect((await attempt({ migration_status: [null, 'success'] })).ok).toBe(true);
        expect((await attempt({ migration_status: not('migrating') })).ok).toBe(true);
        expect((await attempt({ attach_status: not(['attached', 'attaching']) })).ok).toBe(true);
        expect(await attempt({ migration_status: not(null) })).toEqual({ ok: false, failed: { field: 'migration_status', expected: { not: null }, actual: null } });
        expect(await attempt({ migration_status: not(['x', null]) })).toEqual({ ok: false, failed: { field: 'migration_status', expected: { not: ['x', null] }, actual: null } });
        expect(await attempt({ attach_status: not('detached') })).toEqual({ ok: false, failed: { field: 'attach_status', expected: { not: 'detached' }, actual: 'detached' } });
        expect(await attempt({ nonexistent_field: null })).toMatchObject({ ok: true });
      });

      it('compares revisions: a write based on a stale revision names `revision`', async () => {
        const vol = await availableVolume();
        const ref = { type: 'volume' as const, id: vol.id };
        expect((await store.transition(ref, { expect: { revision: vol.revision }, set: { name: 'one' }, by: 'api' })).ok).toBe(true);
        const stale = await store.transition(ref, { expect: { revision: vol.revision }, set: { name: 'two' }, by: 'api' });
        expect(stale).toMatchObject({ ok: false, failed: { field: 'revision', expected: vol.revision } });
      });

      it('creates the op record in the same write that enters a transitional status', async () => {
        const vol = await availableVolume();
        const ref = { type: 'volume' as const, id: vol.id };
        const res = await store.transition(ref, { expect: { status: ['available', 'error'] }, set: { status: 'deleting' }, op: { create: { kind: 'delete_volume' } }, by: 'api' });
        expect(res).toMatchObject({ ok: true, record: { status: 'deleting' }, op: { kind: 'delete_volume', status: 'deleting', owner: null } });
        expect(await store.getOp(ref)).toMatchObject({ kind: 'delete_volume', status: 'deleting' });
        const again = await store.transition(ref, { expect: { status: ['available', 'error'] }, set: { status: 'deleting' }, op: { create: { kind: 'delete_volume' } }, by: 'api' });
        expect(again).toEqual({ ok: false, failed: { field: 'status', expected: ['available', 'error'], actual: 'deleting' } });
      });

      it('keeps the invariant: no transitional status without its op, no op outside one', async () => {
        const vol = await availableVolume();
        const ref = { type: 'volume' as const, id: vol.id };
        await expect(store.transition(ref, { expect: {}, set: { status: 'deleting' }, by: 'api' })).rejects.toBeInstanceOf(InvalidTransitionError);
        await store.transition(ref, { expect: {}, set: { status: 'deleting' }, op: { create: { kind: 'delete_volume' } }, by: 'api' });
        await expect(store.transition(ref, { expect: {}, set: { status: 'error_deleting' }, by: 'worker' })).rejects.toBeInstanceOf(InvalidTransitionError);
        expect(await store.get({ type: 'volume', id: vol.id })).toMatchObject({ status: 'deleting' });
      });

      it('refuses a status change the state machine forbids for the actor', async () => {
        const vol = await availableVolume();
        const ref = { type: 'volume' as const, id: vol.id };
        const err = await store.transition(ref, { expect: {}, set: { status: 'error_extending' }, by: 'api' }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(InvalidTransitionError);
        expect(err).toMatchObject({ code: 'INVALID_TRANSITION', resource: 'volume', from: 'available', to: 'error_extending' });
        await expect(store.transition(ref, { expect: {}, set: { status: 'no-such-status' as never }, by: 'admin' })).rejects.toBeInstanceOf(InvalidTransitionError);
        expect((await store.get(ref))?.revision).toBe(vol.revision);
      });

      it('copies another field with valueOf (previous_status = status)', async () => {
        const vol = await availableVolume();
        const res = await store.transition(
          { type: 'volume', id: vol.id },
          { expect: { status: ['available', 'in-use'] }, set: { status: 'extending', previous_status: valueOf('status') }, op: { create: { kind: 'extend_volume', params: { newSize: 2 } } }, by: 'api' },
        );
        expect(res).toMatchObject({ ok: true, record: { status: 'extending', previous_status: 'available' }, op: { params: { newSize: 2 } } });
      });

      it('stamps updated_by, the writer of a final status, on a record that had none; other unknown fields stay refused', async () => {
        const vol = await availableVolume();
        expect(vol.updated_by).toBeUndefined();
        const ref = { type: 'volume' as const, id: vol.id };
        const res = await store.transition(ref, { expect: { status: 'available' }, set: { host: 'n1@rbd', updated_by: 'n1@rbd:6a1f' }, by: 'worker' });
        expect(res).toMatchObject({ ok: true, record: { host: 'n1@rbd', updated_by: 'n1@rbd:6a1f' } });
        expect(await store.get(ref)).toMatchObject({ updated_by: 'n1@rbd:6a1f' });
        await expect(store.transition(ref, { expect: {}, set: { no_such_field: 1 } as never, by: 'worker' })).rejects.toBeInstanceOf(InvalidInputError);
      });

      it('lets an admin reset abandon the op, but never into a transitional status', async () => {
        const vol = await availableVolume();
        const ref = { type: 'volume' as const, id: vol.id };
        await store.transition(ref, { expect: {}, set: { status: 'deleting' }, op: { create: { kind: 'delete_volume' } }, by: 'api' });
        await expect(store.transition(ref, { expect: {}, set: { status: 'creating' }, op: { create: { kind: 'create_volume' } }, by: 'admin' })).rejects.toBeInstanceOf(InvalidTransitionError);
        const reset = await store.transition(ref, { expect: {}, set: { status: 'error' }, op: 'remove', by: 'admin' });
        expect(reset).toMatchObject({ ok: true, record: { status: 'error' }, op: null });
        expect(await store.getOp(ref)).toBeUndefined();
      });

      it('replaces the op in flight with a new one in one write (force-delete); the old owner can write nothing more', async () => {
        const created = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
        if (!created.ok || !created.op) throw new Error('no op');
        const ref = { type: 'volume' as const, id: created.record.id };
        await store.updateOp(ref, { expect: { opId: created.op.opId }, set: { owner: PEER, attempt: 1 } });
        const forced = await store.transition(ref, {
          expect: { status: 'creating' },
          expectOp: { opId: created.op.opId },
          set: { status: 'deleting' },
          op: { replace: { kind: 'delete_volume', params: { force: true } } },
          by: 'api',
        });
        expect(forced).toMatchObject({ ok: true, record: { status: 'deleting' }, op: { kind: 'delete_volume', status: 'deleting', owner: null, attempt: 0, params: { force: true } } });
        if (!forced.ok || !forced.op) throw new Error('no op');
        expect(forced.op.opId).not.toBe(created.op.opId);
        expect(await store.getOp(ref)).toMatchObject({ opId: forced.op.opId, owner: null });
        const late = await store.transition(ref, { expect: { status: 'creating' }, expectOp: { opId: created.op.opId, owner: PEER.incarnation }, set: { status: 'available' }, op: 'remove', by: 'worker' });
        expect(late.ok).toBe(false);
        // Where there is no op, replace creates one.
        const idle = await availableVolume();
        const fresh = await store.transition({ type: 'volume', id: idle.id }, { expect: { status: 'available' }, set: { status: 'deleting' }, op: { replace: { kind: 'delete_volume' } }, by: 'api' });
        expect(fresh).toMatchObject({ ok: true, op: { kind: 'delete_volume' } });
      });

      it('checks the op record with expectOp (a worker completes only its own op)', async () => {
        const vol = await availableVolume();
        const ref = { type: 'volume' as const, id: vol.id };
        const started = await store.transition(ref, { expect: {}, set: { status: 'deleting' }, op: { create: { kind: 'delete_volume' } }, by: 'api' });
        if (!started.ok || !started.op) throw new Error('no op');
        await store.updateOp(ref, { expect: { opId: started.op.opId, owner: null }, set: { owner: PEER, attempt: 1 } });
        const mine = await store.remove(ref, { expect: { status: 'deleting' }, expectOp: { opId: started.op.opId, owner: ME.incarnation }, by: 'worker' });
        expect(mine).toEqual({ ok: false, failed: { field: 'op.owner', expected: ME.incarnation, actual: PEER.incarnation } });
        const noOp = await store.transition({ type: 'volume', id: (await availableVolume()).id }, { expect: {}, expectOp: { owner: null }, set: { name: 'x' }, by: 'worker' });
        expect(noOp).toEqual({ ok: false, failed: { field: 'op.exists', expected: true, actual: false } });
      });
    });

    describe('op records', () => {
      it('claims, hands back and marks published conditionally', async () => {
        const created = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
        if (!created.ok || !created.op) throw new Error('create failed');
        const ref = { type: 'volume' as const, id: created.record.id };
        const op = created.op;
        const published = await store.updateOp(ref, { expect: { opId: op.opId }, set: { publishedAt: 5 } });
        expect(published).toMatchObject({ ok: true, op: { publishedAt: 5, owner: null } });
        const claim = await store.updateOp(ref, { expect: { opId: op.opId, owner: null, attempt: 0 }, set: { owner: ME, attempt: 1 } });
        expect(claim).toMatchObject({ ok: true, op: { owner: ME, attempt: 1 } });
        const lost = await store.updateOp(ref, { expect: { opId: op.opId, owner: null, attempt: 0 }, set: { owner: PEER, attempt: 1 } });
        expect(lost).toEqual({ ok: false, failed: { field: 'op.owner', expected: null, actual: ME.incarnation } });
        const handBack = await store.updateOp(ref, { expect: { owner: ME.incarnation }, set: { owner: null } });
        expect(handBack).toMatchObject({ ok: true, op: { owner: null, attempt: 1 } });
        if (!handBack.ok || !claim.ok) return;
        expect(handBack.revision).not.toBe(claim.revision);
        const stale = await store.updateOp(ref, { expect: { revision: claim.revision }, set: { owner: PEER } });
        expect(stale).toMatchObject({ ok: false, failed: { field: 'op.revision' } });
        expect(await store.get(ref)).toMatchObject({ status: 'creating', revision: created.revision });
      });

      it('hands back the op as stored; a claim that assumes it reads nothing first, and can read the resource with it', async () => {
        const created = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume', params: { size: 1 } } });
        if (!created.ok || !created.op || created.stored === undefined) throw new Error('create failed');
        const ref = { type: 'volume' as const, id: created.record.id };
        expect(store.opOfStored(created.stored)).toEqual(created.op);
        expect(store.opOfStored('not a token' as typeof created.stored)).toBeUndefined();
        const expect0 = { opId: created.op.opId, kind: 'create_volume', owner: null, attempt: 0 };
        const claim = await store.updateOp(ref, { expect: expect0, set: { owner: ME, attempt: 1 }, assume: created.stored, withRecord: true });
        expect(claim).toMatchObject({ ok: true, op: { owner: ME, attempt: 1 }, record: { id: ref.id, status: 'creating', size: 1 } });
        // The same token again is stale now: the store decides on what the op really is.
        const again = await store.updateOp(ref, { expect: expect0, set: { owner: PEER, attempt: 1 }, assume: created.stored });
        expect(again).toEqual({ ok: false, failed: { field: 'op.owner', expected: null, actual: ME.incarnation } });
        // A stale token whose conditions still hold on the real op: the write happens, on the real op.
        const handedBack = await store.updateOp(ref, { expect: { owner: ME.incarnation }, set: { owner: null } });
        expect(handedBack.ok).toBe(true);
        const retaken = await store.updateOp(ref, { expect: { opId: created.op.opId, owner: null, attempt: 1 }, set: { owner: PEER, attempt: 2 }, assume: created.stored });
        expect(retaken).toMatchObject({ ok: true, op: { owner: PEER, attempt: 2, kind: 'create_volume' } });
        expect(await store.getOp(ref)).toMatchObject({ owner: PEER, attempt: 2 });
      });

      it('stamps publishedAt, in one call, on the ops still as given; ops changed since are left alone', async () => {
        const a = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
        const b = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
        if (!a.ok || !b.ok || !a.op || !b.op) throw new Error('create failed');
        const refB = { type: 'volume' as const, id: b.record.id };
        await store.updateOp(refB, { expect: { owner: null }, set: { owner: ME, attempt: 1 } });
        expect(await store.markPublished([a.op, b.op, a.op], 1_234)).toBe(1);
        expect(await store.getOp({ type: 'volume', id: a.record.id })).toMatchObject({ publishedAt: 1_234, owner: null, opId: a.op.opId });
        expect(await store.getOp(refB)).toMatchObject({ publishedAt: null, owner: ME });
        expect(await store.markPublished([], 1)).toBe(0);
        // The stamp changed the op: a claim that expected it unchanged is decided on the real op.
        const claim = await store.updateOp({ type: 'volume', id: a.record.id }, { expect: { revision: a.op.revision }, set: { owner: ME } });
        expect(claim).toMatchObject({ ok: false, failed: { field: 'op.revision' } });
      });

      it('stamps a burst larger than one etcd transaction may hold (300 ops) in full', async () => {
        const created = await Promise.all(Array.from({ length: 300 }, () => store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } })));
        const ops = created.map((c) => {
          if (!c.ok || !c.op) throw new Error('create failed');
          return c.op;
        });
        expect(await store.markPublished(ops, 5_678)).toBe(300);
        const sample = created[299];
        if (!sample?.ok) throw new Error('create failed');
        expect(await store.getOp({ type: 'volume', id: sample.record.id })).toMatchObject({ publishedAt: 5_678 });
      });

      it('reports a missing op as `op.exists`', async () => {
        const vol = await availableVolume();
        expect(await store.updateOp({ type: 'volume', id: vol.id }, { expect: {}, set: { owner: ME } })).toEqual({ ok: false, failed: { field: 'op.exists', expected: true, actual: false } });
      });

      it('lists ops by cluster, owner, ownership and unpublished age, oldest first', async () => {
        const a = await store.create('volume', { record: newVolume({ cluster: 'a@x' }), op: { kind: 'create_volume' } });
        await clock.advance(10);
        const b = await store.create('volume', { record: newVolume({ cluster: 'b@x' }), op: { kind: 'create_volume' } });
        await clock.advance(10);
        const c = await store.create('volume', { record: newVolume({ cluster: 'a@x' }), op: { kind: 'create_volume' } });
        if (!a.ok || !b.ok || !c.ok) throw new Error('create failed');
        await store.updateOp({ type: 'volume', id: b.record.id }, { expect: {}, set: { owner: PEER, attempt: 1 } });
        await store.updateOp({ type: 'volume', id: c.record.id }, { expect: {}, set: { publishedAt: clock.now() } });
        const ids = (ops: { id: string }[]) => ops.map((o) => o.id);
        expect(ids(await store.listOps())).toEqual([a.record.id, b.record.id, c.record.id]);
        expect(ids(await store.listOps({ cluster: 'a@x' }))).toEqual([a.record.id, c.record.id]);
        expect(ids(await store.listOps({ ownerHost: PEER.host }))).toEqual([b.record.id]);
        expect(ids(await store.listOps({ ownerIncarnation: PEER.incarnation }))).toEqual([b.record.id]);
        expect(ids(await store.listOps({ ownership: 'queued' }))).toEqual([a.record.id, c.record.id]);
        expect(ids(await store.listOps({ ownership: 'owned', type: 'volume' }))).toEqual([b.record.id]);
        expect(ids(await store.listOps({ unpublishedBefore: clock.now() + 1 }))).toEqual([a.record.id]);
        expect(ids(await store.listOps({ type: 'snapshot' }))).toEqual([]);
      });
    });

    describe('remove', () => {
      it('removes the resource and its op record together (the final delete)', async () => {
        const vol = await availableVolume();
        const ref = { type: 'volume' as const, id: vol.id };
        await store.transition(ref, { expect: { status: 'available' }, set: { status: 'deleting' }, op: { create: { kind: 'delete_volume' } }, by: 'api' });
        const res = await store.remove(ref, { expect: { status: 'deleting' }, by: 'worker' });
        expect(res).toMatchObject({ ok: true, record: { id: vol.id, status: 'deleting' }, op: null });
        expect(await store.get(ref)).toBeUndefined();
        expect(await store.getOp(ref)).toBeUndefined();
        expect(await store.remove(ref, { expect: {}, by: 'worker' })).toEqual({ ok: false, failed: { field: 'exists', expected: true, actual: false } });
      });

      it('refuses to remove a resource that is not being deleted', async () => {
        const vol = await availableVolume();
        await expect(store.remove({ type: 'volume', id: vol.id }, { expect: {}, by: 'worker' })).rejects.toBeInstanceOf(InvalidTransitionError);
        expect(await store.get({ type: 'volume', id: vol.id })).toBeDefined();
      });
    });

    describe('snapshots and their volume', () => {
      it('creates a snapshot only while its volume meets the conditions, and changes the volume\'s revision', async () => {
        const vol = await availableVolume();
        const snap = newSnapshot(vol.id);
        const res = await store.create('snapshot', { record: snap, op: { kind: 'create_snapshot' }, parent: { ref: { type: 'volume', id: vol.id }, expect: { status: 'available' } } });
        expect(res).toMatchObject({ ok: true, record: { volume_id: vol.id, status: 'creating' }, op: { kind: 'create_snapshot' } });
        expect((await store.get({ type: 'volume', id: vol.id }))?.revision).not.toBe(vol.revision);
        const busy = await store.create('snapshot', { record: newSnapshot(vol.id), op: { kind: 'create_snapshot' }, parent: { ref: { type: 'volume', id: vol.id }, expect: { status: 'in-use' } } });
        expect(busy).toEqual({ ok: false, failed: { field: 'volume.status', expected: 'in-use', actual: 'available' } });
        const orphan = await store.create('snapshot', { record: newSnapshot('missing'), op: { kind: 'create_snapshot' }, parent: { ref: { type: 'volume', id: randomUUID() }, expect: {} } });
        expect(orphan).toEqual({ ok: false, failed: { field: 'volume.exists', expected: true, actual: false } });
      });

      it('counts a volume\'s snapshots for a delete that requires none', async () => {
        const vol = await availableVolume();
        const volRef = { type: 'volume' as const, id: vol.id };
        const snap = await store.create('snapshot', { record: newSnapshot(vol.id), op: { kind: 'create_snapshot' }, parent: { ref: volRef, expect: { status: 'available' } } });
        if (!snap.ok) throw new Error('snapshot failed');
        const deleteVolume = () => store.transition(volRef, { expect: { status: 'available', snapshots: 0 }, set: { status: 'deleting' }, op: { create: { kind: 'delete_volume' } }, by: 'api' });
        expect(await deleteVolume()).toEqual({ ok: false, failed: { field: 'snapshots', expected: 0, actual: 1 } });
        const snapRef = { type: 'snapshot' as const, id: snap.record.id };
        await store.transition(snapRef, { expect: { status: 'creating' }, set: { status: 'available' }, op: 'remove', by: 'worker' });
        await store.transition(snapRef, { expect: { status: ['available', 'error'] }, set: { status: 'deleting' }, op: { create: { kind: 'delete_snapshot' } }, by: 'api' });
        await store.remove(snapRef, { expect: { status: 'deleting' }, by: 'worker' });
        expect(await deleteVolume()).toMatchObject({ ok: true, record: { status: 'deleting' } });
      });
    });

    describe('fences', () => {
      it('throws FencedError and writes nothing once the fence no longer holds', async () => {
        const vol = await availableVolume();
        const ref = { type: 'volume' as const, id: vol.id };
        await store.transition(ref, { expect: {}, set: { status: 'deleting' }, op: { create: { kind: 'delete_volume' } }, by: 'api' });
        const { fence, revoke } = await h.makeFence();
        const ok = await store.transition(ref, { expect: {}, set: { host: 'node1@rbd' }, fence, by: 'worker' });
        expect(ok.ok).toBe(true);
        await revoke();
        const err = await store.transition(ref, { expect: {}, set: { host: 'zombie' }, fence, by: 'worker' }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(FencedError);
        expect(err).toMatchObject({ code: 'FENCED' });
        await expect(store.create('volume', { record: newVolume(), op: { kind: 'create_volume' }, fence })).rejects.toBeInstanceOf(FencedError);
        await expect(store.updateOp(ref, { expect: {}, set: { owner: ME }, fence })).rejects.toBeInstanceOf(FencedError);
        await expect(store.remove(ref, { expect: {}, fence, by: 'worker' })).rejects.toBeInstanceOf(FencedError);
        expect(await store.get(ref)).toMatchObject({ host: 'node1@rbd', status: 'deleting' });
        expect(await store.getOp(ref)).toMatchObject({ owner: null });
        expect(await metricValue(registry, { result: 'fenced' })).toBe(4);
      });

      it('checks the conditions before the fence: a failed condition is still a value', async () => {
        const vol = await availableVolume();
        const { fence, revoke } = await h.makeFence();
        await revoke();
        const res = await store.transition({ type: 'volume', id: vol.id }, { expect: { status: 'deleting' }, set: { host: 'x' }, fence, by: 'worker' });
        expect(res).toMatchObject({ ok: false, failed: { field: 'status' } });
      });
    });

    describe('reads', () => {
      it('lists with Cinder\'s filters, newest first by default, with limit/marker pages', async () => {
        const made: VolumeRecord[] = [];
        for (let i = 0; i < 5; i++) {
          made.push(await availableVolume({ name: i % 2 === 0 ? 'even' : 'odd', project_id: i < 4 ? 'p1' : 'p2' }));
          await clock.advance(1_000);
        }
        const ids = (page: { items: readonly { id: string }[] }) => page.items.map((v) => v.id);
        const newestFirst = [...made].reverse().map((v) => v.id);
        const all = await store.list('volume', { withCount: true });
        expect(ids(all)).toEqual(newestFirst);
        expect(all.total).toBe(5);
        expect((await store.list('volume')).total).toBeUndefined();
        expect(ids(await store.list('volume', { filter: { name: 'odd' } }))).toEqual([made[3]!.id, made[1]!.id]);
        expect(ids(await store.list('volume', { filter: { projectId: 'p2' } }))).toEqual([made[4]!.id]);
        expect(ids(await store.list('volume', { filter: { projectId: 'p1', status: 'available' } }))).toEqual([made[3]!.id, made[2]!.id, made[1]!.id, made[0]!.id]);
        expect((await store.list('volume', { filter: { status: 'error' }, withCount: true })).total).toBe(0);
        const first = await store.list('volume', { limit: 2, withCount: true });
        expect(first).toMatchObject({ total: 5, more: true });
        const second = await store.list('volume', { limit: 2, marker: first.items[1]!.id });
        const third = await store.list('volume', { limit: 2, marker: second.items[1]!.id });
        expect([...ids(first), ...ids(second), ...ids(third)]).toEqual(newestFirst);
        expect(third.more).toBe(false);
        // A page past the end is empty.
        expect(await store.list('volume', { limit: 2, marker: third.items[0]!.id })).toMatchObject({ items: [], more: false });
        // Cinder appends created_at and id in the first key's direction.
        expect(ids(await store.list('volume', { sort: [{ key: 'name', dir: 'asc' }] }))).toEqual([made[0]!.id, made[2]!.id, made[4]!.id, made[1]!.id, made[3]!.id]);
        expect(ids(await store.list('volume', { sort: [{ key: 'name', dir: 'asc' }, { key: 'created_at', dir: 'asc' }] }))).toEqual([made[0]!.id, made[2]!.id, made[4]!.id, made[1]!.id, made[3]!.id]);
        await expect(store.list('volume', { marker: randomUUID() })).rejects.toThrow(/Marker .* could not be found/);
        // A marker in another project is not found either (it is not visible there).
        await expect(store.list('volume', { filter: { projectId: 'p1' }, marker: made[4]!.id })).rejects.toBeInstanceOf(InvalidInputError);
      });

      it('orders every served sort identically: names by their bytes with a missing name first, ties by created_at then id', async () => {
        const names = ['b', null, 'a', 'ab', 'é', 'B', 'a', null, '', 'a/b'];
        const made: VolumeRecord[] = [];
        for (const [i, name] of names.entries()) {
          made.push(await availableVolume({ name, id: `00000000-0000-0000-0000-00000000000${i}` }));
          // Two volumes share each created_at: ties fall to the id.
          if (i % 2 === 1) await clock.advance(1_000);
        }
        const key = (v: VolumeRecord): [number, string, number, string] => [v.name === null ? 0 : 1, v.name ?? '', v.created_at, v.id];
        const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
        const nameAsc = [...made].sort((x, y) => {
          const [xa, xb, xc, xd] = key(x);
          const [ya, yb, yc, yd] = key(y);
          return xa - ya || byBytes(xb, yb) || xc - yc || byBytes(xd, yd);
        });
        const createdAsc = [...made].sort((x, y) => x.created_at - y.created_at || byBytes(x.id, y.id));
        const ids = (list: readonly VolumeRecord[]) => list.map((v) => v.id);
        const walk = async (sort: { key: string; dir: 'asc' | 'desc' }[], limit: number) => {
          const out: string[] = [];
          let marker: string | undefined;
          for (let i = 0; i < 20; i++) {
            const page = await store.list('volume', { sort, limit, ...(marker === undefined ? {} : { marker }) });
            out.push(...page.items.map((v) => v.id));
            if (!page.more) return out;
            marker = page.items[page.items.length - 1]!.id;
          }
          throw new Error('no end of pages');
        };
        expect(await walk([{ key: 'name', dir: 'asc' }], 3)).toEqual(ids(nameAsc));
        expect(await walk([{ key: 'name', dir: 'desc' }], 4)).toEqual(ids(nameAsc).reverse());
        expect(await walk([{ key: 'created_at', dir: 'asc' }], 3)).toEqual(ids(createdAsc));
        expect(await walk([{ key: 'created_at', dir: 'desc' }, { key: 'id', dir: 'desc' }], 7)).toEqual(ids(createdAsc).reverse());
        expect(ids((await store.list('volume', { filter: { name: 'a' }, sort: [{ key: 'created_at', dir: 'asc' }] })).items)).toEqual([made[2]!.id, made[6]!.id]);
        expect(ids((await store.list('volume', { filter: { name: '' } })).items)).toEqual([made[8]!.id]);
      });

      it('refuses, with Cinder\'s 400, a sort or filter no index serves, and caps the limit', async () => {
        await availableVolume();
        for (const query of [
          { sort: [{ key: 'size', dir: 'asc' as const }] },
          { sort: [{ key: 'id', dir: 'asc' as const }] },
          { sort: [{ key: 'name', dir: 'asc' as const }, { key: 'created_at', dir: 'desc' as const }] },
          { sort: [{ key: 'name', dir: 'asc' as const }], filter: { status: 'available' } },
          { filter: { name: 'vol', status: 'available' } },
        ]) {
          await expect(store.list('volume', query)).rejects.toBeInstanceOf(InvalidInputError);
        }
        expect((await store.list('volume', { limit: 1_000_000 })).items).toHaveLength(1);
      });

      it('keeps its indexes with every write: a listing shows each record where its current values sort, and a refused or fenced write changes no listing', async () => {
        const { fence, revoke } = await h.makeFence();
        const vols: VolumeRecord[] = [];
        for (let i = 0; i < 6; i++) {
          vols.push(await availableVolume({ name: `v${i % 3}`, project_id: i % 2 === 0 ? 'pa' : 'pb' }));
          await clock.advance(10);
        }
        const snapshot = async () => {
          const out: Record<string, string[]> = {};
          const queries: [string, Parameters<StateStore['list']>[1]][] = [
            ['all', {}],
            ['pa', { filter: { projectId: 'pa' } }],
            ['available', { filter: { status: 'available' } }],
            ['pb-deleting', { filter: { projectId: 'pb', status: 'deleting' } }],
            ['error', { filter: { status: 'error' }, sort: [{ key: 'created_at', dir: 'asc' }] }],
            ['name', { sort: [{ key: 'name', dir: 'asc' }] }],
            ['pb-name', { filter: { projectId: 'pb' }, sort: [{ key: 'name', dir: 'desc' }] }],
            ['named', { filter: { name: 'renamed' } }],
          ];
          for (const [label, q] of queries) out[label] = (await store.list('volume', q)).items.map((v) => `${v.id}:${v.status}:${v.name}`);
          return out;
        };
        /** What every listing must show: computed from each record as `get` reads it. */
        const expected = async () => {
          const live = (await Promise.all(vols.map((v) => store.get({ type: 'volume', id: v.id })))).filter((v): v is VolumeRecord => v !== undefined);
          const newest = [...live].sort((a, b) => b.created_at - a.created_at || Buffer.compare(Buffer.from(b.id), Buffer.from(a.id)));
          const nameAsc = [...live].sort((a, b) => Buffer.compare(Buffer.from(a.name ?? ''), Buffer.from(b.name ?? '')) || a.created_at - b.created_at || Buffer.compare(Buffer.from(a.id), Buffer.from(b.id)));
          const fmt = (list: VolumeRecord[]) => list.map((v) => `${v.id}:${v.status}:${v.name}`);
          return {
            all: fmt(newest),
            pa: fmt(newest.filter((v) => v.project_id === 'pa')),
            available: fmt(newest.filter((v) => v.status === 'available')),
            'pb-deleting': fmt(newest.filter((v) => v.project_id === 'pb' && v.status === 'deleting')),
            error: fmt([...newest].reverse().filter((v) => v.status === 'error')),
            name: fmt(nameAsc),
            'pb-name': fmt([...nameAsc].reverse().filter((v) => v.project_id === 'pb')),
            named: fmt(newest.filter((v) => v.name === 'renamed')),
          };
        };
        expect(await snapshot()).toEqual(await expected());
        const steps: (() => Promise<unknown>)[] = [
          () => store.transition({ type: 'volume', id: vols[0]!.id }, { expect: { status: 'available' }, set: { status: 'error' }, by: 'admin' }),
          () => store.transition({ type: 'volume', id: vols[1]!.id }, { expect: { status: 'available' }, set: { status: 'deleting' }, op: { create: { kind: 'delete_volume' } }, by: 'api' }),
          () => store.transition({ type: 'volume', id: vols[2]!.id }, { expect: { status: 'available' }, set: { name: 'renamed' }, by: 'api' }),
          () => store.transition({ type: 'volume', id: vols[3]!.id }, { expect: { status: 'available' }, set: { name: null }, by: 'api' }),
          () => store.remove({ type: 'volume', id: vols[1]!.id }, { expect: { status: 'deleting' }, by: 'worker' }),
          // Refused: a condition fails; nothing changes.
          () => store.transition({ type: 'volume', id: vols[4]!.id }, { expect: { status: 'error' }, set: { status: 'available', name: 'nope' }, by: 'admin' }),
          // Fenced: nothing changes either.
          async () => {
            await revoke();
            await expect(store.transition({ type: 'volume', id: vols[5]!.id }, { expect: {}, set: { name: 'fenced' }, fence, by: 'worker' })).rejects.toBeInstanceOf(FencedError);
          },
          () => store.transition({ type: 'volume', id: vols[0]!.id }, { expect: { status: 'error' }, set: { status: 'available', name: 'renamed' }, by: 'admin' }),
        ];
        for (const step of steps) {
          await step();
          expect(await snapshot()).toEqual(await expected());
        }
      });

      it('lists a volume\'s snapshots', async () => {
        const vol = await availableVolume();
        const other = await availableVolume();
        const s1 = await store.create('snapshot', { record: newSnapshot(vol.id), op: { kind: 'create_snapshot' }, parent: { ref: { type: 'volume', id: vol.id }, expect: {} } });
        await store.create('snapshot', { record: newSnapshot(other.id), op: { kind: 'create_snapshot' }, parent: { ref: { type: 'volume', id: other.id }, expect: {} } });
        if (!s1.ok) throw new Error('snapshot failed');
        const page = await store.list('snapshot', { filter: { volumeId: vol.id } });
        expect(page.items.map((s) => s.id)).toEqual([s1.record.id]);
        expect((await store.list('snapshot', { withCount: true })).total).toBe(2);
        expect((await store.list('snapshot', { filter: { volumeId: vol.id }, withCount: true })).total).toBe(1);
        await expect(store.list('snapshot', { filter: { volumeId: vol.id }, marker: randomUUID() })).rejects.toBeInstanceOf(InvalidInputError);
      });
    });

    describe('metrics and lifecycle', () => {
      it('counts transitions by resource and result', async () => {
        const vol = await availableVolume();
        await store.transition({ type: 'volume', id: vol.id }, { expect: { status: 'error' }, set: {}, by: 'api' });
        expect(await metricValue(registry, { resource: 'volume', result: 'ok' })).toBe(2);
        expect(await metricValue(registry, { resource: 'volume', result: 'conflict' })).toBe(1);
        const text = await registry.metrics();
        expect(text).toMatch(new RegExp(`hearth_transition_duration_seconds_count\\{backend="${store.backend}"\\} 3`));
      });

      it('refuses calls once closed; close is idempotent', async () => {
        await store.close();
        await store.close();
        await expect(store.get({ type: 'volume', id: randomUUID() })).rejects.toBeInstanceOf(ClosedError);
        await expect(store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } })).rejects.toBeInstanceOf(ClosedError);
      });
    });
  });
}
