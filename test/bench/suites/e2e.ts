// End to end: operations per second through hearth's HTTP API to their final transition, with
// the fake driver (no latency). Cluster: an API-only `hearth serve` and 1 or 3 worker processes
// on the bench's private etcd and RabbitMQ; single node: one default `hearth serve` (SQLite, the
// in-process bus). 32 clients each alternate a volume create and its delete, one operation at a
// time. An operation counts from the API request until its op record is gone (the worker's final
// transition removed it): watched on etcd's ops/ prefix in the cluster, and polled every 2 ms in
// the SQLite file on a single node — so no client polling loads the API.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Etcd3 } from 'etcd3';
import { SQLITE_STATE_FILE } from '../../../src/state/sqlite-state-store.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { VolumeClient } from '../../support/volume-client.js';
import { type BenchContext, type BenchResult, type BenchSuite, percentile, standalone } from '../types.js';
import { measure } from './etcd-baseline.js';

const CLIENTS = 32;

/** Resolves when a volume's op record is gone. */
interface Completion {
  /** Call right after the request that recorded the op was answered. */
  done(volumeId: string): Promise<void>;
  close(): Promise<void>;
}

/** Completion from etcd: a watch on the ops/ prefix, plus one read for ops already gone. */
async function etcdCompletion(endpoints: string[], prefix: string): Promise<Completion> {
  const client = new Etcd3({ hosts: endpoints });
  const waiters = new Map<string, () => void>();
  const watcher = await client.watch().prefix(`${prefix}/ops/volume/`).create();
  watcher.on('delete', (kv) => {
    const key = kv.key.toString();
    waiters.get(key)?.();
    waiters.delete(key);
  });
  return {
    async done(volumeId) {
      const key = `${prefix}/ops/volume/${volumeId}`;
      const gone = new Promise<void>((resolve) => waiters.set(key, resolve));
      // Registered before the read: a deletion in between is seen by one or the other.
      if ((await client.get(key).exists()) === false) {
        waiters.delete(key);
        return;
      }
      await gone;
    },
    async close() {
      await watcher.cancel();
      client.close();
    },
  };
}

/** Completion from the single node's SQLite file (read-only; WAL lets it read beside the daemon). */
function sqliteCompletion(dataDir: string): Completion {
  const db = new Database(join(dataDir, SQLITE_STATE_FILE), { readonly: true, fileMustExist: true });
  const query = db.prepare("SELECT id FROM ops WHERE type = 'volume'").pluck();
  const waiters = new Map<string, () => void>();
  const timer = setInterval(() => {
    if (waiters.size === 0) return;
    const open = new Set(query.all() as string[]);
    for (const [id, resolve] of waiters) {
      if (open.has(id)) continue;
      waiters.delete(id);
      resolve();
    }
  }, 2);
  return {
    done: (volumeId) => new Promise<void>((resolve) => waiters.set(volumeId, resolve)),
    async close() {
      clearInterval(timer);
      db.close();
    },
  };
}

/** 32 clients alternating create and delete for `seconds` (after a 1 s warm-up). */
async function drive(ctx: BenchContext, apiUrl: string, completion: Completion): Promise<{ opsPerSecond: number; latenciesMs: number[] }> {
  const api = new VolumeClient(apiUrl);
  const volumes: (string | undefined)[] = new Array<string | undefined>(CLIENTS).fill(undefined);
  const op = async (client: number): Promise<void> => {
    const volume = volumes[client];
    if (volume === undefined) {
      const id = await api.createVolume(1);
      await completion.done(id);
      volumes[client] = id;
    } else {
      await api.deleteVolume(volume);
      await completion.done(volume);
      volumes[client] = undefined;
    }
  };
  await measure(1, CLIENTS, op);
  const run = await measure(ctx.seconds, CLIENTS, op);
  // Leave nothing behind for the next configuration.
  await Promise.all(volumes.map(async (id, i) => id !== undefined && (await op(i))));
  return run;
}

