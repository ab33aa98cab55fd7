/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-explicit-any */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiServer } from '../../../src/api/server.js';
import { opsViewRoutes } from '../../../src/api/ops-view.js';
import { oldestMember } from '../../../src/census/exporter.js';
import { CensusMetrics } from '../../../src/census/metrics.js';
import { SqliteCensus } from '../../../src/census/sqlite-census.js';
import { ManualClock } from '../../../src/lifecycle/clock.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import { SQLITE_STATE_FILE, SqliteStateStore } from '../../../src/state/sqlite-state-store.js';
import { newVolume } from '../../contract/state-store.contract.js';
import { describeCensus } from '../../contract/census.contract.js';

describeCensus('sqlite', async (clock) => {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-census-contract-'));
  const path = join(dir, SQLITE_STATE_FILE);
  return {
    store: SqliteStateStore.open({ path, clock, metrics: createStateMetrics(new Registry()) }),
    openCensus: () => SqliteCensus.open(path),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('census on SQLite: counts kept by the store\'s own writes', () => {
  let dir: string;
  let store: SqliteStateStore;
  let clock: ManualClock;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-census-'));
    clock = new ManualClock(1_000_000);
    store = SqliteStateStore.open({ path: join(dir, SQLITE_STATE_FILE), clock, metrics: createStateMetrics(new Registry()) });
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const counts = async (census: SqliteCensus): Promise<Record<string, number>> =>
    Object.fromEntries((await census.snapshot()).resources.filter((r) => r.count > 0).map((r) => [`${r.type} ${r.status}`, r.count]));

  it('counts what was there when it was first opened, then follows every create, transition and removal', async () => {
    const first = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
    const census = SqliteCensus.open(join(dir, SQLITE_STATE_FILE));
    try {
      expect(await counts(census)).toEqual({ 'volume creating': 1 });
      await clock.advance(5_000);
      const second = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
      if (!first.ok || !second.ok) throw new Error('create failed');
      await store.transition({ type: 'volume', id: first.record.id }, { expect: {}, set: { status: 'available' }, op: 'remove', by: 'worker' });
      expect(await counts(census)).toEqual({ 'volume creating': 1, 'volume available': 1 });
      const ops = (await census.snapshot()).operations;
      expect(ops).toEqual([{ cluster: first.record.cluster, kind: 'create_volume', count: 1, oldestCreatedAtMs: 1_005_000 }]);
      await store.transition({ type: 'volume', id: first.record.id }, { expect: {}, set: { status: 'deleting' }, op: { create: { kind: 'delete_volume' } }, by: 'api' });
      await store.remove({ type: 'volume', id: first.record.id }, { expect: {}, by: 'worker' });
      expect(await counts(census)).toEqual({ 'volume creating': 1 });
    } finally {
      await census.close();
    }
    // Opened again: the counts were kept, not recounted.
    const again = SqliteCensus.open(join(dir, SQLITE_STATE_FILE));
    expect(await counts(again)).toEqual({ 'volume creating': 1 });
    await again.close();
  });

  it('exports hearth_resources and the oldest operation only while it follows a census', async () => {
    await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
    const registry = new Registry();
    const metrics = new CensusMetrics(registry, 3600, () => undefined);
    const text = async () => (await registry.metrics()).split('\n').filter((l) => !l.startsWith('#'));
    expect((await text()).filter((l) => l.startsWith('hearth_resources'))).toEqual([]);
    const census = SqliteCensus.open(join(dir, SQLITE_STATE_FILE));
    metrics.follow(census);
    const lines = await text();
    expect(lines).toContain('hearth_resources{type="volume",status="creating"} 1');
    expect(lines).toContain('hearth_operation_oldest_created_timestamp_seconds{cluster="ceph@rbd",operation="create_volume"} 1000');
    expect(lines).toContain('hearth_operations_unfinished{cluster="ceph@rbd",operation="create_volume"} 1');
    expect(lines).toContain('hearth_operation_stuck_threshold_seconds 3600');
    expect(lines).toContain('hearth_census_exporter 1');
    metrics.follow(undefined);
    expect((await text()).filter((l) => l.startsWith('hearth_resources'))).toEqual([]);
    await census.close();
  });

  it('GET /hearth/v1/ops lists unfinished operations oldest first, with whether the owner is alive', async () => {
    const a = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
    await clock.advance(60_000);
    const b = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
    if (!a.ok || !b.ok || !a.op) throw new Error('create failed');
    const owner = { host: 'n1@rbd', incarnation: 'n1@rbd:1', aliveRevision: '3' };
    await store.updateOp({ type: 'volume', id: a.record.id }, { expect: { opId: a.op.opId }, set: { owner, attempt: 1 } });
    const api = new ApiServer({ logger: silentLogger(), maxBodyBytes: 65_536 });
    const alive = [{ host: 'n1@rbd', cluster: 'ceph@rbd', incarnation: 'n1@rbd:1', heartbeatAtMs: 0, aliveRevision: '3' }];
    api.register(opsViewRoutes({ store, membership: { snapshot: async () => ({ clusters: [], services: [], alive }) }, now: () => clock.now() }));
    try {
      const res = await api.app.inject({ method: 'GET', url: '/hearth/v1/ops' });
      const ops = res.json<{ ops: any[] }>().ops;
      expect(ops.map((o) => [o.id, o.owner_state, o.age_seconds, o.owner_host])).toEqual([
        [a.record.id, 'alive', 60, 'n1@rbd'],
        [b.record.id, 'queued', 0, null],
      ]);
      const queued = await api.app.inject({ method: 'GET', url: '/hearth/v1/ops?owner_state=queued' });
      expect(queued.json<{ ops: any[] }>().ops.map((o) => o.id)).toEqual([b.record.id]);
      expect((await api.app.inject({ method: 'GET', url: '/hearth/v1/ops?colour=red' })).statusCode).toBe(400);
    } finally {
      await api.close();
    }
  });
});

describe('the census exporter', () => {
  it('is the oldest live member: the lowest alive revision', () => {
    expect(oldestMember([])).toBeUndefined();
    expect(oldestMember([{ host: 'b', aliveRevision: '12' }, { host: 'a', aliveRevision: '9' }, { host: 'c', aliveRevision: '100' }])).toBe('a');
    expect(oldestMember([{ host: 'b', aliveRevision: '0' }, { host: 'a', aliveRevision: '0' }])).toBe('a');
  });
});
