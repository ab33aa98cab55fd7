// Failover at the default lease TTL: real `hearth serve` processes (an API-only member, a
// rescuer worker with an instant fake driver, and one victim worker per round whose fake driver
// takes ten minutes per call) on the bench's etcd and RabbitMQ. Each round catches a volume
// create mid-call on the victim, kill -9s it and measures, from the kill:
// - detect: the op shows in `GET /hearth/v1/orphans` (a fresh sweep: the victim's alive key is
//   gone), and separately in the rescuer's `hearth_orphaned_operations` gauge (its watch-driven
//   detector);
// - takeover: an operator's `workers/cleanup` for that resource, sent the moment the orphan
//   shows, has been carried out by the rescuer — the volume reached its cleanup status (`error`,
//   Cinder's action for an orphaned create) and its op record is gone.
// The baseline is the lease TTL itself: detection cannot be faster than etcd expiring the lease.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { configSpec } from '../../../src/config/schema.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { ClusterClient, started, startWorker } from '../../support/orphans-cluster.js';
import { waitFor } from '../../support/wait.js';
import { type BenchContext, type BenchResult, type BenchSuite, percentile, relative, standalone } from '../types.js';

const CLUSTER = 'fo';
const CLUSTER_ID = `${CLUSTER}@be`;
const SLOW_MS = '600000';
const POLL_MS = 25;
// The default, not a bench setting: what a deployment that sets nothing gets.
const LEASE_TTL_MS = configSpec.leaseTtlMs.default as number;

/** Times of one round, in seconds from the kill. */
interface Round {
  readonly detectS: number;
  readonly detectMetricS: number;
  readonly takeoverS: number;
}

/** Creates volumes until one lands on `victim` (RabbitMQ hands jobs out round robin); returns its id. */
async function catchOnVictim(client: ClusterClient, journal: string, victim: string): Promise<string> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const id = await client.createVolume();
    const call = await started(journal, 'createVolume', `volume:${id}`);
    if (call.member === `${victim}@be`) return id;
    await client.waitStatus('volume', id, 'available');
  }
  throw new Error(`no create landed on ${victim} in 20 attempts`);
}

/** Resolves with seconds since `from` once `probe` holds; polls every POLL_MS, bounded. */
async function secondsUntil(from: number, probe: () => Promise<boolean>, what: string): Promise<number> {
  await waitFor(async () => (await probe()) || undefined, { timeoutMs: 3 * LEASE_TTL_MS + 30_000, intervalMs: POLL_MS, what });
  return (performance.now() - from) / 1_000;
}

async function round(ctx: BenchContext, env: Record<string, string>, api: ClusterClient, rescuer: ClusterClient, n: number, journal: string, etcd: Etcd3): Promise<Round> {
  const host = `victim${n}`;
  const victim = await startWorker(env, host, { HEARTH_DRIVER_FAKE_LATENCY_MS: SLOW_MS, HEARTH_LOG_LEVEL: 'warn' });
  try {
    const id = await catchOnVictim(api, journal, host);
    // The rescuer's gauge must start from zero, or its rise would not be this round's.
    await waitFor(async () => (await rescuer.metric('hearth_orphaned_operations', { cluster: CLUSTER_ID })) === 0, { timeoutMs: 30_000, what: 'no orphans before the kill' });
    // A crash does not wait for a keepalive: kill at a random point of the keepalive cycle
    // (every TTL/3), or every round would land at the same phase — a fresh worker is killed
    // about as long after its lease grant as the round takes, which happened to be one interval.
    await new Promise((r) => setTimeout(r, Math.random() * (LEASE_TTL_MS / 3)));
    const killedAt = performance.now();
    await victim.kill();
    const [detectS, detectMetricS] = await Promise.all([
      secondsUntil(killedAt, async () => (await api.orphans()).some((o) => o.id === id), `volume ${id} in the orphans view`),
      secondsUntil(killedAt, async () => (await rescuer.metric('hearth_orphaned_operations', { cluster: CLUSTER_ID })) >= 1, 'the rescuer to count the orphan'),
    ]);
    const cleanup = await api.workCleanup({ resource_id: id, resource_type: 'Volume' });
    if (cleanup.status !== 202 || (cleanup.body.cleaning as unknown[] | undefined)?.length !== 1) throw new Error(`work-cleanup: HTTP ${cleanup.status} ${JSON.stringify(cleanup.body)}`);
    const opKey = `${env.HEARTH_ETCD_PREFIX}/ops/volume/${id}`;
    const takeoverS = await secondsUntil(killedAt, async () => (await api.status('volume', id)) === 'error' && !(await etcd.get(opKey).exists()), `volume ${id} cleaned up`);
    ctx.log(`round ${n}: kill -9 → orphan in the API view ${detectS.toFixed(2)} s, in the rescuer's gauge ${detectMetricS.toFixed(2)} s, taken over ${takeoverS.toFixed(2)} s (TTL ${LEASE_TTL_MS / 1_000} s)`);
    return { detectS, detectMetricS, takeoverS };
  } finally {
    await victim.kill();
  }
}

export const suite: BenchSuite = {
  name: 'failover',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const rounds = ctx.quick ? 2 : 5;
    const prefix = `/bench-failover-${randomUUID().slice(0, 8)}`;
    const journal = join(await mkdtemp(join(tmpdir(), 'hearth-bench-failover-')), 'journal.jsonl');
    const env = {
      HEARTH_ETCD_ENDPOINTS: ctx.etcd.endpoints.join(','),
      HEARTH_ETCD_PREFIX: prefix,
      HEARTH_AMQP_URL: ctx.rabbit.url,
      HEARTH_AMQP_PREFIX: `f${randomUUID().slice(0, 8)}`,
      HEARTH_CLUSTER: CLUSTER,
      HEARTH_BACKEND: 'be',
      HEARTH_DRIVER_NAME: 'fake',
      HEARTH_DRIVER_FAKE_JOURNAL: journal,
      HEARTH_LOG_LEVEL: 'warn',
    };
    const etcd = new Etcd3({ hosts: ctx.etcd.endpoints });
    const procs: HearthProcess[] = [];
    try {
      procs.push(await startHearth({ name: 'bench-failover-api', env: { ...env, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' }, startTimeoutMs: 60_000 }));
      procs.push(await startWorker(env, 'rescuer'));
      const api = new ClusterClient(procs[0] as HearthProcess);
      const rescuer = new ClusterClient(procs[1] as HearthProcess);
      const results: Round[] = [];
      for (let n = 1; n <= rounds; n++) results.push(await round(ctx, env, api, rescuer, n, journal, etcd));
      const ttl = standalone('lease.ttl_s', LEASE_TTL_MS / 1_000, 's');
      const fig = (name: string, values: readonly number[], p: number): BenchResult => relative(name, percentile(values, p), 's', ttl);
      const detect = results.map((r) => r.detectS);
      const metric = results.map((r) => r.detectMetricS);
      const takeover = results.map((r) => r.takeoverS);
      return [
        ttl,
        fig('failover.detect_s', detect, 50),
        fig('failover.detect_max_s', detect, 100),
        fig('failover.detect_metric_s', metric, 50),
        fig('failover.detect_metric_max_s', metric, 100),
        fig('failover.takeover_s', takeover, 50),
        fig('failover.takeover_max_s', takeover, 100),
        standalone('failover.rounds', rounds, 'kills'),
      ];
    } finally {
      await Promise.all(procs.map((p) => p.stop()));
      await etcd.delete().prefix(`${prefix}/`);
      etcd.close();
    }
  },
};
