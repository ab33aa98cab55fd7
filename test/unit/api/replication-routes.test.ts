import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clusterRoutes } from '../../../src/api/clusters.js';
import { replicationRoutes } from '../../../src/api/replication.js';
import { ApiServer } from '../../../src/api/server.js';
import { VOLUME_BINARY } from '../../../src/identity.js';
import { ManualClock } from '../../../src/lifecycle/clock.js';
import { LocalMembership } from '../../../src/membership/local-membership.js';
import { LocalRecordFile } from '../../../src/membership/local-store.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { TestSession } from '../../support/test-session.js';

const T0 = Date.UTC(2026, 2, 3, 4, 5, 6, 789);
const CLUSTER = 'mycluster@lvm';
const P = '/v3/admin';

describe('os-services failover, failover_host, freeze and thaw (Cinder paths, bodies, faults)', () => {
  let server: ApiServer;
  let app: FastifyInstance;
  let membership: LocalMembership;
  let refusal: string | undefined;
  const clock = new ManualClock(T0);

  async function start(replication?: readonly string[]): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-repl-api-'));
    membership = new LocalMembership(await LocalRecordFile.open(join(dir, 'membership.json')), clock);
    await membership.join({
      identity: { cluster: CLUSTER, host: 'node1@lvm', zone: 'nova' },
      binary: VOLUME_BINARY,
      version: '0.2.0',
      session: TestSession.local('node1@lvm'),
      ...(replication ? { replication: { targetIds: replication } } : {}),
    });
    server = new ApiServer({ logger: silentLogger(), maxBodyBytes: 65_536 });
    server.register(clusterRoutes(membership, VOLUME_BINARY));
    server.register(replicationRoutes({ membership, refuses: () => refusal, now: () => clock.now(), volumeBinary: VOLUME_BINARY, newOpId: () => 'op-1' }));
    app = server.app;
    await app.ready();
  }

  beforeEach(() => {
    refusal = undefined;
  });
  afterEach(async () => {
    await server.close();
    await membership.close();
  });

  const put = (action: string, body: unknown, version = '3.26', method: 'PUT' | 'POST' = 'PUT') =>
    app.inject({ method, url: `${P}/os-services/${action}`, headers: { 'content-type': 'application/json', 'OpenStack-API-Version': `volume ${version}` }, payload: JSON.stringify(body) });
  const record = async () => (await membership.snapshot()).clusters[0]!;
  const badRequest = (message: string) => ({ badRequest: { code: 400, message } });

  it('freeze and thaw by host act on the whole cluster; twice is refused naming the condition; cluster-show and os-services show it at 3.26', async () => {
    await start();
    const res = await put('freeze', { host: 'node1@lvm' }, '3.0');
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('');
    expect(await record()).toMatchObject({ frozen: true });
    const again = await put('freeze', { cluster: CLUSTER });
    expect(again.statusCode).toBe(400);
    expect(again.json()).toEqual(badRequest(`Invalid input received: frozen in ${CLUSTER} must be False to failover.`));
    const show = await app.inject({ method: 'GET', url: `${P}/clusters/${CLUSTER}`, headers: { 'OpenStack-API-Version': 'volume 3.26' } });
    expect(show.json()).toMatchObject({ cluster: { frozen: true, replication_status: 'not-capable', active_backend_id: null } });
    const services = await app.inject({ method: 'GET', url: `${P}/os-services`, headers: { 'OpenStack-API-Version': 'volume 3.26' } });
    expect(services.json()).toMatchObject({ services: [{ host: 'node1@lvm', frozen: true, replication_status: 'not-capable' }] });
    expect((await put('thaw', { cluster: CLUSTER })).statusCode).toBe(200);
    expect(await record()).toMatchObject({ frozen: false });
    expect((await put('thaw', { host: 'node1@lvm' })).json()).toEqual(badRequest(`Invalid input received: frozen in ${CLUSTER} must be True to failover.`));
  });

  it('refuses bad input with Cinder\'s faults and writes nothing', async () => {
    await start(['dr1']);
    const before = await record();
    expect((await put('freeze', { host: 'node1@lvm', cluster: CLUSTER })).json()).toEqual(badRequest('Invalid input received: One and only one of cluster and host must be set.'));
    expect((await put('freeze', {})).json()).toEqual(badRequest('Invalid input received: One and only one of cluster and host must be set.'));
    expect((await put('freeze', { cluster: CLUSTER }, '3.25')).json()).toEqual(badRequest('Invalid input received: Host field is missing.'));
    expect((await put('freeze', { host: 'nope@lvm' })).json()).toEqual(badRequest('No service found with host=nope@lvm'));
    expect((await put('failover', { cluster: 'nope@lvm', backend_id: 'dr1' })).json()).toEqual(badRequest('No service found with cluster=nope@lvm'));
    expect((await put('failover', { cluster: CLUSTER, backend_id: 'dr9' })).json()).toEqual(
      badRequest(`Invalid Replication Target: dr9 is not a replication target of ${CLUSTER} (its targets: dr1; "default" fails back).`),
    );
    expect((await put('freeze', { host: 'node1@lvm', backend_id: 'x' })).statusCode).toBe(400);
    expect((await put('failover', { cluster: CLUSTER }, '3.25')).statusCode).toBe(404);
    refusal = 'node2@lvm (release 0.1.0, messages up to 1) cannot keep it';
    const gated = await put('failover_host', { host: 'node1@lvm', backend_id: 'dr1' });
    expect(gated.statusCode).toBe(409);
    expect(gated.json()).toEqual({ conflictingRequest: { code: 409, message: 'Cannot perform failover during system upgrade: node2@lvm (release 0.1.0, messages up to 1) cannot keep it.' } });
    expect(await record()).toEqual(before);
  });

  it('a failover of a cluster whose driver does not replicate is refused on its replication_status', async () => {
    await start();
    const res = await put('failover_host', { host: 'node1@lvm', backend_id: 'dr1' }, '3.0');
    expect(res.json()).toEqual(badRequest(`Invalid input received: replication_status in ${CLUSTER} must be ['enabled', 'failed-over'] and must be up to failover.`));
    expect(await record()).toMatchObject({ replicationStatus: 'not-capable', failover: null, frozen: false });
  });

  it('a failover by cluster (POST or PUT) records the failover in flight, frozen; a second one is refused while it runs', async () => {
    await start(['dr1']);
    const res = await put('failover', { cluster: CLUSTER, backend_id: 'dr1' }, '3.26', 'POST');
    expect(res.statusCode).toBe(202);
    expect(await record()).toMatchObject({ replicationStatus: 'failing-over', frozen: true, failover: { opId: 'op-1', backendId: 'dr1', epoch: 1, owner: null, frozeIt: true, startedAtMs: T0 } });
    const again = await put('failover_host', { host: 'node1@lvm', backend_id: 'dr1' });
    expect(again.json()).toEqual(badRequest(`Invalid input received: replication_status in ${CLUSTER} must be ['enabled', 'failed-over'] and must be up to failover.`));
    const thaw = await put('thaw', { cluster: CLUSTER });
    expect(thaw.json()).toEqual(badRequest(`Invalid input received: a failover of ${CLUSTER} (op op-1) is in progress; thaw it after the failover finished.`));
  });
});
