import type { OwnerRef } from '../../src/identity.js';
import type { OpRecord, ResourceRef, VolumeRecord } from '../../src/state/records.js';
import type { OpKind } from '../../src/state/state-machine.js';
import { type NewRecord, type StateStore, valueOf } from '../../src/state/state-store.js';
import { newSnapshot, newVolume } from '../contract/state-store.contract.js';

function must<T extends { ok: boolean }>(result: T, what: string): Extract<T, { ok: true }> {
  if (!result.ok) throw new Error(`${what} failed: ${JSON.stringify(result)}`);
  return result as Extract<T, { ok: true }>;
}

/**
 * Builds a resource in the transitional status of `kind`, with its op, through the same writes
 * the API and the worker make (so the state machine and invariants hold), and returns its ref.
 */
export async function seedInFlight(store: StateStore, cluster: string, kind: OpKind): Promise<ResourceRef> {
  const available = async (over: Partial<NewRecord<VolumeRecord>> = {}): Promise<string> => {
    const v = must(await store.create('volume', { record: newVolume({ cluster, ...over }), op: { kind: 'create_volume' } }), 'create volume');
    must(await store.transition({ type: 'volume', id: v.record.id }, { expect: { status: 'creating' }, set: { status: 'available' }, op: 'remove', by: 'worker' }), 'volume available');
    return v.record.id;
  };
  const vref = (id: string) => ({ type: 'volume' as const, id });
  switch (kind) {
    case 'create_volume':
      return vref(must(await store.create('volume', { record: newVolume({ cluster }), op: { kind } }), 'create').record.id);
    case 'delete_volume': {
      const id = await available();
      must(await store.transition(vref(id), { expect: { status: 'available' }, set: { status: 'deleting' }, op: { create: { kind } }, by: 'api' }), 'delete');
      return vref(id);
    }
    case 'extend_volume': {
      const id = await available();
      must(
        await store.transition(vref(id), { expect: { status: 'available' }, set: { status: 'extending', previous_status: valueOf('status') }, op: { create: { kind, params: { newSize: 2, oldSize: 1 } } }, by: 'api' }),
        'extend',
      );
      return vref(id);
    }
    case 'attach_volume': {
      const id = await available();
      must(
        await store.transition(vref(id), { expect: { status: 'available' }, set: { status: 'attaching', previous_status: valueOf('status'), attach_status: 'attaching' }, op: { create: { kind } }, by: 'api' }),
        'attach',
      );
      return vref(id);
    }
    case 'detach_volume': {
      const id = await available();
      must(await store.transition(vref(id), { expect: { status: 'available' }, set: { status: 'attaching', attach_status: 'attaching' }, op: { create: { kind: 'attach_volume' } }, by: 'api' }), 'attach');
      must(await store.transition(vref(id), { expect: { status: 'attaching' }, set: { status: 'in-use', attach_status: 'attached' }, op: 'remove', by: 'worker' }), 'attached');
      must(
        await store.transition(vref(id), { expect: { status: 'in-use' }, set: { status: 'detaching', previous_status: valueOf('status'), attach_status: 'detaching' }, op: { create: { kind } }, by: 'api' }),
        'detach',
      );
      return vref(id);
    }
    case 'create_snapshot':
    case 'delete_snapshot': {
      const volumeId = await available();
      const s = must(
        await store.create('snapshot', { record: newSnapshot(volumeId, { cluster }), op: { kind: 'create_snapshot', params: { volumeId } }, parent: { ref: vref(volumeId), expect: { status: 'available' } } }),
        'create snapshot',
      );
      const sref = { type: 'snapshot' as const, id: s.record.id };
      if (kind === 'create_snapshot') return sref;
      must(await store.transition(sref, { expect: { status: 'creating' }, set: { status: 'available' }, op: 'remove', by: 'worker' }), 'snapshot available');
      must(await store.transition(sref, { expect: { status: 'available' }, set: { status: 'deleting' }, op: { create: { kind } }, by: 'api' }), 'delete snapshot');
      return sref;
    }
    case 'clone_volume': {
      const sourceId = await available();
      const v = must(
        await store.create('volume', {
          record: newVolume({ cluster, source_volid: sourceId, snapshot_id: null, source_held: true }),
          op: { kind, params: { sourceId } },
          parent: { ref: vref(sourceId), expect: { status: ['available', 'in-use'] } },
        }),
        'clone',
      );
      return vref(v.record.id);
    }
    case 'create_volume_from_snapshot': {
      const volumeId = await available();
      const s = must(
        await store.create('snapshot', { record: newSnapshot(volumeId, { cluster }), op: { kind: 'create_snapshot', params: { volumeId } }, parent: { ref: vref(volumeId), expect: { status: 'available' } } }),
        'create snapshot',
      );
      const sref = { type: 'snapshot' as const, id: s.record.id };
      must(await store.transition(sref, { expect: { status: 'creating' }, set: { status: 'available' }, op: 'remove', by: 'worker' }), 'snapshot available');
      const v = must(
        await store.create('volume', {
          record: newVolume({ cluster, snapshot_id: sref.id, source_volid: null, source_held: true }),
          op: { kind, params: { sourceId: sref.id } },
          parent: { ref: sref, expect: { status: 'available' } },
        }),
        'create from snapshot',
      );
      return vref(v.record.id);
    }
  }
}

/** Makes `owner` the op's owner, as a worker's claim does (no fence: the owner is a test fiction). */
export async function ownBy(store: StateStore, ref: ResourceRef, owner: OwnerRef): Promise<OpRecord> {
  const op = await store.getOp(ref);
  if (!op) throw new Error(`no op for ${ref.type} ${ref.id}`);
  return must(await store.updateOp(ref, { expect: { opId: op.opId, attempt: op.attempt }, set: { owner, attempt: op.attempt + 1 } }), 'own').op;
}

/** Every op kind hearth tracks, with the final status its orphan cleanup leaves (`deleted`: gone). */
export const CLEANED_STATUS: Readonly<Record<OpKind, string>> = {
  create_volume: 'error',
  delete_volume: 'deleted',
  extend_volume: 'error_extending',
  attach_volume: 'available',
  detach_volume: 'in-use',
  create_snapshot: 'error',
  delete_snapshot: 'deleted',
  clone_volume: 'error',
  create_volume_from_snapshot: 'error',
};
