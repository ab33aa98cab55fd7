// The skew policy at the API: an operation or a microversion that needs a newer message version
// than every live worker reads is refused (nothing recorded) or not advertised.
/* eslint-disable @typescript-eslint/no-unsafe-member-access */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_VERSION, type Microversion, MIN_VERSION, servedMaxVersion } from '../../../src/api/microversion.js';
import { ApiServer } from '../../../src/api/server.js';
import { ManualClock } from '../../../src/lifecycle/clock.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import type { OpKind } from '../../../src/state/state-machine.js';
import { SQLITE_STATE_FILE, SqliteStateStore } from '../../../src/state/sqlite-state-store.js';
import { ADMIT_ALL } from '../../../src/volumes/cluster-admission.js';
import type { JobPublisher } from '../../../src/volumes/job-publisher.js';
import type { OperationGate } from '../../../src/volumes/operation-gate.js';
import { volumeRoutes } from '../../../src/volumes/volume-routes.js';
import { VolumeService } from '../../../src/volumes/volume-service.js';

describe('servedMaxVersion', () => {
  it('serves a microversion only once the workers read the message version it needs', () => {
    const table = [
      { upTo: { major: 3, minor: 70 }, messages: 1 },
      { upTo: { major: 3, minor: 71 }, messages: 2 },
    ];
    expect(servedMaxVersion(1, table)).toEqual({ major: 3, minor: 70 });
    expect(servedMaxVersion(2, table)).toEqual({ major: 3, minor: 71 });
    expect(servedMaxVersion(0, table)).toEqual(MIN_VERSION);
    expect(servedMaxVersion(1)).toEqual(MAX_VERSION);
  });
});

describe('the API during a rolling upgrade', () => {
  let dir: string;
  let store: SqliteStateStore;
  let api: ApiServer;
  const published: unknown[] = [];
  let refused: ReadonlySet<OpKind>;
  let max: Microversion;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-skew-'));
    const clock = new ManualClock(Date.UTC(2026, 0, 2));
    store = SqliteStateStore.open({ path: join(dir, SQLITE_STATE_FILE), clock, metrics: createStateMetrics(new Registry()) });
    refused = new Set();
    max = MAX_VERSION;
    const gate: OperationGate = { refuses: (cluster, kind) => (refused.has(kind) ? `the live workers of ${cluster} read messages up to version 1, and ${kind} needs version 2` : undefined) };
    const publisher: JobPublisher = { publish: async (op) => (published.push(op), 'confirmed') };
    const service = new VolumeService({ store, publisher, stamps: { add: () => undefined }, admission: ADMIT_ALL, gate, clock, logger: silentLogger(), cluster: 'ceph@rbd', availabilityZone: 'nova' });
    api = new ApiServer({ logger: silentLogger(), maxBodyBytes: 65_536, maxVersion: () => max });
    api.register(volumeRoutes(service));
  });
  afterEach(async () => {
    await api.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses an operation a live worker cannot run yet with 400 UnavailableDuringUpgrade, recording nothing', async () => {
    refused = new Set(['create_volume']);
    const res = await api.app.inject({ method: 'POST', url: '/v3/admin/volumes', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ volume: { size: 1 } }) });
    expect(res.statusCode).toBe(400);
    expect(res.json<{ badRequest: { message: string } }>().badRequest.message).toBe(
      'Cannot create volume during upgrade: the live workers of ceph@rbd read messages up to version 1, and create_volume needs version 2.',
    );
    expect((await store.list('volume', { withCount: true })).total).toBe(0);
    expect(published).toEqual([]);
    // Once every worker reads it, the same request is accepted.
    refused = new Set();
    const ok = await api.app.inject({ method: 'POST', url: '/v3/admin/volumes', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ volume: { size: 1 } }) });
    expect(ok.statusCode).toBe(202);
  });

  it('advertises and accepts microversions only up to what the live workers allow', async () => {
    max = { major: 3, minor: 60 };
    const doc = await api.app.inject({ method: 'GET', url: '/v3/' });
    expect(doc.json().versions[0].version).toBe('3.60');
    const above = await api.app.inject({ method: 'GET', url: '/v3/admin/volumes', headers: { 'openstack-api-version': 'volume 3.61' } });
    expect(above.statusCode).toBe(406);
    const latest = await api.app.inject({ method: 'GET', url: '/v3/admin/volumes', headers: { 'openstack-api-version': 'volume latest' } });
    expect(latest.headers['openstack-api-version']).toBe('volume 3.60');
    max = MAX_VERSION;
    expect((await api.app.inject({ method: 'GET', url: '/v3/' })).json().versions[0].version).toBe('3.70');
  });
});
