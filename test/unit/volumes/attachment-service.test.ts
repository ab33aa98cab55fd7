// The attachment service on a real SQLite store (no worker: connections are not exercised here,
// see test/integration/volumes/attachments-*.test.ts): the upgrade gate, other projects, the
// refusals that name their condition, and many concurrent reserves in one process.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NotFoundError } from '../../../src/errors.js';
import { ManualClock } from '../../../src/lifecycle/clock.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import type { OpRecord, VolumeRecord } from '../../../src/state/records.js';
import { SQLITE_STATE_FILE, SqliteStateStore } from '../../../src/state/sqlite-state-store.js';
import { AttachmentService } from '../../../src/volumes/attachment-service.js';
import { ConditionFailedError } from '../../../src/volumes/errors.js';
import type { JobPublisher, PublishOutcome } from '../../../src/volumes/job-publisher.js';
import { UnavailableDuringUpgradeError } from '../../../src/volumes/operation-gate.js';
import { newVolume } from '../../contract/state-store.contract.js';

class NullPublisher implements JobPublisher {
  readonly published: OpRecord[] = [];
  async publish(op: OpRecord): Promise<PublishOutcome> {
    this.published.push(op);
    return 'confirmed';
  }
}

const ADMIN = { projectId: 'admin', userId: 'alice', isAdmin: true };
const OTHER = { projectId: 'other', userId: 'bob', isAdmin: false };

