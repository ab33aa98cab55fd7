// The volume and snapshot API over a real SQLite store, through fastify's inject (no sockets).
// Response bodies are untyped JSON, read with optional chaining.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-explicit-any */
import { PublishStamps } from '../../../src/volumes/publish-stamps.js';
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
import { type Admission, ADMIT_ALL, type ClusterAdmission } from '../../../src/volumes/cluster-admission.js';
import type { JobPublisher, PublishOutcome } from '../../../src/volumes/job-publisher.js';
import type { AbortRequest } from '../../../src/routing/abort-notice.js';
import { volumeRoutes } from '../../../src/volumes/volume-routes.js';
import { VolumeService } from '../../../src/volumes/volume-service.js';

/** Records what it was given; answers as told. */
class RecordingPublisher implements JobPublisher {
  readonly published: OpRecord[] = [];
  answer: PublishOutcome | Error = 'confirmed';
  async publish(op: OpRecord): Promise<PublishOutcome> {
    this.published.push(op);
    if (this.answer instanceof Error) throw this.answer;
    return this.answer;
  }
}

const P = '/v3/admin';
const JSON_HEADERS = { 'content-type': 'application/json', 'x-auth-token': 'alice:admin' };

describe('volume API', () => {
  let dir: string;
  let store: SqliteStateStore;
  let api: ApiServer;
  let publisher: RecordingPublisher;
  let admission: Admission;
  let changes: Admission;
  let clock: ManualClock;
  let stamps: PublishStamps;
  let aborts: AbortRequest[];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-api-'));
    clock = new ManualClock(Date.UTC(2026, 0, 2, 3, 4, 5, 678));
    store = SqliteStateStore.open({ path: join(dir, SQLITE_STATE_FILE), clock, metrics: createStateMetrics(new Registry()) });
    publisher = new RecordingPublisher();
    admission = { accepts: true };
    changes = { accepts: true };
    const clusters: ClusterAdmission = { admitsNewVolumes: async () => admission, admitsChanges: async () => changes };
    stamps = new PublishStamps({ store, clock, logger: silentLogger(), delayMs: 1_000 });
    aborts = [];
    const service = new VolumeService({
      store,
      publisher,
      stamps,
      admission: clusters,
      clock,
      logger: silentLogger(),
      cluster: 'ceph@rbd',
      availabilityZone: 'nova',
      abortRun: async (r) => void aborts.push(r),
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

  async function call(method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown, version?: string) {
    const res = await api.app.inject({
      method,
      url,
      // As cinderclient: a content type only with a body.
      headers: { ...(body === undefined ? { 'x-auth-token': JSON_HEADERS['x-auth-token'] } : JSON_HEADERS), ...(version ? { 'openstack-api-version': `volume ${version}` } : {}) },
      ...(body === undefined ? {} : { payload: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    return { status: res.statusCode, body: res.body === '' ? undefined : res.json<Record<string, any>>() };
  }

  async function createVolume(size = 1, extra: Record<string, unknown> = {}): Promise<string> {
    const res = await call('POST', `${P}/volumes`, { volume: { size, ...extra } });
    expect(res.status).toBe(202);
    return res.body!.volume.id as string;
  }

  /** A volume moved to `status` (as a worker or an admin would). */
  async function volumeIn(status: string): Promise<string> {
    const id = await createVolume();
    expect((await call('POST', `${P}/volumes/${id}/action`, { 'os-reset_status': { status } })).status).toBe(202);
    return id;
  }

  async function volumeCount(): Promise<number> {
    return (await store.list('volume', { withCount: true })).total ?? 0;
  }

  describe('create', () => {
    it('accepts everything cinderclient 9.x sends and answers 202 with Cinder\'s volume view', async () => {
      const body = { volume: { size: 1, consistencygroup_id: null, snapshot_id: null, name: 'v1', description: 'd', volume_type: null, availability_zone: null, metadata: { a: 'b' }, imageRef: null, source_volid: null, backup_id: null } };
      const res = await call('POST', `${P}/volumes`, body, '3.70');
      expect(res.status).toBe(202);
      const v = res.body!.volume as Record<string, unknown>;
      expect(v).toMatchObject({
        name: 'v1', description: 'd', size: 1, status: 'creating', availability_zone: 'nova', attachments: [], bootable: 'false', encrypted: false,
        multiattach: false, volume_type: '__DEFAULT__', snapshot_id: null, source_volid: null, metadata: { a: 'b' }, user_id: 'alice',
        'os-vol-host-attr:host': null, 'os-vol-tenant-attr:tenant_id': 'admin', cluster_name: 'ceph@rbd', created_at: '2026-01-02T03:04:05.678000', updated_at: null,
      });
      expect(v.links).toEqual([
        { href: `http://hearth.example:8776${P}/volumes/${String(v.id)}`, rel: 'self' },
        { href: `http://hearth.example:8776/admin/volumes/${String(v.id)}`, rel: 'bookmark' },
      ]);
      expect(await store.getOp({ type: 'volume', id: v.id as string })).toMatchObject({ publishedAt: null });
      // The confirmed publish is stamped in the next batch.
      await stamps.flush();
      const op = await store.getOp({ type: 'volume', id: v.id as string });
      expect(op).toMatchObject({ kind: 'create_volume', status: 'creating', owner: null, publishedAt: clock.now(), params: { size: 1 } });
      expect(publisher.published.map((o) => o.id)).toEqual([v.id]);
    });

    it('shows fields by microversion: no cluster_name before 3.61', async () => {
      const res = await call('POST', `${P}/volumes`, { volume: { size: 1 } }, '3.60');
      expect(res.body!.volume).not.toHaveProperty('cluster_name');
      expect(res.body!.volume).toHaveProperty('service_uuid');
      const old = await call('GET', `${P}/volumes/${res.body!.volume.id as string}`);
      expect(old.body!.volume).not.toHaveProperty('group_id');
      expect(old.body!.volume).toHaveProperty('os-vol-host-attr:host');
    });

    it.each([
      ['a negative size', { volume: { size: -1 } }, /volume\.size\. Value: -1\. Must be a whole number of GiB from 1 to 1048576/],
      ['an absurd size', { volume: { size: 10_000_000_000 } }, /volume\.size/],
      ['a fractional size', { volume: { size: 1.5 } }, /volume\.size/],
      ['a size of the wrong type', { volume: { size: true } }, /volume\.size/],
      ['no size', { volume: { name: 'x' } }, /'size' is a required property/],
      ['no volume', {}, /'volume' is a required property/],
      ['an unknown field', { volume: { size: 1, colour: 'red' } }, /Additional properties are not allowed \('colour' was unexpected\)/],
      ['an unknown top-level field', { volume: { size: 1 }, extra: 1 }, /'extra' was unexpected/],
      ['a non-string name', { volume: { size: 1, name: 5 } }, /volume\.name/],
      ['non-string metadata', { volume: { size: 1, metadata: { a: 1 } } }, /volume\.metadata\.a/],
      ['a snapshot source that is not a UUID', { volume: { size: 1, snapshot_id: 'x' } }, /volume\.snapshot_id\. Value: "x"\. Must be a UUID/],
      ['a clone source that is not a UUID', { volume: { size: 1, source_volid: 5 } }, /volume\.source_volid\. Value: 5\. Must be a UUID/],
      ['an image', { volume: { size: 1, imageRef: 'x' } }, /from an image: not supported/],
      ['a backup', { volume: { size: 1, backup_id: 'x' } }, /from a backup: not supported/],
      ['multiattach', { volume: { size: 1, multiattach: true } }, /multiattach parameter has been removed/],
      ['scheduler hints', { volume: { size: 1 }, 'OS-SCH-HNT:scheduler_hints': { a: 1 } }, /Scheduler hints: not supported/],
      ['another availability zone', { volume: { size: 1, availability_zone: 'elsewhere' } }, /Availability zone 'elsewhere' is invalid/],
      ['malformed JSON', '{"volume": {', /not valid JSON/],
      ['a JSON array', '[1]', /Invalid request body/],
    ])('refuses %s with 400 and writes nothing', async (_what, body, message) => {
      const res = await call('POST', `${P}/volumes`, body);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ badRequest: { code: 400, message: expect.stringMatching(message) } });
      expect(await volumeCount()).toBe(0);
      expect(publisher.published).toEqual([]);
    });

    it('refuses an unknown volume type with 404 and writes nothing', async () => {
      const res = await call('POST', `${P}/volumes`, { volume: { size: 1, volume_type: 'gold' } });
      expect(res).toEqual({ status: 404, body: { itemNotFound: { code: 404, message: 'Volume type with name gold could not be found.' } } });
      expect(await volumeCount()).toBe(0);
    });

    it('asks whether the cluster accepts new volumes and refuses when it does not', async () => {
      admission = { accepts: false, reason: 'disabled for maintenance' };
      const res = await call('POST', `${P}/volumes`, { volume: { size: 1 } });
      expect(res).toEqual({ status: 400, body: { badRequest: { code: 400, message: 'Cluster ceph@rbd does not accept new volumes: disabled for maintenance' } } });
      expect(await volumeCount()).toBe(0);
    });

    it('a frozen cluster refuses create, delete, extend and snapshots with Cinder\'s InvalidInput, records nothing, and still answers reads', async () => {
      const id = await volumeIn('available');
      const frozen = { accepts: false as const, reason: 'Modification operations are not allowed on frozen storage backends.', frozen: true };
      admission = frozen;
      changes = frozen;
      const fault = { status: 400, body: { badRequest: { code: 400, message: 'Invalid input received: Modification operations are not allowed on frozen storage backends.' } } };
      const before = publisher.published.length;
      expect(await call('POST', `${P}/volumes`, { volume: { size: 1 } })).toEqual(fault);
      expect(await call('DELETE', `${P}/volumes/${id}`)).toEqual(fault);
      expect(await call('POST', `${P}/volumes/${id}/action`, { 'os-extend': { new_size: 2 } })).toEqual(fault);
      expect(await call('POST', `${P}/volumes/${id}/action`, { 'os-force_delete': {} })).toEqual(fault);
      expect(await call('POST', `${P}/snapshots`, { snapshot: { volume_id: id } })).toEqual(fault);
      expect(publisher.published.length).toBe(before);
      expect(await store.getOp({ type: 'volume', id })).toBeUndefined();
      expect(await volumeCount()).toBe(1);
      expect((await call('GET', `${P}/volumes/${id}`)).body?.volume).toMatchObject({ id, status: 'available', size: 1 });
      changes = { accepts: true };
      admission = { accepts: true };
      expect((await call('DELETE', `${P}/volumes/${id}`)).status).toBe(202);
    });

    it('still succeeds when publishing fails, leaving the op queued and unpublished', async () => {
      publisher.answer = new Error('broker down');
      const id = await createVolume();
      expect(await store.getOp({ type: 'volume', id })).toMatchObject({ publishedAt: null, owner: null });
      publisher.answer = 'deferred';
      const other = await createVolume();
      await stamps.flush();
      expect(await store.listOps({ unpublishedBefore: clock.now() + 1 })).toHaveLength(2);
      expect((await store.getOp({ type: 'volume', id: other }))?.publishedAt).toBeNull();
    });
  });

  describe('show and list', () => {
    it('shows a volume and answers 404 with Cinder\'s fault body for a missing one', async () => {
      const id = await createVolume(2, { name: 'x' });
      expect(await call('GET', `${P}/volumes/${id}`)).toMatchObject({ status: 200, body: { volume: { id, size: 2, name: 'x' } } });
      const missing = await call('GET', `${P}/volumes/nope`);
      expect(missing).toEqual({ status: 404, body: { itemNotFound: { code: 404, message: 'Volume nope could not be found.' } } });
    });

    it('lists summaries and details, filtered, sorted, paged with next links and counts', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        ids.push(await createVolume(1, { name: i % 2 ? 'odd' : 'even' }));
        await clock.advance(1_000);
      }
      const summary = await call('GET', `${P}/volumes`);
      expect(summary.body!.volumes).toHaveLength(5);
      expect(Object.keys(summary.body!.volumes[0] as object).sort()).toEqual(['id', 'links', 'name']);
      const page = await call('GET', `${P}/volumes/detail?limit=2&name=even`, undefined, '3.45');
      expect(page.body!.volumes.map((v: { id: string }) => v.id)).toEqual([ids[4], ids[2]]);
      expect(page.body!.volumes_links).toEqual([{ rel: 'next', href: `http://hearth.example:8776${P}/volumes/detail?name=even&limit=2&marker=${ids[2]}` }]);
      const next = await call('GET', `${P}/volumes/detail?name=even&limit=2&marker=${ids[2]!}&with_count=true`, undefined, '3.45');
      expect(next.body).toMatchObject({ volumes: [{ id: ids[0] }], count: 3 });
      expect(next.body).not.toHaveProperty('volumes_links');
      const sorted = await call('GET', `${P}/volumes?sort=display_name:asc,created_at:asc`);
      expect(sorted.body!.volumes.map((v: { id: string }) => v.id)).toEqual([ids[0], ids[2], ids[4], ids[1], ids[3]]);
      expect((await call('GET', `${P}/volumes?all_tenants=1&project_id=other`)).body).toEqual({ volumes: [] });
      const other = await api.app.inject({ method: 'GET', url: '/v3/other/volumes', headers: { 'x-auth-token': 'alice:other' } });
      expect(other.json()).toEqual({ volumes: [] });
      // Cinder's noauth: a token for one project may not use another's URL.
      expect((await call('GET', `/v3/other/volumes`)).body).toEqual({ badRequest: { code: 400, message: 'Malformed request url' } });
    });

    it.each([
      ['an unknown filter', '?colour=red', /Invalid filter keys: colour/],
      ['a negative limit', '?limit=-1', /limit must be a non-negative integer/],
      ['an unknown sort key', '?sort=bogus', /cannot sort by 'bogus'/],
      ['a bad sort direction', '?sort=name:up', /must be asc or desc/],
      ['an unknown marker', '?marker=nope', /Marker nope could not be found/],
      // Served only from an index, never by scanning every volume (docs/state.md, "Listing").
      ['a sort no index serves', '?sort=size:asc', /sorting by size:asc,created_at:asc,id:asc is not supported/],
      ['a name sort with a status filter', '?sort=name:asc&status=available', /sorting by name cannot be combined with a status filter/],
    ])('refuses %s with 400', async (_what, query, message) => {
      const res = await call('GET', `${P}/volumes/detail${query}`);
      expect(res).toEqual({ status: 400, body: { badRequest: { code: 400, message: expect.stringMatching(message) } } });
    });
  });

  describe('delete', () => {
    it('moves an available volume to deleting with a delete op, once', async () => {
      const id = await volumeIn('available');
      expect((await call('DELETE', `${P}/volumes/${id}`)).status).toBe(202);
      expect(await store.get({ type: 'volume', id })).toMatchObject({ status: 'deleting' });
      expect(await store.getOp({ type: 'volume', id })).toMatchObject({ kind: 'delete_volume', status: 'deleting' });
      const again = await call('DELETE', `${P}/volumes/${id}`);
      expect(again).toEqual({
        status: 400,
        body: { badRequest: { code: 400, message: 'Invalid volume: Volume status must be available, error, error_restoring, error_extending or error_managing to delete (status is deleting).' } },
      });
    });

    it('names the failed condition: in-use, attached, has snapshots', async () => {
      const inUse = await volumeIn('in-use');
      expect((await call('DELETE', `${P}/volumes/${inUse}`)).body!.badRequest.message).toMatch(/status must be .* to delete \(status is in-use\)/);
      const attached = await volumeIn('available');
      await call('POST', `${P}/volumes/${attached}/action`, { 'os-reset_status': { attach_status: 'attached' } });
      expect((await call('DELETE', `${P}/volumes/${attached}`)).body!.badRequest.message).toBe('Invalid volume: Volume must not be attached to delete (attach_status is attached).');
      const withSnap = await volumeIn('available');
      expect((await call('POST', `${P}/snapshots`, { snapshot: { volume_id: withSnap } })).status).toBe(202);
      expect((await call('DELETE', `${P}/volumes/${withSnap}`)).body!.badRequest.message).toBe('Invalid volume: Volume must have no snapshots to delete (it has 1).');
      expect(await store.get({ type: 'volume', id: withSnap })).toMatchObject({ status: 'available' });
    });

    it('refuses cascade and force instead of ignoring them, and 404s a missing volume', async () => {
      const id = await volumeIn('available');
      expect((await call('DELETE', `${P}/volumes/${id}?cascade=true`)).body!.badRequest.message).toMatch(/cascade\) is not supported/);
      expect((await call('DELETE', `${P}/volumes/${id}?force=1`)).body!.badRequest.message).toMatch(/force-deleting a volume before microversion 3.23 is not supported/);
      expect(await store.get({ type: 'volume', id })).toMatchObject({ status: 'available' });
      expect((await call('DELETE', `${P}/volumes/missing`)).status).toBe(404);
    });
  });

  describe('force-delete (os-force_delete)', () => {
    it('deletes from any status: one write replaces the op in flight with a force-delete op naming it, and asks its owner to abort', async () => {
      const id = await createVolume();
      const creating = (await store.getOp({ type: 'volume', id }))!;
      const owner = { host: 'n1@rbd', incarnation: 'n1@rbd:1', aliveRevision: '5' };
      expect((await store.updateOp({ type: 'volume', id }, { expect: { opId: creating.opId }, set: { owner, attempt: 1 } })).ok).toBe(true);
      publisher.published.length = 0;
      expect((await call('POST', `${P}/volumes/${id}/action`, { 'os-force_delete': null })).status).toBe(202);
      expect(await store.get({ type: 'volume', id })).toMatchObject({ status: 'deleting' });
      const op = (await store.getOp({ type: 'volume', id }))!;
      expect(op).toMatchObject({ kind: 'delete_volume', owner: null, params: { force: true, replaced: { opId: creating.opId, kind: 'create_volume', owner: 'n1@rbd:1', ownerHost: 'n1@rbd' } } });
      expect(op.opId).not.toBe(creating.opId);
      expect(publisher.published.map((o) => o.opId)).toEqual([op.opId]);
      expect(aborts).toEqual([{ type: 'volume', id, opId: creating.opId, reason: 'force-delete' }]);
      // The replaced run can write nothing more: its final write expects its own op.
      const late = await store.transition({ type: 'volume', id }, { expect: { status: 'creating' }, expectOp: { opId: creating.opId }, set: { status: 'available' }, op: 'remove', by: 'worker' });
      expect(late.ok).toBe(false);
    });

    it('a resource with no op in flight (error_deleting) is deleted with a fresh op; no abort is sent', async () => {
      const id = await volumeIn('error_deleting');
      expect((await call('POST', `${P}/volumes/${id}/action`, { 'os-force_delete': {} })).status).toBe(202);
      expect(await store.getOp({ type: 'volume', id })).toMatchObject({ kind: 'delete_volume', params: { force: true } });
      expect(aborts).toEqual([]);
    });

    it('DELETE ?force=true from microversion 3.23 is the same; refuses an attached volume or one with snapshots', async () => {
      const id = await volumeIn('error');
      expect((await call('DELETE', `${P}/volumes/${id}?force=true`, undefined, '3.23')).status).toBe(202);
      expect(await store.get({ type: 'volume', id })).toMatchObject({ status: 'deleting' });
      const attached = await createVolume();
      expect((await call('POST', `${P}/volumes/${attached}/action`, { 'os-reset_status': { status: 'in-use', attach_status: 'attached' } })).status).toBe(202);
      const refused = await call('POST', `${P}/volumes/${attached}/action`, { 'os-force_delete': {} });
      expect(refused.status).toBe(400);
      expect(refused.body!.badRequest.message).toMatch(/must not be attached to force-delete/);
      const withSnap = await volumeIn('available');
      expect((await call('POST', `${P}/snapshots`, { snapshot: { volume_id: withSnap } })).status).toBe(202);
      expect((await call('POST', `${P}/volumes/${withSnap}/action`, { 'os-force_delete': {} })).body!.badRequest.message).toMatch(/must have no snapshots/);
      expect((await call('POST', `${P}/volumes/missing/action`, { 'os-force_delete': {} })).status).toBe(404);
    });

    it('snapshots: os-force_delete from any status', async () => {
      const volume = await volumeIn('available');
      const snap = (await call('POST', `${P}/snapshots`, { snapshot: { volume_id: volume } })).body!.snapshot.id as string;
      expect((await call('POST', `${P}/snapshots/${snap}/action`, { 'os-force_delete': {} })).status).toBe(202);
      expect(await store.get({ type: 'snapshot', id: snap })).toMatchObject({ status: 'deleting' });
      expect(await store.getOp({ type: 'snapshot', id: snap })).toMatchObject({ kind: 'delete_snapshot', params: { force: true, replaced: { kind: 'create_snapshot', owner: null } } });
    });
  });

  describe('actions', () => {
    it('os-extend records an extend op and keeps the size until a worker extends', async () => {
      const id = await volumeIn('available');
      expect((await call('POST', `${P}/volumes/${id}/action`, { 'os-extend': { new_size: 3 } })).status).toBe(202);
      expect(await store.get({ type: 'volume', id })).toMatchObject({ status: 'extending', previous_status: 'available', size: 1 });
      expect(await store.getOp({ type: 'volume', id })).toMatchObject({ kind: 'extend_volume', params: { newSize: 3, oldSize: 1 } });
    });

    it('os-extend refuses a smaller size, a bad size, the wrong status, and in-use before 3.42', async () => {
      const id = await volumeIn('available');
      expect((await call('POST', `${P}/volumes/${id}/action`, { 'os-extend': { new_size: 1 } })).body!.badRequest.message).toBe(
        'New size for extend must be greater than current size. (current: 1, extended: 1).',
      );
      expect((await call('POST', `${P}/volumes/${id}/action`, { 'os-extend': { new_size: 'big' } })).body!.badRequest.message).toMatch(/os-extend\.new_size/);
      expect((await call('POST', `${P}/volumes/${id}/action`, { 'os-extend': { size: 2 } })).body!.badRequest.message).toMatch(/os-extend\.new_size\. 'new_size' is a required property/);
      expect((await call('POST', `${P}/volumes/${id}/action`, { 'os-extend': { new_size: 2, size: 2 } })).body!.badRequest.message).toMatch(/'size' was unexpected/);
      const inUse = await volumeIn('in-use');
      expect((await call('POST', `${P}/volumes/${inUse}/action`, { 'os-extend': { new_size: 2 } }, '3.41')).body!.badRequest.message).toBe(
        'Invalid volume: Volume status must be available to extend (status is in-use).',
      );
      expect((await call('POST', `${P}/volumes/${inUse}/action`, { 'os-extend': { new_size: 2 } }, '3.42')).status).toBe(202);
      const creating = await createVolume();
      expect((await call('POST', `${P}/volumes/${creating}/action`, { 'os-extend': { new_size: 2 } })).body!.badRequest.message).toMatch(/\(status is creating\)/);
    });

    it('os-reset_status sets stable statuses, abandons the op, and refuses transitional or unknown ones', async () => {
      const id = await createVolume();
      const reset = (body: unknown) => call('POST', `${P}/volumes/${id}/action`, { 'os-reset_status': body });
      expect((await reset({ status: 'error', migration_status: 'none' })).status).toBe(202);
      expect(await store.get({ type: 'volume', id })).toMatchObject({ status: 'error', migration_status: null });
      expect(await store.getOp({ type: 'volume', id })).toBeUndefined();
      expect((await reset({ status: 'deleting' })).body!.badRequest.message).toMatch(/cannot reset a volume to deleting: no operation would ever finish it/);
      expect((await reset({ status: 'bogus' })).body!.badRequest.message).toBe("Invalid input received: 'bogus' is not a valid volume status.");
      expect((await reset({})).body!.badRequest.message).toMatch(/Must specify 'status', 'attach_status' or 'migration_status'/);
      expect((await reset({ attach_status: 'sideways' })).body!.badRequest.message).toMatch(/attach_status/);
      expect((await call('POST', `${P}/volumes/${id}/action`, { 'os-frobnicate': {} })).body!.badRequest.message).toBe('There is no such action: os-frobnicate');
      expect((await call('POST', `${P}/volumes/${id}/action`, { 'os-extend': { new_size: 2 }, 'os-reset_status': {} })).status).toBe(400);
      expect(await store.get({ type: 'volume', id })).toMatchObject({ status: 'error' });
    });
  });

  describe('snapshots', () => {
    it('creates, lists, shows and deletes a snapshot in Cinder\'s shapes', async () => {
      const vol = await volumeIn('available');
      const created = await call('POST', `${P}/snapshots`, { snapshot: { volume_id: vol, name: 's1', description: null, metadata: {} } }, '3.70');
      expect(created.status).toBe(202);
      const snap = created.body!.snapshot as Record<string, unknown>;
      expect(snap).toMatchObject({ volume_id: vol, name: 's1', status: 'creating', size: 1, user_id: 'alice', group_snapshot_id: null, 'os-extended-snapshot-attributes:project_id': 'admin', 'os-extended-snapshot-attributes:progress': '0%' });
      const id = snap.id as string;
      expect(await store.getOp({ type: 'snapshot', id })).toMatchObject({ kind: 'create_snapshot', params: { volumeId: vol } });
      const list = await call('GET', `${P}/snapshots`);
      expect(list.body!.snapshots).toEqual([expect.not.objectContaining({ 'os-extended-snapshot-attributes:progress': expect.anything() })]);
      expect((await call('GET', `${P}/snapshots/detail?volume_id=${vol}`)).body!.snapshots).toHaveLength(1);
      expect((await call('GET', `${P}/snapshots/${id}`)).body!.snapshot).toMatchObject({ id });
      expect((await call('DELETE', `${P}/snapshots/${id}`)).body!.badRequest.message).toBe('Invalid snapshot: Snapshot status must be available or error to delete (status is creating).');
      expect((await call('POST', `${P}/snapshots/${id}/action`, { 'os-reset_status': { status: 'available' } })).status).toBe(202);
      expect((await call('DELETE', `${P}/snapshots/${id}`)).status).toBe(202);
      expect(await store.get({ type: 'snapshot', id })).toMatchObject({ status: 'deleting' });
    });

    it('refuses to snapshot a volume that is not available (in-use needs force before 3.66)', async () => {
      const vol = await volumeIn('in-use');
      const res = await call('POST', `${P}/snapshots`, { snapshot: { volume_id: vol } }, '3.65');
      expect(res.body!.badRequest.message).toBe('Invalid volume: Volume status must be available to snapshot it (status is in-use).');
      expect((await call('POST', `${P}/snapshots`, { snapshot: { volume_id: vol, force: 'True' } }, '3.65')).status).toBe(202);
      expect((await call('POST', `${P}/snapshots`, { snapshot: { volume_id: vol } }, '3.66')).status).toBe(202);
      expect((await call('POST', `${P}/snapshots`, { snapshot: { volume_id: vol, force: false } }, '3.66')).status).toBe(400);
      expect((await call('POST', `${P}/snapshots`, { snapshot: { volume_id: 'missing' } })).status).toBe(404);
      expect((await call('POST', `${P}/snapshots`, { snapshot: { volume_id: vol, bogus: 1 } })).body!.badRequest.message).toMatch(/'bogus' was unexpected/);
      expect((await store.list('snapshot', { withCount: true })).total).toBe(2);
    });
  });
});

describe('ADMIT_ALL', () => {
  it('accepts every cluster', async () => {
    expect(await ADMIT_ALL.admitsNewVolumes('any@x')).toEqual({ accepts: true });
  });
});
