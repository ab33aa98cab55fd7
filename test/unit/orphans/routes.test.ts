import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApiServer } from '../../../src/api/server.js';
import { BackendUnavailableError } from '../../../src/errors.js';
import { VOLUME_BINARY } from '../../../src/identity.js';
import { silentLogger } from '../../../src/observability/logger.js';
import type { AliveMember, ClusterRecord, MembershipSnapshot, ServiceRecord } from '../../../src/membership/records.js';
import { findOrphans } from '../../../src/orphans/find-orphans.js';
import { type CleanupDispatch, orphanRoutes } from '../../../src/orphans/routes.js';
import type { OpRecord } from '../../../src/state/records.js';

const T0 = Date.UTC(2024, 2, 3, 4, 5, 6, 789);
const VOL_ID = '6f1c8a2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b';
const SNAP_ID = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';

function cluster(name: string, disabled = false): ClusterRecord {
  return { name, binary: VOLUME_BINARY, disabled, disabledReason: null, frozen: false, replicationStatus: 'not-capable', activeBackendId: null, backendEpoch: 0, replicationTargets: [], failover: null, createdAtMs: T0, updatedAtMs: null };
}

function service(id: number, host: string, clusterName: string | null, disabled = false): ServiceRecord {
  return {
    id,
    binary: VOLUME_BINARY,
    host,
    cluster: clusterName,
    zone: 'nova',
    version: '0.1.0',
    disabled,
    disabledReason: null,
    frozen: false,
    replicationStatus: 'not-capable',
    activeBackendId: null,
    createdAtMs: T0,
    startedAtMs: T0,
    heartbeatAtMs: T0,
    modifiedAtMs: null,
  };
}

const alive = (host: string, clusterName: string, rev: string): AliveMember => ({ host, cluster: clusterName, incarnation: `${host}:${rev}`, heartbeatAtMs: T0, aliveRevision: rev });

/**
 * Cluster `a@lvm`: n1 (down), n2 (up). Cluster `b@lvm`: n3 (down), n4 (down) — nobody alive.
 * Cluster `c@lvm` is disabled: n5 (down), n6 (up).
 */
const SNAPSHOT: MembershipSnapshot = {
  clusters: [cluster('a@lvm'), cluster('b@lvm'), cluster('c@lvm', true)],
  services: [
    service(11, 'n1@lvm', 'a@lvm'),
    service(12, 'n2@lvm', 'a@lvm'),
    service(13, 'n3@lvm', 'b@lvm'),
    service(14, 'n4@lvm', 'b@lvm', true),
    service(15, 'n5@lvm', 'c@lvm'),
    service(16, 'n6@lvm', 'c@lvm'),
  ],
  alive: [alive('n2@lvm', 'a@lvm', '20'), alive('n6@lvm', 'c@lvm', '60')],
};

function op(id: string, type: 'volume' | 'snapshot', ownerHost: string | null): OpRecord {
  return {
    type,
    id,
    opId: `op-${id}`,
    kind: type === 'volume' ? 'delete_volume' : 'create_snapshot',
    status: type === 'volume' ? 'deleting' : 'creating',
    cluster: 'a@lvm',
    owner: ownerHost ? { host: ownerHost, incarnation: `${ownerHost}:1`, aliveRevision: '1' } : null,
    attempt: ownerHost ? 1 : 0,
    params: {},
    createdAt: T0,
    updatedAt: T0,
    publishedAt: T0,
    revision: '5',
  };
}

interface Answer {
  cleaning: Record<string, unknown>[];
  unavailable: Record<string, unknown>[];
  badRequest?: { code: number; message: string };
  itemNotFound?: { code: number; message: string };
}

const s = (id: number, host: string, clusterName: string | null) => ({ id, host, binary: VOLUME_BINARY, cluster_name: clusterName });

