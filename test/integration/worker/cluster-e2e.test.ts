// End to end with real etcd and RabbitMQ: an API-only `hearth serve` and three worker processes
// in one cluster, the fake driver writing one shared journal. 300 operations through the HTTP
// API; then duplicates, poison, a job that keeps failing, and an op whose API died before it
// published.
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'amqplib';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkJournal, parseJournal } from '../../../src/drivers/fake-journal.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { EtcdMembership } from '../../../src/membership/etcd-membership.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { AmqpJobBus } from '../../../src/routing/amqp-job-bus.js';
import type { JobInput } from '../../../src/routing/job-bus.js';
import { clusterQueueName } from '../../../src/routing/topology.js';
import { EtcdSession } from '../../../src/session/etcd-session.js';
import { EtcdStateStore } from '../../../src/state/etcd-state-store.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import type { OpRecord } from '../../../src/state/records.js';
import { OpClaimer } from '../../../src/worker/op-claim.js';
import { amqpSettings } from '../../support/amqp-bus.js';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { inLanes, VolumeClient } from '../../support/volume-client.js';
import { newVolume } from '../../contract/state-store.contract.js';

const CLUSTER = 'e2e@fake';
const VOLUMES = 60; // × 5 operations = 300
const LANES = 20;

function jobOf(op: OpRecord): JobInput {
  return { type: op.type, id: op.id, opId: op.opId, kind: op.kind, cluster: op.cluster, attempt: op.attempt };
}

