// The source holds of copies (a clone, a volume from a snapshot), on every StateStore adapter: a
// copy's volume holds its source from its creation until it leaves `creating`, and a condition
// `holds: 0` on the source (its delete, its extend) sees every hold — also when the two race.
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors.js';
import { ManualClock } from '../../src/lifecycle/clock.js';
import { createStateMetrics } from '../../src/state/metrics.js';
import type { ResourceRef, SnapshotRecord, VolumeRecord } from '../../src/state/records.js';
import type { StateStore } from '../../src/state/state-store.js';
import { Registry } from 'prom-client';
import { newSnapshot, newVolume, type StateStoreFactory } from './state-store.contract.js';

function must<T extends { ok: boolean }>(result: T, what: string): Extract<T, { ok: true }> {
  if (!result.ok) throw new Error(`${what} failed: ${JSON.stringify(result)}`);
  return result as Extract<T, { ok: true }>;
}

async function availableVolume(store: StateStore): Promise<VolumeRecord> {
  const created = must(await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } }), 'create');
  return must(await store.transition({ type: 'volume', id: created.record.id }, { expect: { status: 'creating' }, set: { status: 'available' }, op: 'remove', by: 'worker' }), 'available').record;
}

async function availableSnapshot(store: StateStore, volumeId: string): Promise<SnapshotRecord> {
  const created = must(
    await store.create('snapshot', { record: newSnapshot(volumeId), op: { kind: 'create_snapshot', params: { volumeId } }, parent: { ref: { type: 'volume', id: volumeId }, expect: { status: 'available' } } }),
    'snapshot',
  );
  return must(await store.transition({ type: 'snapshot', id: created.record.id }, { expect: { status: 'creating' }, set: { status: 'available' }, op: 'remove', by: 'worker' }), 'snapshot available').record;
}

/** Creates a copy of `source` as the API does: the new volume holds it, the source is its parent. */
function copyOf(store: StateStore, source: ResourceRef) {
  const kind = source.type === 'volume' ? 'clone_volume' : 'create_volume_from_snapshot';
  return store.create('volume', {
    record: newVolume({ source_held: true, ...(source.type === 'volume' ? { source_volid: source.id } : { snapshot_id: source.id }) }),
    op: { kind, params: { sourceId: source.id } },
    parent: { ref: source, expect: { status: source.type === 'volume' ? ['available', 'in-use'] : 'available' }, touch: false },
  });
}

/** The source's delete as the API asks it: refused while anything holds it. */
function deleteSource(store: StateStore, source: ResourceRef) {
  return store.transition(source as { type: 'volume'; id: string }, { expect: { status: 'available', holds: 0 }, set: { status: 'deleting' }, op: { create: { kind: source.type === 'volume' ? 'delete_volume' : 'delete_snapshot' } }, by: 'api' });
}

async function holdsOf(store: StateStore, source: ResourceRef): Promise<number> {
  // A condition that cannot hold reports the count it saw; nothing is written.
  const result = await store.transition(source as { type: 'volume'; id: string }, { expect: { holds: -1 }, set: {}, by: 'api' });
  if (result.ok) throw new Error('holds: -1 held');
  expect(result.failed.field).toBe('holds');
  return result.failed.actual as number;
}

