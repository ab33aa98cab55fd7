import { describe, expect, it } from 'vitest';
import type { JobMessage } from '../../../src/routing/job-message.js';
import type { OpRecord, SnapshotRecord, VolumeRecord } from '../../../src/state/records.js';
import { OP_KINDS, type OpKind } from '../../../src/state/state-machine.js';
import { decideJob, finalWrite, isManagedKind, lockNamesFor, MANAGED_KINDS, newSizeOf } from '../../../src/worker/plan.js';

const V = 'vol-1';
const S = 'snap-1';

function op(overrides: Partial<OpRecord> = {}): OpRecord {
  return {
    type: 'volume',
    id: V,
    opId: 'op-1',
    kind: 'create_volume',
    status: 'creating',
    cluster: 'ceph@rbd',
    owner: null,
    attempt: 0,
    params: {},
    createdAt: 1,
    updatedAt: 1,
    publishedAt: null,
    revision: '5',
    ...overrides,
  };
}

function job(overrides: Partial<JobMessage> = {}): JobMessage {
  return { v: 1, type: 'volume', id: V, opId: 'op-1', kind: 'create_volume', cluster: 'ceph@rbd', attempt: 0, publishedAt: 1, ...overrides };
}

const volume = { id: V, status: 'extending', previous_status: 'available', size: 1 } as VolumeRecord;
const self = { incarnation: 'n1@rbd:aa', cluster: 'ceph@rbd' };
const owner = (incarnation: string) => ({ host: incarnation.split(':')[0] as string, incarnation, aliveRevision: '9' });

describe('locks per op kind (Cinder names)', () => {
  it('is the table of docs/worker.md', () => {
    expect(lockNamesFor('create_volume', V)).toEqual([`${V}-delete_volume`]);
    expect(lockNamesFor('delete_volume', V)).toEqual([`${V}-delete_volume`]);
    expect(lockNamesFor('extend_volume', V)).toEqual([`${V}-delete_volume`]);
    expect(lockNamesFor('create_snapshot', S, V)).toEqual([`${V}-delete_volume`, `${S}-delete_snapshot`]);
    expect(lockNamesFor('delete_snapshot', S, V)).toEqual([`${S}-delete_snapshot`]);
  });

  it('refuses a snapshot create without its volume; a connection is made and ended under the volume\'s lock', () => {
    expect(() => lockNamesFor('create_snapshot', S)).toThrow(/needs its volume id/);
    expect(lockNamesFor('attach_volume', V)).toEqual([`${V}-delete_volume`]);
    expect(lockNamesFor('detach_volume', V)).toEqual([`${V}-delete_volume`]);
  });

  it('covers every op kind: managed kinds have locks, the others are refused', () => {
    for (const spec of OP_KINDS) {
      if (isManagedKind(spec.kind)) expect(lockNamesFor(spec.kind, 'x', 'y').length).toBeGreaterThan(0);
      else expect(() => lockNamesFor(spec.kind, 'x', 'y')).toThrow();
    }
    expect([...MANAGED_KINDS].sort()).toEqual(['attach_volume', 'clone_volume', 'create_snapshot', 'create_volume', 'create_volume_from_snapshot', 'delete_snapshot', 'delete_volume', 'detach_volume', 'extend_volume']);
  });
});

describe('what a job means (decideJob)', () => {
  it('drops a job whose op is gone or was replaced', () => {
    expect(decideJob(job(), undefined, self, false)).toMatchObject({ type: 'drop', reason: expect.stringContaining('gone') as string });
    expect(decideJob(job(), op({ opId: 'op-2' }), self, false)).toMatchObject({ type: 'drop', reason: expect.stringContaining('replaced by op-2') as string });
  });

  it('claims a queued op, and an op of another incarnation with the dead-owner proof', () => {
    expect(decideJob(job(), op(), self, false)).toEqual({ type: 'claim', ownerDead: false });
    expect(decideJob(job(), op({ owner: owner('n2@rbd:bb') }), self, false)).toEqual({ type: 'claim', ownerDead: true });
    // An earlier incarnation of this very host is someone else too.
    expect(decideJob(job(), op({ owner: owner('n1@rbd:00') }), self, false)).toEqual({ type: 'claim', ownerDead: true });
  });

  it('drops a duplicate of an op it runs; resumes one it owns but does not run', () => {
    expect(decideJob(job(), op({ owner: owner(self.incarnation) }), self, true)).toEqual({ type: 'drop', reason: 'already running here' });
    expect(decideJob(job(), op({ owner: owner(self.incarnation) }), self, false)).toEqual({ type: 'resume' });
  });

  it('dead-letters what can never run here', () => {
    expect(decideJob(job({ kind: 'delete_volume' }), op(), self, false)).toMatchObject({ type: 'dead-letter', reason: 'rejected', detail: expect.stringContaining('does not match') as string });
    expect(decideJob(job(), op({ cluster: 'other@rbd' }), self, false)).toMatchObject({ type: 'dead-letter', reason: 'misrouted' });
    expect(decideJob(job({ kind: 'attach_volume' }), op({ kind: 'attach_volume', status: 'attaching' }), self, false)).toEqual({ type: 'claim', ownerDead: false });
  });
});