describe('POST /v3/{project_id}/workers/cleanup (Cinder 3.24) and GET /hearth/v1/orphans', () => {
  let server: ApiServer;
  let app: FastifyInstance;
  let ops: OpRecord[] = [];
  let sent: CleanupDispatch[] = [];
  let failPublishFor: string | undefined;
  let etcdAway = false;

  beforeAll(async () => {
    server = new ApiServer({ logger: silentLogger(), maxBodyBytes: 65_536 });
    server.register(
      orphanRoutes({
        membership: {
          snapshot: async () => {
            if (etcdAway) throw new BackendUnavailableError('etcd', 'etcd is unreachable');
            return SNAPSHOT;
          },
        },
        store: { listOps: async (filter) => ops.filter((o) => filter?.type === undefined || o.type === filter.type) },
        orphans: {
          sweep: async () => {
            if (etcdAway) throw new BackendUnavailableError('etcd', 'etcd is unreachable');
            return findOrphans(ops, SNAPSHOT.alive, T0 + 5_000);
          },
        },
        publisher: {
          publish: async (d) => {
            if (d.host === failPublishFor) throw new Error('broker away');
            sent.push(d);
          },
        },
        logger: silentLogger(),
      }),
    );
    app = server.app;
    await app.ready();
  });
  afterAll(() => server.close());
  beforeEach(() => {
    ops = [];
    sent = [];
    failPublishFor = undefined;
    etcdAway = false;
  });

  const cleanup = async (payload: unknown, version = '3.24') => {
    const res = await app.inject({
      method: 'POST',
      url: '/v3/admin/workers/cleanup',
      headers: { 'OpenStack-API-Version': `volume ${version}`, 'content-type': 'application/json' },
      payload: JSON.stringify(payload),
    });
    return { status: res.statusCode, body: res.json<Answer>() };
  };

  it('does not exist below 3.24 (404 itemNotFound), as in Cinder', async () => {
    const res = await cleanup({}, '3.23');
    expect(res.status).toBe(404);
    expect(res.body.itemNotFound?.code).toBe(404);
    expect(sent).toEqual([]);
  });

  it('by default cleans only services that are down; a cluster with no live member is unavailable', async () => {
    const res = await cleanup({});
    expect(res.status).toBe(202);
    // n1 (down, cluster a has n2 alive) and n5 (down, cluster c has n6) are sent; b has nobody.
    expect(res.body).toEqual({
      cleaning: [s(11, 'n1@lvm', 'a@lvm'), s(15, 'n5@lvm', 'c@lvm')],
      unavailable: [s(13, 'n3@lvm', 'b@lvm'), s(14, 'n4@lvm', 'b@lvm')],
    });
    expect(sent.map((d) => [d.cluster, d.host])).toEqual(expect.arrayContaining([['a@lvm', 'n1@lvm'], ['c@lvm', 'n5@lvm']]));
    expect(sent).toHaveLength(2);
    expect(new Set(sent.map((d) => d.requestId)).size).toBe(1);
  });

  it('an empty body (no JSON at all) is the same as {}', async () => {
    const res = await app.inject({ method: 'POST', url: '/v3/admin/workers/cleanup', headers: { 'OpenStack-API-Version': 'volume 3.24' } });
    expect(res.statusCode).toBe(202);
    expect(res.json<Answer>().cleaning).toHaveLength(2);
  });

  it('takes booleans as Cinder does ("true", "False", "1", "n", true) and is_up=true targets live services', async () => {
    expect((await cleanup({ is_up: 'true' })).body).toEqual({ cleaning: [s(12, 'n2@lvm', 'a@lvm'), s(16, 'n6@lvm', 'c@lvm')], unavailable: [] });
    expect((await cleanup({ is_up: true, cluster_name: 'a@lvm' })).body.cleaning).toEqual([s(12, 'n2@lvm', 'a@lvm')]);
    expect((await cleanup({ is_up: 'False', cluster_name: 'a' })).body.cleaning).toEqual([s(11, 'n1@lvm', 'a@lvm')]);
    expect((await cleanup({ is_up: '1', host: 'n6' })).body.cleaning).toEqual([s(16, 'n6@lvm', 'c@lvm')]);
    expect((await cleanup({ is_up: 'n', host: 'n6' })).body).toEqual({ cleaning: [], unavailable: [] });
  });

  it('filters by cluster_name and host with Cinder\'s host matching, by service_id (int or digits), binary and disabled (the cluster\'s, for a clustered service)', async () => {
    expect((await cleanup({ cluster_name: 'b' })).body.unavailable).toEqual([s(13, 'n3@lvm', 'b@lvm'), s(14, 'n4@lvm', 'b@lvm')]);
    expect((await cleanup({ cluster_name: 'b@lvm#pool' })).body).toEqual({ cleaning: [], unavailable: [] });
    expect((await cleanup({ host: 'n1@lvm' })).body.cleaning).toEqual([s(11, 'n1@lvm', 'a@lvm')]);
    expect((await cleanup({ service_id: 15 })).body.cleaning).toEqual([s(15, 'n5@lvm', 'c@lvm')]);
    expect((await cleanup({ service_id: '13' })).body.unavailable).toEqual([s(13, 'n3@lvm', 'b@lvm')]);
    expect((await cleanup({ binary: 'cinder-volume', service_id: 11 })).body.cleaning).toHaveLength(1);
    // n4's own flag is disabled but its cluster b is enabled: Cinder reads the cluster's.
    expect((await cleanup({ disabled: true })).body).toEqual({ cleaning: [s(15, 'n5@lvm', 'c@lvm')], unavailable: [] });
    expect((await cleanup({ disabled: 'false' })).body.unavailable).toEqual([s(13, 'n3@lvm', 'b@lvm'), s(14, 'n4@lvm', 'b@lvm')]);
  });

  it('narrows a resource_id with no location key to the service owning its op, and sends the resource along', async () => {
    ops = [op(VOL_ID, 'volume', 'n1@lvm'), op(SNAP_ID, 'snapshot', null)];
    const res = await cleanup({ resource_id: VOL_ID });
    expect(res.body).toEqual({ cleaning: [s(11, 'n1@lvm', 'a@lvm')], unavailable: [] });
    expect(sent).toEqual([expect.objectContaining({ cluster: 'a@lvm', host: 'n1@lvm', resourceId: VOL_ID, resourceType: 'volume' })]);
  });

  it('refuses a resource_id that has no pending work, or several, as Cinder (400)', async () => {
    ops = [op(SNAP_ID, 'snapshot', null)];
    const none = await cleanup({ resource_id: VOL_ID });
    expect(none.status).toBe(400);
    expect(none.body.badRequest?.message).toBe(`Invalid input received: There is no resource with UUID ${VOL_ID} pending cleanup.`);
    // A queued op (nobody has it) is not pending cleanup.
    expect((await cleanup({ resource_id: SNAP_ID })).status).toBe(400);
    ops = [op(VOL_ID, 'volume', 'n1@lvm'), op(VOL_ID, 'snapshot', 'n3@lvm')];
    const many = await cleanup({ resource_id: VOL_ID });
    expect(many.status).toBe(400);
    expect(many.body.badRequest?.message).toContain('There are multiple resources with UUID');
    // resource_type picks one of them; Cinder title-cases it first.
    expect((await cleanup({ resource_id: VOL_ID, resource_type: 'snapshot' })).body.unavailable).toEqual([s(13, 'n3@lvm', 'b@lvm')]);
    expect(sent).toEqual([]);
  });

  it('does not look the resource up when a location key is given (even null)', async () => {
    ops = [];
    const res = await cleanup({ resource_id: VOL_ID, host: null, resource_type: 'Volume' });
    expect(res.status).toBe(202);
    expect(sent.every((d) => d.resourceId === VOL_ID && d.resourceType === 'volume')).toBe(true);
    expect(sent).toHaveLength(2);
  });

  it.each([
    [{ foo: 1 }, "Additional properties are not allowed ('foo' was unexpected)"],
    [{ is_up: 'maybe' }, 'Invalid input for field/attribute is_up.'],
    [{ disabled: 2 }, 'Invalid input for field/attribute disabled.'],
    [{ service_id: 'abc' }, 'Invalid input for field/attribute service_id.'],
    [{ service_id: 1.5 }, 'Invalid input for field/attribute service_id.'],
    [{ resource_id: 'not-a-uuid' }, 'Invalid input for field/attribute resource_id.'],
    [{ resource_type: 'backup' }, 'Invalid input received: Resource type Backup not valid, must be Volume or Snapshot'],
    [{ binary: 'cinder-scheduler' }, 'Invalid input for field/attribute binary.'],
    [{ binary: 'cinder-backup' }, 'Invalid input for field/attribute binary.'],
    [{ host: 'bad host!' }, 'Invalid input for field/attribute host.'],
    [{ cluster_name: '' }, 'Invalid input for field/attribute cluster_name.'],
    [{ cluster_name: 7 }, 'Invalid input for field/attribute cluster_name.'],
    [[1, 2], 'is not of type \'object\''],
  ])('refuses %j with 400 and Cinder\'s fault body, sending nothing', async (payload, message) => {
    const res = await cleanup(payload);
    expect(res.status).toBe(400);
    expect(res.body.badRequest).toEqual({ code: 400, message: expect.stringContaining(message) as string });
    expect(sent).toEqual([]);
  });

  it('reports a service whose request the broker did not confirm as unavailable', async () => {
    failPublishFor = 'n5@lvm';
    expect((await cleanup({})).body).toEqual({
      cleaning: [s(11, 'n1@lvm', 'a@lvm')],
      unavailable: [s(13, 'n3@lvm', 'b@lvm'), s(14, 'n4@lvm', 'b@lvm'), s(15, 'n5@lvm', 'c@lvm')],
    });
  });

  it('answers 503 (Cinder\'s serviceUnavailable) and sends nothing while etcd cannot be reached', async () => {
    etcdAway = true;
    const res = await cleanup({});
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ serviceUnavailable: { code: 503 } });
    const view = await app.inject({ method: 'GET', url: '/hearth/v1/orphans' });
    expect(view.statusCode).toBe(503);
    expect(sent).toEqual([]);
  });

  it('GET /hearth/v1/orphans lists orphans with type, id, op kind, status, owner host and incarnation, since; filters by cluster and host', async () => {
    // n1 is dead; n2's op belongs to its live incarnation; the third is queued.
    ops = [op(VOL_ID, 'volume', 'n1@lvm'), { ...op(SNAP_ID, 'snapshot', null), owner: { host: 'n2@lvm', incarnation: 'n2@lvm:20', aliveRevision: '20' } }, op('q', 'volume', null)];
    const res = await app.inject({ method: 'GET', url: '/hearth/v1/orphans' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['openstack-api-version']).toBeUndefined();
    expect(res.json()).toEqual({
      orphans: [
        {
          type: 'volume',
          id: VOL_ID,
          op_id: `op-${VOL_ID}`,
          kind: 'delete_volume',
          status: 'deleting',
          cluster: 'a@lvm',
          owner_host: 'n1@lvm',
          owner_incarnation: 'n1@lvm:1',
          reason: 'owner-gone',
          attempt: 1,
          since: '2024-03-03T04:05:06.789000',
          age_seconds: 5,
        },
      ],
    });
    const count = async (qs: string) => ((await app.inject({ method: 'GET', url: `/hearth/v1/orphans?${qs}` })).json<{ orphans: unknown[] }>()).orphans.length;
    expect(await count('cluster=a')).toBe(1);
    expect(await count('cluster=b@lvm')).toBe(0);
    expect(await count('host=n1')).toBe(1);
    expect(await count('host=n2@lvm')).toBe(0);
  });
});