/** Registers the source-holds suite for one adapter. */
export function describeSourceHolds(name: string, factory: StateStoreFactory): void {
  describe(`source holds: ${name}`, () => {
    async function withStore(fn: (store: StateStore) => Promise<void>): Promise<void> {
      const h = await factory({ clock: new ManualClock(1_700_000_000_000), metrics: createStateMetrics(new Registry()) });
      try {
        await fn(h.store);
      } finally {
        await h.close();
      }
    }

    it('counts the copies of a volume until each leaves creating; the delete is refused naming them, then accepted', () =>
      withStore(async (store) => {
        const source = await availableVolume(store);
        const ref = { type: 'volume' as const, id: source.id };
        const a = must(await copyOf(store, ref), 'clone a');
        const b = must(await copyOf(store, ref), 'clone b');
        expect(a.record).toMatchObject({ source_volid: source.id, source_held: true, status: 'creating' });
        expect(a.op).toMatchObject({ kind: 'clone_volume', status: 'creating' });
        expect(await holdsOf(store, ref)).toBe(2);
        expect(await deleteSource(store, ref)).toEqual({ ok: false, failed: { field: 'holds', expected: 0, actual: 2 } });
        // The worker's final write releases the hold (success), as does a failure.
        const done = must(await store.transition({ type: 'volume', id: a.record.id }, { expect: { status: 'creating' }, set: { status: 'available' }, op: 'remove', by: 'worker' }), 'a done');
        expect(done.record.source_held).toBe(false);
        expect(done.record.source_volid).toBe(source.id);
        expect(await holdsOf(store, ref)).toBe(1);
        must(await store.transition({ type: 'volume', id: b.record.id }, { expect: { status: 'creating' }, set: { status: 'error' }, op: 'remove', by: 'cleanup' }), 'b cleaned');
        expect(await holdsOf(store, ref)).toBe(0);
        must(await deleteSource(store, ref), 'delete the source');
      }));

    it('holds a snapshot while a volume is created from it; an admin reset releases it too', () =>
      withStore(async (store) => {
        const volume = await availableVolume(store);
        const snapshot = await availableSnapshot(store, volume.id);
        const ref = { type: 'snapshot' as const, id: snapshot.id };
        const copy = must(await copyOf(store, ref), 'from snapshot');
        expect(copy.record).toMatchObject({ snapshot_id: snapshot.id, source_held: true });
        expect(await deleteSource(store, ref)).toEqual({ ok: false, failed: { field: 'holds', expected: 0, actual: 1 } });
        // A clone of the snapshot's volume is another source: not counted here.
        must(await copyOf(store, { type: 'volume', id: volume.id }), 'clone the volume');
        expect(await holdsOf(store, ref)).toBe(1);
        must(await store.transition({ type: 'volume', id: copy.record.id }, { expect: {}, set: { status: 'error' }, op: 'remove', by: 'admin' }), 'reset');
        expect(await holdsOf(store, ref)).toBe(0);
        must(await deleteSource(store, ref), 'delete the snapshot');
      }));

    it('keeps the hold through a force-delete of the copy until the copy is removed', () =>
      withStore(async (store) => {
        const source = await availableVolume(store);
        const ref = { type: 'volume' as const, id: source.id };
        const copy = must(await copyOf(store, ref), 'clone');
        const cref = { type: 'volume' as const, id: copy.record.id };
        must(await store.transition(cref, { expect: { status: 'creating' }, set: { status: 'deleting' }, op: { replace: { kind: 'delete_volume', params: { force: true } } }, by: 'api' }), 'force');
        expect(await holdsOf(store, ref)).toBe(1);
        must(await store.remove(cref, { expect: { status: 'deleting' }, by: 'worker' }), 'removed');
        expect(await holdsOf(store, ref)).toBe(0);
      }));

    it('refuses a copy of a source that is being deleted, naming the source condition', () =>
      withStore(async (store) => {
        const source = await availableVolume(store);
        const ref = { type: 'volume' as const, id: source.id };
        must(await deleteSource(store, ref), 'delete');
        expect(await copyOf(store, ref)).toEqual({ ok: false, failed: { field: 'volume.status', expected: ['available', 'in-use'], actual: 'deleting' } });
        expect(await copyOf(store, { type: 'volume', id: 'missing' })).toEqual({ ok: false, failed: { field: 'volume.exists', expected: true, actual: false } });
      }));

    it('refuses (a bug in the caller) a holding volume whose parent is not its source', () =>
      withStore(async (store) => {
        const source = await availableVolume(store);
        const other = await availableVolume(store);
        const wrong = store.create('volume', { record: newVolume({ source_volid: source.id, source_held: true }), op: { kind: 'clone_volume' }, parent: { ref: { type: 'volume', id: other.id }, expect: {} } });
        await expect(wrong).rejects.toBeInstanceOf(InvalidInputError);
      }));

    it('lets copies of one source be created at once without conflicting on the source', () =>
      withStore(async (store) => {
        const source = await availableVolume(store);
        const ref = { type: 'volume' as const, id: source.id };
        const copies = await Promise.all(Array.from({ length: 12 }, () => copyOf(store, ref)));
        expect(copies.every((c) => c.ok)).toBe(true);
        expect(await holdsOf(store, ref)).toBe(12);
        expect((await store.get(ref))?.revision).toBe(source.revision);
      }));

    it('never lets a delete and a copy of one source both win when they race', () =>
      withStore(async (store) => {
        for (let round = 0; round < 15; round++) {
          const source = await availableVolume(store);
          const ref = { type: 'volume' as const, id: source.id };
          const [copy, deletion] = await Promise.all([copyOf(store, ref), deleteSource(store, ref)]);
          // Exactly one wins: a copy accepted means the delete saw its hold, and the other way round.
          expect([copy.ok, deletion.ok].filter(Boolean)).toHaveLength(1);
          if (copy.ok) expect(deletion).toMatchObject({ ok: false, failed: { field: 'holds', actual: 1 } });
          else expect(copy).toMatchObject({ ok: false, failed: { field: 'volume.status', actual: 'deleting' } });
        }
      }));
  });
}