describe('the final write of each kind', () => {
  const kinds: { kind: OpKind; record: VolumeRecord | SnapshotRecord; success: unknown; error: string }[] = [
    { kind: 'create_volume', record: volume, success: { status: 'available', host: 'n1@rbd' }, error: 'error' },
    { kind: 'delete_volume', record: volume, success: 'remove', error: 'error_deleting' },
    { kind: 'extend_volume', record: volume, success: { status: 'available', size: 3, host: 'n1@rbd' }, error: 'error_extending' },
    { kind: 'create_snapshot', record: { id: S } as SnapshotRecord, success: { status: 'available', progress: '100%', host: 'n1@rbd' }, error: 'error' },
    { kind: 'delete_snapshot', record: { id: S } as SnapshotRecord, success: 'remove', error: 'error_deleting' },
  ];
  for (const { kind, record, success, error } of kinds) {
    it(`${kind}: success and Cinder's error status, with the host that ran it`, () => {
      if (!isManagedKind(kind)) throw new Error('unmanaged');
      const o = { kind, opId: 'op-1', params: { newSize: 3 } };
      const ok = finalWrite(o, record, 'success', 'n1@rbd');
      if (success === 'remove') expect(ok).toEqual({ type: 'remove', status: 'deleted' });
      else expect(ok).toEqual({ type: 'transition', status: (success as { status: string }).status, set: success });
      expect(finalWrite(o, record, 'error', 'n1@rbd')).toEqual({ type: 'transition', status: error, set: { status: error, host: 'n1@rbd' } });
    });
  }

  it('an extend of an in-use volume ends in-use; an extend without a size is refused', () => {
    const inUse = { ...volume, previous_status: 'in-use' } as VolumeRecord;
    expect(finalWrite({ kind: 'extend_volume', opId: 'o', params: { newSize: 2 } }, inUse, 'success', 'h')).toMatchObject({ status: 'in-use', set: { status: 'in-use', size: 2 } });
    expect(() => newSizeOf({ opId: 'o', params: {} })).toThrow(/no integer newSize/);
  });
});

describe('the final write of an attach or a detach', () => {
  const at = (id: string, attach_status: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    id, instance_uuid: null, attach_status, attach_mode: 'null', connector: { host: 'h' }, connection_info: null, attached_at: null, created_at: 1, ...extra,
  });
  const vol = (status: string, attachments: Record<string, unknown>[]): VolumeRecord => ({ ...volume, status, attachments } as unknown as VolumeRecord);
  const info = { driver_volume_type: 'local', data: { device_path: '/v' } };

  it('attach: connected (attaching, with the info) and the volume reserved; refused: error_attaching, still reserved', () => {
    const o = { kind: 'attach_volume' as const, opId: 'op-1', params: { attachmentId: 'a', connector: { host: 'h' } } };
    expect(finalWrite(o, vol('attaching', [at('a', 'attaching')]), 'success', 'n1@rbd', { connectionInfo: info, at: 5 })).toEqual({
      type: 'transition',
      status: 'reserved',
      set: { status: 'reserved', attach_status: 'attaching', previous_status: null, attachments: [at('a', 'attaching', { connection_info: info, attached_at: 5 })], host: 'n1@rbd' },
    });
    expect(finalWrite(o, vol('attaching', [at('a', 'attaching'), at('b', 'attached')]), 'error', 'n1@rbd')).toMatchObject({
      status: 'in-use',
      set: { attachments: [at('a', 'error_attaching'), at('b', 'attached')] },
    });
  });

  it('detach: the attachment gone and the volume available; failed: back as it was, unless forced', () => {
    const o = { kind: 'detach_volume' as const, opId: 'op-2', params: { attachmentId: 'a', from: 'attached' } };
    expect(finalWrite(o, vol('detaching', [at('a', 'detaching')]), 'success', 'n1@rbd')).toMatchObject({ status: 'available', set: { attachments: [], attach_status: 'detached' } });
    expect(finalWrite(o, vol('detaching', [at('a', 'detaching')]), 'error', 'n1@rbd')).toMatchObject({ status: 'in-use', set: { attachments: [at('a', 'attached')] } });
    expect(finalWrite({ ...o, params: { ...o.params, force: true } }, vol('detaching', [at('a', 'detaching')]), 'error', 'n1@rbd')).toMatchObject({ status: 'available' });
  });
});
