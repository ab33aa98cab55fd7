import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterRoutes } from '../../../src/api/clusters.js';
import { ApiServer } from '../../../src/api/server.js';
import { VOLUME_BINARY } from '../../../src/identity.js';
import { ManualClock } from '../../../src/lifecycle/clock.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { MembershipClusterAdmission } from '../../../src/membership/cluster-status.js';
import { FREEZE, THAW } from '../../../src/membership/replication.js';
import { LocalMembership } from '../../../src/membership/local-membership.js';
import { LocalRecordFile } from '../../../src/membership/local-store.js';
import type { Member } from '../../../src/membership/membership.js';
import { TestSession } from '../../support/test-session.js';

const T0 = Date.UTC(2024, 2, 3, 4, 5, 6, 789);
const STAMP = '2024-03-03T04:05:06.789000';

/** The JSON bodies these routes answer with (and Cinder's faults). */
interface Body {
  clusters: Record<string, unknown>[];
  cluster: Record<string, unknown>;
  services: Record<string, unknown>[];
  badRequest: { code: number; message: string };
  itemNotFound: { code: number; message: string };
}

const body = (res: { json: () => unknown }): Body => res.json() as Body;

describe('cluster and service API (Cinder paths, microversions, filters, bodies, errors)', () => {
  let server: ApiServer;
  let app: FastifyInstance;
  let membership: LocalMembership;
  let member: Member;
  const clock = new ManualClock(T0);

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-api-'));
    membership = new LocalMembership(await LocalRecordFile.open(join(dir, 'membership.json')), clock);
    member = await membership.join({
      identity: { cluster: 'mycluster@lvm', host: 'node1@lvm', zone: 'nova' },
      binary: VOLUME_BINARY,
      version: '0.1.0',
      session: TestSession.local('node1@lvm'),
    });
    server = new ApiServer({ logger: silentLogger(), maxBodyBytes: 65_536 });
    server.register(clusterRoutes(membership, VOLUME_BINARY));
    app = server.app;
    await app.ready();
  });
  afterAll(async () => {
    await server.close();
    await membership.close();
  });

  const get = (url: string, version?: string) =>
    app.inject({ method: 'GET', url, headers: version ? { 'OpenStack-API-Version': `volume ${version}` } : {} });
  const put = (url: string, body: unknown, version = '3.7') =>
    app.inject({
      method: 'PUT',
      url,
      headers: { 'OpenStack-API-Version': `volume ${version}`, 'content-type': 'application/json' },
      payload: typeof body === 'string' ? body : JSON.stringify(body),
    });

  it('hides the cluster API below 3.7 (404 itemNotFound) and with no version header (3.0)', async () => {
    for (const res of [await get('/v3/admin/clusters', '3.6'), await get('/v3/admin/clusters'), await get('/v3/admin/clusters/detail', '3.0')]) {
      expect(res.statusCode).toBe(404);
      expect(body(res)).toMatchObject({ itemNotFound: { code: 404 } });
    }
    expect((await put('/v3/admin/clusters/disable', { name: 'mycluster@lvm' }, '3.6')).statusCode).toBe(404);
  });

  it('GET /clusters: summary at 3.7, replication_status from 3.26, with the negotiated version echoed', async () => {
    const at37 = await get('/v3/admin/clusters', '3.7');
    expect(at37.statusCode).toBe(200);
    expect(at37.headers['openstack-api-version']).toBe('volume 3.7');
    expect(body(at37)).toEqual({ clusters: [{ name: 'mycluster@lvm', binary: VOLUME_BINARY, state: 'up', status: 'enabled' }] });
    const at326 = await get('/v3/admin/clusters', '3.26');
    expect(body(at326)).toEqual({
      clusters: [{ name: 'mycluster@lvm', binary: VOLUME_BINARY, state: 'up', status: 'enabled', replication_status: 'not-capable' }],
    });
    expect((await get('/v3/admin/clusters', 'latest')).headers['openstack-api-version']).toBe('volume 3.70');
  });

  it('GET /clusters/detail: counts, Cinder datetimes and "" for a missing one', async () => {
    const res = await get('/v3/admin/clusters/detail', '3.26');
    expect(body(res)).toEqual({
      clusters: [
        {
          name: 'mycluster@lvm',
          binary: VOLUME_BINARY,
          state: 'up',
          status: 'enabled',
          num_hosts: 1,
          num_down_hosts: 0,
          last_heartbeat: STAMP,
          created_at: STAMP,
          updated_at: '',
          disabled_reason: null,
          replication_status: 'not-capable',
          frozen: false,
          active_backend_id: null,
        },
      ],
    });
    expect(Object.keys(body(await get('/v3/admin/clusters/detail', '3.25')).clusters[0]!)).not.toContain('frozen');
  });

  it('filters lists as Cinder: fuzzy name, booleans, counts; unknown keys are 400', async () => {
    const names = async (qs: string, v = '3.26') => body(await get(`/v3/admin/clusters?${qs}`, v)).clusters.map((c) => c.name);
    expect(await names('name=mycluster')).toEqual(['mycluster@lvm']);
    expect(await names('name=mycluster@other')).toEqual([]);
    expect(await names('is_up=true&disabled=false&num_hosts=1&num_down_hosts=0&binary=cinder-volume')).toEqual(['mycluster@lvm']);
    expect(await names('is_up=False')).toEqual([]);
    expect(await names('frozen=false&replication_status=not-capable')).toEqual(['mycluster@lvm']);
    const unknown = await get('/v3/admin/clusters/detail?colour=red', '3.26');
    expect(unknown.statusCode).toBe(400);
    expect(body(unknown)).toEqual({ badRequest: { code: 400, message: 'Invalid input received: Invalid filter keys: colour' } });
    const early = await get('/v3/admin/clusters?frozen=true', '3.25');
    expect(early.statusCode).toBe(400);
    expect(body(early).badRequest.message).toContain('Invalid filter keys: frozen');
    const badBool = await get('/v3/admin/clusters?is_up=maybe', '3.7');
    expect(badBool.statusCode).toBe(400);
    expect(body(badBool).badRequest.message).toBe("Value 'maybe' for 'is_up' is not a boolean.");
  });

  it('GET /clusters/{name}?binary=: detail; an unknown cluster or binary is 404 itemNotFound', async () => {
    const res = await get('/v3/admin/clusters/mycluster@lvm?binary=cinder-volume', '3.7');
    expect(res.statusCode).toBe(200);
    expect(body(res).cluster).toMatchObject({ name: 'mycluster@lvm', num_hosts: 1, last_heartbeat: STAMP });
    expect((await get('/v3/admin/clusters/mycluster@lvm', '3.7')).statusCode).toBe(200);
    const missing = await get('/v3/admin/clusters/nope@lvm', '3.7');
    expect(missing.statusCode).toBe(404);
    expect(body(missing)).toEqual({ itemNotFound: { code: 404, message: 'Cluster nope@lvm could not be found.' } });
    expect((await get('/v3/admin/clusters/mycluster@lvm?binary=cinder-backup', '3.7')).statusCode).toBe(404);
    // Exact names only: Cinder would silently pick one backend of a backend-less name.
    expect((await get('/v3/admin/clusters/mycluster', '3.7')).statusCode).toBe(404);
  });

  it('PUT /clusters/disable and /enable: Cinder\'s bodies and answers; the reason is stripped', async () => {
    await clock.advance(1_000);
    const disabled = await put('/v3/admin/clusters/disable', { name: 'mycluster@lvm', binary: 'cinder-volume', disabled_reason: '  maint  ' });
    expect(disabled.statusCode).toBe(200);
    expect(body(disabled)).toEqual({
      cluster: { name: 'mycluster@lvm', binary: VOLUME_BINARY, state: 'up', status: 'disabled', disabled_reason: 'maint' },
    });
    const detail = body(await get('/v3/admin/clusters/mycluster@lvm', '3.7')).cluster;
    expect(detail).toMatchObject({ status: 'disabled', disabled_reason: 'maint', updated_at: '2024-03-03T04:05:07.789000' });
    const admission = new MembershipClusterAdmission(membership, VOLUME_BINARY);
    expect(await admission.admitsNewVolumes('mycluster@lvm')).toEqual({
      accepts: false,
      reason: 'it is disabled (maint)',
    });
    expect(await admission.admitsNewVolumes('elsewhere@lvm')).toMatchObject({ accepts: true });
    const enabled = await put('/v3/admin/clusters/enable', { name: 'mycluster@lvm' }, '3.26');
    expect(body(enabled)).toEqual({
      cluster: { name: 'mycluster@lvm', binary: VOLUME_BINARY, state: 'up', status: 'enabled', replication_status: 'not-capable', disabled_reason: null },
    });
    const accepted = await admission.admitsNewVolumes('mycluster@lvm');
    expect(accepted).toMatchObject({ accepts: true });
    // Remembered with the fence of the record it read: a create carries it and fails once the record changes.
    expect(await admission.admitsNewVolumes('mycluster@lvm')).toBe(accepted);
    const fence = accepted.accepts ? accepted.fence : undefined;
    expect(fence?.holds()).toBe(true);
    await put('/v3/admin/clusters/disable', { name: 'mycluster@lvm', disabled_reason: 'again' }, '3.7');
    expect(fence?.holds()).toBe(false);
    expect(await admission.admitsNewVolumes('mycluster@lvm', { fresh: true })).toEqual({ accepts: false, reason: 'it is disabled (again)' });
    await put('/v3/admin/clusters/enable', { name: 'mycluster@lvm' }, '3.26');
  });

  it('a frozen cluster admits no change and no new volume; a disabled one still admits changes; answers are remembered with their fence', async () => {
    const admission = new MembershipClusterAdmission(membership, VOLUME_BINARY);
    const open = await admission.admitsChanges('mycluster@lvm');
    expect(open).toMatchObject({ accepts: true });
    expect(await admission.admitsChanges('mycluster@lvm')).toBe(open);
    await membership.updateCluster('mycluster@lvm', VOLUME_BINARY, FREEZE);
    // The remembered answer's fence fails in the write; the fresh read refuses.
    expect(open.accepts && open.fence?.holds()).toBe(false);
    const frozen = { accepts: false, reason: 'Modification operations are not allowed on frozen storage backends.', frozen: true };
    expect(await admission.admitsChanges('mycluster@lvm', { fresh: true })).toEqual(frozen);
    expect(await admission.admitsNewVolumes('mycluster@lvm', { fresh: true })).toEqual(frozen);
    await membership.updateCluster('mycluster@lvm', VOLUME_BINARY, THAW);
    await membership.setClusterDisabled('mycluster@lvm', VOLUME_BINARY, true, 'maint');
    expect(await admission.admitsChanges('mycluster@lvm', { fresh: true })).toMatchObject({ accepts: true });
    await membership.setClusterDisabled('mycluster@lvm', VOLUME_BINARY, false, null);
  });

  it.each([
    ['disable', { binary: 'cinder-volume' }, 400, "'name' is a required property"],
    ['disable', { name: '' }, 400, 'Invalid input for field/attribute name.'],
    ['disable', { name: 'mycluster@lvm', disabled_reason: '   ' }, 400, 'Invalid input for field/attribute disabled_reason.'],
    ['disable', { name: 'mycluster@lvm', disabled_reason: 'x'.repeat(256) }, 400, 'Invalid input for field/attribute disabled_reason.'],
    ['disable', { name: 'mycluster@lvm', disabled_reason: 5 }, 400, 'Invalid input for field/attribute disabled_reason.'],
    ['enable', { name: 'mycluster@lvm', disabled_reason: 'x' }, 400, "Additional properties are not allowed ('disabled_reason' was unexpected)"],
    ['disable', { name: 'mycluster@lvm', colour: 'red' }, 400, "Additional properties are not allowed ('colour' was unexpected)"],
    ['disable', [1, 2], 400, 'the body must be a JSON object'],
    ['disable', '{not json', 400, 'Malformed request body'],
    ['disable', { name: 'nope@lvm' }, 404, 'Cluster nope@lvm could not be found.'],
    ['disable', { name: 'mycluster@lvm', binary: 'cinder-backup' }, 404, 'Cluster mycluster@lvm could not be found.'],
    ['frobnicate', { name: 'mycluster@lvm' }, 404, 'Unknown action'],
  ])('PUT /clusters/%s %j → %i', async (action, payload, status, message) => {
    const res = await put(`/v3/admin/clusters/${action}`, payload);
    expect(res.statusCode).toBe(status);
    const fault: Record<string, { code: number; message: string }> = res.json();
    const [name] = Object.keys(fault);
    expect(name).toBe(status === 400 ? 'badRequest' : 'itemNotFound');
    expect(fault[name!]!.message).toContain(message);
    // Nothing was changed by a refused request.
    expect(body(await get('/v3/admin/clusters/mycluster@lvm', '3.7')).cluster.status).toBe('enabled');
  });

  it('GET /os-services: cluster from 3.7, backend_state from 3.49, host and binary filters', async () => {
    const at30 = body(await get('/v3/admin/os-services'));
    expect(at30).toEqual({
      services: [
        {
          id: 1,
          binary: VOLUME_BINARY,
          host: 'node1@lvm',
          zone: 'nova',
          status: 'enabled',
          state: 'up',
          updated_at: STAMP,
          disabled_reason: null,
          replication_status: 'not-capable',
          active_backend_id: null,
          frozen: false,
        },
      ],
    });
    expect(body(await get('/v3/admin/os-services', '3.7')).services[0]).toMatchObject({ cluster: 'mycluster@lvm' });
    expect(body(await get('/v3/admin/os-services', '3.7')).services[0]).not.toHaveProperty('backend_state');
    expect(body(await get('/v3/admin/os-services', '3.49')).services[0]).toMatchObject({ backend_state: 'up' });
    const hosts = async (qs: string) => body(await get(`/v3/admin/os-services?${qs}`)).services.map((s) => s.host);
    expect(await hosts('host=node1')).toEqual(['node1@lvm']);
    expect(await hosts('host=node1@lvm&binary=cinder-volume')).toEqual(['node1@lvm']);
    expect(await hosts('host=node2')).toEqual([]);
    expect(await hosts('binary=cinder-scheduler')).toEqual([]);
  });

  it('shows a member that left as down at once, in clusters and services', async () => {
    await member.leave();
    expect(body(await get('/v3/admin/clusters/detail', '3.7')).clusters[0]).toMatchObject({ state: 'down', num_hosts: 1, num_down_hosts: 1 });
    expect(body(await get('/v3/admin/os-services', '3.49')).services[0]).toMatchObject({ state: 'down', backend_state: null });
  });
});