async function clusterRun(ctx: BenchContext, workers: number): Promise<{ opsPerSecond: number; latenciesMs: number[] }> {
  const prefix = `/bench-e2e-${randomUUID().slice(0, 8)}`;
  const env = {
    HEARTH_ETCD_ENDPOINTS: ctx.etcd.endpoints.join(','),
    HEARTH_ETCD_PREFIX: prefix,
    HEARTH_AMQP_URL: ctx.rabbit.url,
    HEARTH_AMQP_PREFIX: `b${randomUUID().slice(0, 8)}`,
    HEARTH_CLUSTER: 'bench',
    HEARTH_BACKEND: 'fake',
    HEARTH_DRIVER_NAME: 'fake',
    HEARTH_LOG_LEVEL: 'warn',
  };
  const procs: HearthProcess[] = [];
  const completion = await etcdCompletion(ctx.etcd.endpoints, prefix);
  try {
    const started = await Promise.all([
      startHearth({ name: `bench-api-${workers}`, env: { ...env, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' }, startTimeoutMs: 60_000 }),
      ...Array.from({ length: workers }, (_, i) =>
        startHearth({ name: `bench-w${i + 1}-of-${workers}`, env: { ...env, HEARTH_HOST: `w${i + 1}`, HEARTH_ROLES: 'worker' }, startTimeoutMs: 60_000 }),
      ),
    ]);
    procs.push(...started);
    return await drive(ctx, started[0].apiUrl, completion);
  } finally {
    await completion.close();
    await Promise.all(procs.map((p) => p.stop()));
    const client = new Etcd3({ hosts: ctx.etcd.endpoints });
    await client.delete().prefix(`${prefix}/`);
    client.close();
  }
}

async function singleNodeRun(ctx: BenchContext): Promise<{ opsPerSecond: number; latenciesMs: number[] }> {
  const hearth = await startHearth({ name: 'bench-single', env: { HEARTH_DRIVER_NAME: 'fake', HEARTH_LOG_LEVEL: 'warn' }, startTimeoutMs: 60_000 });
  const completion = sqliteCompletion(hearth.dataDir);
  try {
    return await drive(ctx, hearth.apiUrl, completion);
  } finally {
    await completion.close();
    await hearth.stop();
  }
}

/** A figure against another figure of this suite. */
function against(name: string, value: number, unit: string, baseline: BenchResult): BenchResult {
  return { name, value, unit, baseline: baseline.name, baseline_value: baseline.value, ratio: baseline.value === 0 ? null : value / baseline.value };
}

export const suite: BenchSuite = {
  name: 'e2e',
  async run(ctx) {
    const one = await clusterRun(ctx, 1);
    ctx.log(`1 worker: ${one.opsPerSecond.toFixed(0)} ops/s`);
    const three = await clusterRun(ctx, 3);
    ctx.log(`3 workers: ${three.opsPerSecond.toFixed(0)} ops/s`);
    const single = await singleNodeRun(ctx);
    ctx.log(`single node: ${single.opsPerSecond.toFixed(0)} ops/s`);
    const ops1 = standalone('e2e.ops_per_s_1_worker', one.opsPerSecond, 'ops/s');
    const p50_1 = standalone('e2e.p50_ms_1_worker', percentile(one.latenciesMs, 50), 'ms');
    const p99_1 = standalone('e2e.p99_ms_1_worker', percentile(one.latenciesMs, 99), 'ms');
    return [
      ops1,
      p50_1,
      p99_1,
      against('e2e.ops_per_s_3_workers', three.opsPerSecond, 'ops/s', ops1),
      against('e2e.p50_ms_3_workers', percentile(three.latenciesMs, 50), 'ms', p50_1),
      against('e2e.p99_ms_3_workers', percentile(three.latenciesMs, 99), 'ms', p99_1),
      standalone('e2e.ops_per_s_single_node', single.opsPerSecond, 'ops/s'),
      // What the cluster costs against the embedded default doing the same work on one process.
      against('e2e.ops_per_s_3_workers_vs_single_node', three.opsPerSecond, 'ops/s', standalone('e2e.ops_per_s_single_node', single.opsPerSecond, 'ops/s')),
      standalone('e2e.p50_ms_single_node', percentile(single.latenciesMs, 50), 'ms'),
      standalone('e2e.p99_ms_single_node', percentile(single.latenciesMs, 99), 'ms'),
    ];
  },
};