describe('AttachmentService (SQLite)', () => {
  let dir: string;
  let store: SqliteStateStore;
  let clock: ManualClock;
  let publisher: NullPublisher;
  let refuse: string | undefined;
  let service: AttachmentService;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-attach-'));
    clock = new ManualClock(1_000);
    store = SqliteStateStore.open({ path: join(dir, SQLITE_STATE_FILE), clock, metrics: createStateMetrics(new Registry()) });
    publisher = new NullPublisher();
    refuse = undefined;
    service = new AttachmentService({ store, publisher, gate: { refuses: () => refuse }, cluster: 'ceph@rbd', clock, logger: silentLogger(), waitMs: 0 });
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function available(over: Partial<VolumeRecord> = {}): Promise<VolumeRecord> {
    const created = await store.create('volume', { record: { ...newVolume(), project_id: 'admin', ...over }, op: { kind: 'create_volume' } });
    if (!created.ok) throw new Error('create failed');
    const moved = await store.transition({ type: 'volume', id: created.record.id }, { expect: {}, set: { status: 'available' }, op: 'remove', by: 'admin' });
    if (!moved.ok) throw new Error('reset failed');
    return moved.record;
  }

  it('during an upgrade whose workers cannot attach yet: refused, nothing written', async () => {
    const v = await available();
    refuse = 'the live workers of ceph@rbd read messages up to version 1, and attach_volume needs version 2';
    await expect(service.create(ADMIN, { volumeId: v.id, instanceUuid: null, connector: null, mode: 'null' })).rejects.toThrow(UnavailableDuringUpgradeError);
    await expect(service.create(ADMIN, { volumeId: v.id, instanceUuid: null, connector: null, mode: 'null' })).rejects.toThrow(/Cannot attach volume during upgrade/);
    expect(await store.get({ type: 'volume', id: v.id })).toEqual(v);
  });

  it('another project\'s volume looks missing, and its attachments too', async () => {
    const v = await available();
    await expect(service.create(OTHER, { volumeId: v.id, instanceUuid: null, connector: null, mode: 'null' })).rejects.toThrow(NotFoundError);
    const mine = await service.create(ADMIN, { volumeId: v.id, instanceUuid: null, connector: null, mode: 'null' });
    await expect(service.get(OTHER, mine.attachment.id)).rejects.toThrow(NotFoundError);
    expect(await service.list(OTHER, {}, false)).toEqual([]);
    expect((await service.list(ADMIN, {}, true)).map((a) => a.attachment.id)).toEqual([mine.attachment.id]);
  });

  it('a reserved attachment cannot be completed; deleting it frees the volume at once (no worker)', async () => {
    const v = await available();
    const a = await service.create(ADMIN, { volumeId: v.id, instanceUuid: null, connector: {}, mode: 'null' });
    expect(a.attachment.attach_status).toBe('reserved');
    expect(a.volume.status).toBe('reserved');
    await expect(service.complete(ADMIN, a.attachment.id)).rejects.toThrow(/is not connected \(its status is reserved\)/);
    expect(await service.delete(ADMIN, a.attachment.id)).toEqual([]);
    expect((await store.get({ type: 'volume', id: v.id }))?.status).toBe('available');
    expect(publisher.published).toEqual([]);
  });

  it('an update records an attach op and is answered 500 when no worker connects in time; the op stays for a worker', async () => {
    const v = await available();
    const a = await service.create(ADMIN, { volumeId: v.id, instanceUuid: null, connector: null, mode: 'null' });
    await expect(service.update(ADMIN, a.attachment.id, { host: 'h' })).rejects.toThrow(/no worker finished it/);
    expect(publisher.published).toEqual([expect.objectContaining({ kind: 'attach_volume', status: 'attaching', params: { attachmentId: a.attachment.id, connector: { host: 'h' } } })]);
    expect((await store.get({ type: 'volume', id: v.id }))?.status).toBe('attaching');
    // While it attaches, nothing else may change the volume: the refusal names the status.
    await expect(service.delete(ADMIN, a.attachment.id)).rejects.toThrow(ConditionFailedError);
  });

  it('many concurrent reserves of a volume that is not multiattach: exactly one wins; the others name the status they found', async () => {
    const v = await available();
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => service.create(ADMIN, { volumeId: v.id, instanceUuid: null, connector: null, mode: 'null' })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(String(r.reason)).toContain('Volume status must be available to reserve (status is reserved)');
    expect((await store.get({ type: 'volume', id: v.id }))?.attachments).toHaveLength(1);
  });

  it('a multiattach volume in use takes another reservation', async () => {
    const v = await available({ multiattach: true });
    const first = await service.create(ADMIN, { volumeId: v.id, instanceUuid: null, connector: null, mode: 'null' });
    // As if connected and completed.
    const record = (await store.get({ type: 'volume', id: v.id })) as VolumeRecord;
    await store.transition({ type: 'volume', id: v.id }, {
      expect: {},
      set: { status: 'in-use', attach_status: 'attached', attachments: [{ ...first.attachment, attach_status: 'attached', connection_info: { driver_volume_type: 'fake', data: {} }, attached_at: 1 }] },
      by: 'admin',
    });
    expect(record.status).toBe('reserved');
    const second = await service.create(ADMIN, { volumeId: v.id, instanceUuid: null, connector: null, mode: 'null' });
    expect(second.volume.status).toBe('reserved');
    expect(second.volume.attachments).toHaveLength(2);
    // The reserved one goes; the volume is in use again.
    await service.delete(ADMIN, second.attachment.id);
    expect((await store.get({ type: 'volume', id: v.id }))?.status).toBe('in-use');
  });

  it('the same server may reserve a volume it has again (Cinder\'s override for a migration); another server may not', async () => {
    const v = await available();
    const server = '6f1c0ab0-7b5d-4c39-9b57-4d1cf5a3e0a1';
    const first = await service.create(ADMIN, { volumeId: v.id, instanceUuid: server, connector: null, mode: 'null' });
    await expect(service.create(ADMIN, { volumeId: v.id, instanceUuid: '00000000-0000-4000-8000-000000000009', connector: null, mode: 'null' })).rejects.toThrow(
      /status must be available to reserve \(status is reserved\)/,
    );
    const again = await service.create(ADMIN, { volumeId: v.id, instanceUuid: server, connector: null, mode: 'null' });
    expect(again.volume.attachments?.map((a) => a.id)).toEqual([first.attachment.id, again.attachment.id]);
    expect(again.volume.status).toBe('reserved');
  });

  it('lists with limit and marker, by attachment id', async () => {
    const volumes = await Promise.all([available({ multiattach: true }), available(), available()]);
    for (const v of volumes) await service.create(ADMIN, { volumeId: v.id, instanceUuid: null, connector: null, mode: 'null' });
    const all = (await service.list(ADMIN, {}, false)).map((a) => a.attachment.id);
    expect(all).toHaveLength(3);
    expect([...all].sort()).toEqual(all);
    const page1 = (await service.list(ADMIN, {}, false, { limit: 2 })).map((a) => a.attachment.id);
    const page2 = (await service.list(ADMIN, {}, false, { limit: 2, marker: page1[1] as string })).map((a) => a.attachment.id);
    expect([...page1, ...page2]).toEqual(all);
    await expect(service.list(ADMIN, {}, false, { marker: '00000000-0000-4000-8000-00000000000f' })).rejects.toThrow(/marker .* not found/);
  });
});