describe('a cluster of an API and three workers on etcd and RabbitMQ', () => {
  let etcd: EtcdTestContext;
  let amqp: AmqpTestContext;
  let journal: string;
  let api: HearthProcess;
  const workers: HearthProcess[] = [];
  let client: VolumeClient;
  let store: EtcdStateStore;
  let bus: AmqpJobBus;

  beforeAll(async () => {
    etcd = useEtcd();
    amqp = await useAmqp();
    journal = join(await mkdtemp(join(tmpdir(), 'hearth-e2e-')), 'journal.jsonl');
    const base = {
      HEARTH_ETCD_ENDPOINTS: etcd.endpoints.join(','),
      HEARTH_ETCD_PREFIX: etcd.prefix,
      HEARTH_AMQP_URL: amqp.url,
      HEARTH_AMQP_PREFIX: amqp.prefix,
      HEARTH_AMQP_MAX_DELIVERIES: '3',
      HEARTH_CLUSTER: 'e2e',
      HEARTH_BACKEND: 'fake',
      HEARTH_DRIVER_NAME: 'fake',
      HEARTH_DRIVER_FAKE_JOURNAL: journal,
      HEARTH_DRIVER_FAKE_LATENCY_MS: '20',
      HEARTH_SWEEP_INTERVAL_MS: '1000',
    };
    const started = await Promise.all([
      startHearth({ name: 'e2e-api', env: { ...base, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' } }),
      ...[1, 2, 3].map((n) => startHearth({ name: `e2e-worker-${n}`, env: { ...base, HEARTH_HOST: `w${n}`, HEARTH_ROLES: 'worker' } })),
    ]);
    api = started[0];
    workers.push(...started.slice(1));
    client = new VolumeClient(api.apiUrl);
    store = new EtcdStateStore({ client: etcd.client, keys: new KeyLayout(etcd.prefix), clock: systemClock, metrics: createStateMetrics(new Registry()), logger: silentLogger() });
    bus = new AmqpJobBus(amqpSettings(amqp.url, amqp.prefix), { identity: { cluster: CLUSTER, host: 'tester@fake' }, logger: silentLogger(), registry: new Registry() });
    await bus.start();
    await bus.waitUntilReady({ timeoutMs: 15_000 });
  });

  afterAll(async () => {
    await bus?.close();
    await Promise.all([api, ...workers].map((p) => p?.stop()));
    await etcd?.close();
    await amqp?.close();
  });

  const workerLogs = (): Record<string, unknown>[] => workers.flatMap((w) => w.logs());

  it('300 mixed operations through the HTTP API all reach their final status, each run once on some member, spread over the three', async () => {
    const started = performance.now();
    const lives = await inLanes(VOLUMES, LANES, () => client.lifecycle({ intervalMs: 50, timeoutMs: 60_000 }));
    const seconds = (performance.now() - started) / 1_000;
    const latencies = lives.flatMap((l) => l.latenciesMs).sort((a, b) => a - b);
    expect(latencies).toHaveLength(300);

    const text = await readFile(journal, 'utf8');
    const { entries, malformed } = parseJournal(text);
    const report = checkJournal(entries, malformed.length);
    expect(report.malformed).toBe(0);
    expect(report.unfinished).toEqual([]);
    expect(report.overlaps).toEqual([]);
    expect(report.duplicates).toEqual([]);
    // Every operation ran exactly once, successfully, on some member.
    expect(report.calls).toHaveLength(300);
    expect(new Set(report.calls.map((c) => c.opId)).size).toBe(300);
    expect(report.calls.every((c) => c.ok === true)).toBe(true);
    const byCall: Record<string, number> = {};
    for (const c of report.calls) byCall[c.call] = (byCall[c.call] ?? 0) + 1;
    expect(byCall).toEqual({ createVolume: 60, extendVolume: 60, createSnapshot: 60, deleteSnapshot: 60, deleteVolume: 60 });
    for (const life of lives) {
      expect(report.calls.filter((c) => c.resource === `volume:${life.volumeId}`).map((c) => c.call)).toEqual(['createVolume', 'extendVolume', 'deleteVolume']);
      expect(report.calls.filter((c) => c.resource === `snapshot:${life.snapshotId}`).map((c) => c.call)).toEqual(['createSnapshot', 'deleteSnapshot']);
    }
    // Spread: each of the three did a fair share.
    const members = Object.keys(report.byMember).sort();
    expect(members).toEqual(['w1@fake', 'w2@fake', 'w3@fake']);
    for (const m of members) expect(report.byMember[m]!).toBeGreaterThanOrEqual(45);
    // Nothing left behind.
    expect(await etcd.client.getAll().prefix(`${etcd.prefix}/ops/`).count()).toBe(0);
    expect(await etcd.client.getAll().prefix(`${etcd.prefix}/resources/`).count()).toBe(0);
    const p = (q: number) => latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)]!.toFixed(0);
    console.log(
      `[e2e] 300 operations (60 volumes × create, extend, snapshot create, snapshot delete, delete; ${LANES} at a time) in ${seconds.toFixed(1)} s ` +
        `(${(300 / seconds).toFixed(0)} ops/s); per member ${JSON.stringify(report.byMember)}; request-to-outcome p50 ${p(0.5)} ms, p99 ${p(0.99)} ms`,
    );
  });

  it('an op recorded but never published (the API died in between) is found by the sweeper and executed', async () => {
    const id = randomUUID();
    const created = await store.create('volume', { record: newVolume({ id, name: null, cluster: CLUSTER }), op: { kind: 'create_volume', params: { size: 1 } } });
    expect(created.ok).toBe(true);
    const shown = await client.until('volume', id, (v) => v?.status === 'available', { timeoutMs: 30_000 });
    expect(shown).toMatchObject({ status: 'available' });
    expect(workerLogs().some((l) => l.msg === 'republished queued ops')).toBe(true);
    await client.deleteVolume(id);
    await client.until('volume', id, (v) => v === undefined);
  });

  it('a duplicate of a job whose op a live worker owns is dropped; once that owner is dead, the job is claimed and run', async () => {
    // The test itself is the live owner: a member of the cluster that claims the op and sits on it.
    const session = await EtcdSession.open({ client: etcd.client, host: 'ghost@fake', leaseTtlMs: 3_000, leaseMarginMs: 500, callTimeoutMs: 2_000 });
    const membership = new EtcdMembership({ client: etcd.client, keys: new KeyLayout(etcd.prefix), clock: systemClock, logger: silentLogger() });
    const ghost = await membership.join({ identity: { cluster: CLUSTER, host: 'ghost@fake', zone: 'nova' }, binary: 'cinder-volume', version: 'test', session });
    const id = randomUUID();
    const created = await store.create('volume', { record: newVolume({ id, name: null, cluster: CLUSTER }), op: { kind: 'create_volume', params: { size: 1 } } });
    if (!created.ok || !created.op) throw new Error('create failed');
    const claimed = await new OpClaimer({ store, membership }).claimOp(created.op, ghost);
    expect(claimed.ok).toBe(true);
    await bus.publish(jobOf(created.op));
    await bus.publish(jobOf(created.op));
    const drops = () => workerLogs().filter((l) => l.opId === created.op!.opId && l.msg === 'job dropped: the op is owned by a live worker');
    await expect.poll(() => drops().length, { timeout: 15_000 }).toBe(2);
    expect(await store.getOp({ type: 'volume', id })).toMatchObject({ owner: ghost.owner, attempt: 1 });
    expect((await store.get({ type: 'volume', id }))?.status).toBe('creating');

    // The owner dies (its lease revoked): the same job is now an orphan's, and a worker takes it.
    await session.close();
    await bus.publish(jobOf(created.op));
    await client.until('volume', id, (v) => v?.status === 'available', { timeoutMs: 30_000 });
    expect(workerLogs().some((l) => l.opId === created.op!.opId && l.msg === 'took over the op of a dead incarnation')).toBe(true);
    await client.deleteVolume(id);
    await client.until('volume', id, (v) => v === undefined);
  });

  it('a malformed message goes to the dead-letter queue; the workers keep running and working', async () => {
    const conn = await connect(amqp.url);
    try {
      const ch = await conn.createConfirmChannel();
      for (const content of ['this is not json', JSON.stringify({ v: 1, type: 'volume', id: 'x' })]) {
        await new Promise<void>((resolve, reject) =>
          ch.sendToQueue(clusterQueueName(amqp.prefix, CLUSTER), Buffer.from(content), { persistent: true }, (err) => (err ? reject(err as Error) : resolve())),
        );
      }
    } finally {
      await conn.close();
    }
    await expect.poll(async () => (await bus.listDeadLetters()).filter((d) => d.reason === 'malformed').length, { timeout: 15_000 }).toBe(2);
    for (const w of workers) {
      expect(w.process.alive).toBe(true);
      expect((await fetch(`${w.opsUrl}/readyz`)).status).toBe(200);
    }
    const life = await client.lifecycle();
    expect(life.latenciesMs).toHaveLength(5);
  });

  it('a job that keeps failing is dead-lettered after amqp.maxDeliveries (3)', async () => {
    // An op record nobody can read: every delivery fails, none can be settled.
    const id = randomUUID();
    const key = new KeyLayout(etcd.prefix).op('volume', id);
    await etcd.client.put(key).value('{ corrupt');
    try {
      await bus.publish({ type: 'volume', id, opId: 'corrupt-op', kind: 'create_volume', cluster: CLUSTER, attempt: 0 });
      await expect
        .poll(async () => (await bus.listDeadLetters()).filter((d) => d.reason === 'delivery-limit' && d.body.includes('corrupt-op')), { timeout: 30_000, interval: 250 })
        .toEqual([expect.objectContaining({ reason: 'delivery-limit', deliveries: 4, detail: 'delivered 4 times; the limit is 3' })]);
    } finally {
      await etcd.client.delete().key(key);
    }
    for (const w of workers) expect(w.process.alive).toBe(true);
    expect(workerLogs().filter((l) => l.opId === 'corrupt-op' && l.msg === 'job handler threw; retrying later').length).toBeGreaterThanOrEqual(3);
  });

  it('every worker reports its operations in /metrics', async () => {
    let total = 0;
    for (const w of workers) {
      const metrics = await (await fetch(`${w.opsUrl}/metrics`)).text();
      const created = Number(/hearth_operations_total\{operation="create_volume",result="success"\} (\d+)/.exec(metrics)?.[1] ?? 0);
      expect(created).toBeGreaterThan(0);
      total += created;
      expect(metrics).toMatch(/hearth_operation_duration_seconds_count\{operation="extend_volume"\} [1-9]/);
      expect(metrics).toContain('hearth_operations_in_progress{operation="create_volume"} 0');
    }
    expect(total).toBe(VOLUMES + 3); // the lifecycle volumes, the swept one, the ghost's, one after the poison
  });
});
