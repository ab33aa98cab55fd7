// Creating volumes from a source (a clone, a snapshot) through the API over a real SQLite store
// (fastify inject, no sockets): Cinder's request and answers, the source's hold refusing its
// delete and extend, and bad input answered with Cinder's status and fault, nothing written.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-explicit-any */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiServer } from '../../../src/api/server.js';
import { ManualClock } from '../../../src/lifecycle/clock.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import type { OpRecord } from '../../../src/state/records.js';
import { SQLITE_STATE_FILE, SqliteStateStore } from '../../../src/state/sqlite-state-store.js';
import type { JobPublisher, PublishOutcome } from '../../../src/volumes/job-publisher.js';
import { PublishStamps } from '../../../src/volumes/publish-stamps.js';
import { volumeRoutes } from '../../../src/volumes/volume-routes.js';
import { VolumeService } from '../../../src/volumes/volume-service.js';
import type { OperationGate } from '../../../src/volumes/operation-gate.js';

class RecordingPublisher implements JobPublisher {
  readonly published: OpRecord[] = [];
  async publish(op: OpRecord): Promise<PublishOutcome> {
    this.published.push(op);
    return 'confirmed';
  }
}

const P = '/v3/admin';
const OTHER = '/v3/other';

describe('volume API: creating from a source', () => {
  let dir: string;
  let store: SqliteStateStore;
  let api: ApiServer;
  let publisher: RecordingPublisher;
  let stamps: PublishStamps;
  let gate: string | undefined;
  let service: VolumeService;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-copies-'));
    const clock = new ManualClock(Date.UTC(2026, 0, 2, 3, 4, 5, 678));
    store = SqliteStateStore.open({ path: join(dir, SQLITE_STATE_FILE), clock, metrics: createStateMetrics(new Registry()) });
    publisher = new RecordingPublisher();
    stamps = new PublishStamps({ store, clock, logger: silentLogger(), delayMs: 1_000 });
    gate = undefined;
    const operationGate: OperationGate = { refuses: (_c, kind) => (kind === 'create_volume' ? undefined : gate) };
    service = new VolumeService({
      store,
      publisher,
      stamps,
      admission: { admitsNewVolumes: async () => ({ accepts: true }), admitsChanges: async () => ({ accepts: true }) },
      gate: operationGate,
      clock,
      logger: silentLogger(),
      cluster: 'ceph@rbd',
      availabilityZone: 'nova',
    });
    api = new ApiServer({ logger: silentLogger(), maxBodyBytes: 65_536, publicUrl: 'http://hearth.example:8776' });
    api.register(volumeRoutes(service));
  });
  afterEach(async () => {
    await stamps.close();
    await api.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function call(method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown) {
    const res = await api.app.inject({
      method,
      url,
      // noauth as cinderclient sends it: `<user>:<project>`, the project the URL names.
      headers: { 'x-auth-token': `alice:${url.split('/')[2] ?? 'admin'}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });
    return { status: res.statusCode, body: res.body === '' ? undefined : res.json<Record<string, any>>() };
  }

  /** What cinderclient 9.x sends for `cinder create [--snapshot-id S | --source-volid V] [size]`. */
  function cinderBody(over: Record<string, unknown>): unknown {
    return { volume: { size: null, consistencygroup_id: null, snapshot_id: null, name: null, description: null, volume_type: null, availability_zone: null, metadata: {}, imageRef: null, source_volid: null, backup_id: null, ...over } };
  }

  /** A volume in `status` (the worker's or an admin's write, by reset). */
  async function volume(size = 1, status = 'available', base = P): Promise<string> {
    const res = await call('POST', `${base}/volumes`, { volume: { size } });
    expect(res.body).toMatchObject({ volume: {} });
    const id = res.body!.volume.id as string;
    if (status !== 'creating') await store.transition({ type: 'volume', id }, { expect: {}, set: { status: status as 'available' }, op: 'remove', by: 'admin' });
    return id;
  }

  async function snapshot(volumeId: string, status = 'available'): Promise<string> {
    const res = await call('POST', `${P}/snapshots`, { snapshot: { volume_id: volumeId } });
    expect(res.status).toBe(202);
    const id = res.body!.snapshot.id as string;
    await store.transition({ type: 'snapshot', id }, { expect: {}, set: { status: status as 'available' }, op: 'remove', by: 'admin' });
    return id;
  }

  async function finish(id: string, status: 'available' | 'error' = 'available'): Promise<void> {
    const done = await store.transition({ type: 'volume', id }, { expect: { status: 'creating' }, set: { status }, op: 'remove', by: 'worker' });
    expect(done.ok).toBe(true);
  }

  async function counts(): Promise<{ volumes: number; ops: number }> {
    return { volumes: (await store.list('volume', { withCount: true })).total ?? -1, ops: (await store.listOps()).length };
  }

  it('clones a volume as cinderclient asks (no size: the source\'s), recording the source and the op', async () => {
    const source = await volume(3);
    const res = await call('POST', `${P}/volumes`, cinderBody({ source_volid: source, name: 'c' }));
    expect(res.status).toBe(202);
    expect(res.body!.volume).toMatchObject({ size: 3, status: 'creating', source_volid: source, snapshot_id: null, name: 'c' });
    const id = res.body!.volume.id as string;
    expect(await store.getOp({ type: 'volume', id })).toMatchObject({ kind: 'clone_volume', params: { size: 3, sourceType: 'volume', sourceId: source } });
    expect(await store.get({ type: 'volume', id })).toMatchObject({ source_held: true, cluster: 'ceph@rbd' });
    expect(publisher.published.at(-1)).toMatchObject({ id, kind: 'clone_volume' });
    const shown = await call('GET', `${P}/volumes/${id}`);
    expect(shown.body!.volume).toMatchObject({ source_volid: source, snapshot_id: null });
    expect(shown.body!.volume).not.toHaveProperty('source_held');
  });

  it('creates a volume from a snapshot, larger than it when asked', async () => {
    const snap = await snapshot(await volume(2));
    const res = await call('POST', `${P}/volumes`, cinderBody({ snapshot_id: snap, size: 5 }));
    expect(res.status).toBe(202);
    expect(res.body!.volume).toMatchObject({ size: 5, snapshot_id: snap, source_volid: null });
    expect(await store.getOp({ type: 'volume', id: res.body!.volume.id as string })).toMatchObject({ kind: 'create_volume_from_snapshot', params: { sourceId: snap } });
  });

  it('clones an in-use volume, as Cinder allows', async () => {
    const source = await volume(1, 'in-use');
    expect((await call('POST', `${P}/volumes`, cinderBody({ source_volid: source }))).status).toBe(202);
  });

  it('refuses to delete or extend a source while a copy holds it (Cinder\'s 400), and deletes it once every copy finished', async () => {
    const source = await volume(1);
    const a = (await call('POST', `${P}/volumes`, cinderBody({ source_volid: source }))).body!.volume.id as string;
    const b = (await call('POST', `${P}/volumes`, cinderBody({ source_volid: source }))).body!.volume.id as string;
    const refused = await call('DELETE', `${P}/volumes/${source}`);
    expect(refused).toEqual({ status: 400, body: { badRequest: { code: 400, message: 'Invalid volume: Volume has 2 dependent volumes being created from it (source in use); delete it when they finish.' } } });
    const extend = await call('POST', `${P}/volumes/${source}/action`, { 'os-extend': { new_size: 2 } });
    expect(extend.status).toBe(400);
    expect(extend.body!.badRequest.message).toMatch(/1 dependent|2 dependent/);
    expect(await store.get({ type: 'volume', id: source })).toMatchObject({ status: 'available', size: 1 });
    await finish(a);
    expect((await call('DELETE', `${P}/volumes/${source}`)).body!.badRequest.message).toMatch(/has 1 dependent volume being created/);
    await finish(b, 'error');
    expect((await call('DELETE', `${P}/volumes/${source}`)).status).toBe(202);
  });

  it('refuses to delete a snapshot while a volume is created from it', async () => {
    const snap = await snapshot(await volume(1));
    const copy = (await call('POST', `${P}/volumes`, cinderBody({ snapshot_id: snap }))).body!.volume.id as string;
    const refused = await call('DELETE', `${P}/snapshots/${snap}`);
    expect(refused).toEqual({ status: 400, body: { badRequest: { code: 400, message: 'Invalid snapshot: Snapshot has 1 dependent volume being created from it (source in use); delete it when they finish.' } } });
    await finish(copy);
    expect((await call('DELETE', `${P}/snapshots/${snap}`)).status).toBe(202);
  });

  describe('bad input: Cinder\'s answer, nothing written', () => {
    const missing = randomUUID();
    it.each([
      ['a source volume that does not exist', () => ({ source_volid: missing }), 404, `Volume ${missing} could not be found.`],
      ['a snapshot that does not exist', () => ({ snapshot_id: missing }), 404, `Snapshot ${missing} could not be found.`],
      ['both sources', () => ({ snapshot_id: missing, source_volid: missing }), 400, 'Invalid input received: May specify only one of snapshot_id and source_volid.'],
      ['no size and no source', () => ({}), 400, "Invalid input for field/attribute volume.size. 'size' is a required property."],
    ])('%s', async (_what, over, status, message) => {
      const before = await counts();
      const res = await call('POST', `${P}/volumes`, cinderBody(over()));
      expect(res).toEqual({ status, body: { [status === 404 ? 'itemNotFound' : 'badRequest']: { code: status, message } } });
      expect(await counts()).toEqual(before);
    });

    it('another project\'s source looks missing (404) to a user who is not an admin', async () => {
      // Over HTTP every noauth caller is an admin (as Cinder's NoAuthMiddleware): a user's view is the service's.
      const theirs = await volume(1, 'available', OTHER);
      const snap = (await call('POST', `${OTHER}/snapshots`, { snapshot: { volume_id: theirs } })).body!.snapshot.id as string;
      const before = await counts();
      const user = { projectId: 'admin', userId: 'alice', isAdmin: false };
      await expect(service.createVolume(user, { sourceVolid: theirs })).rejects.toMatchObject({ code: 'NOT_FOUND', message: `Volume ${theirs} could not be found.` });
      await expect(service.createVolume(user, { snapshotId: snap })).rejects.toMatchObject({ code: 'NOT_FOUND', message: `Snapshot ${snap} could not be found.` });
      expect(await counts()).toEqual(before);
    });

    it('a size smaller than the source (Cinder\'s words)', async () => {
      const source = await volume(2);
      const snap = await snapshot(source);
      const before = await counts();
      expect(await call('POST', `${P}/volumes`, cinderBody({ source_volid: source, size: 1 }))).toEqual({
        status: 400,
        body: { badRequest: { code: 400, message: "Invalid input received: Volume size '1'GB cannot be smaller than original volume size 2GB. They must be >= original volume size." } },
      });
      expect((await call('POST', `${P}/volumes`, cinderBody({ snapshot_id: snap, size: 1 }))).body!.badRequest.message).toBe(
        "Invalid input received: Volume size '1'GB cannot be smaller than the snapshot size 2GB. They must be >= original snapshot size.",
      );
      expect(await counts()).toEqual(before);
    });

    it('a source that is not available, naming the failed condition', async () => {
      const source = await volume(1, 'error');
      const creating = await snapshot(await volume(1), 'error');
      const before = await counts();
      expect(await call('POST', `${P}/volumes`, cinderBody({ source_volid: source }))).toEqual({
        status: 400,
        body: { badRequest: { code: 400, message: 'Invalid volume: Volume status must be available or in-use to clone it (status is error).' } },
      });
      expect((await call('POST', `${P}/volumes`, cinderBody({ snapshot_id: creating }))).body!.badRequest.message).toBe(
        'Invalid snapshot: Snapshot status must be available to create a volume from it (status is error).',
      );
      expect(await counts()).toEqual(before);
    });

    it('a copy while a live worker cannot run it yet (rolling upgrade): UnavailableDuringUpgrade, nothing written', async () => {
      const source = await volume(1);
      gate = 'the live workers of ceph@rbd read messages up to version 1, and clone_volume needs version 2';
      const before = await counts();
      const res = await call('POST', `${P}/volumes`, cinderBody({ source_volid: source }));
      expect(res.status).toBe(400);
      expect(res.body!.badRequest.message).toMatch(/^Cannot clone volume during upgrade: .*needs version 2/);
      expect(await counts()).toEqual(before);
    });
  });
});
