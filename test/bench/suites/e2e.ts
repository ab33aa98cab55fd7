// End to end: operations per second through hearth's HTTP API to their final transition, with
// the fake driver (no latency). Cluster: an API-only `hearth serve` and 1 or 3 worker processes
// on the bench's private etcd and RabbitMQ; single node: one default `hearth serve` (SQLite, the
// in-process bus). 32 clients each alternate a volume create and its delete, one operation at a
// time. An operation counts from the API request until its op record is gone (the worker's final
// transition removed it): seen on a watch of etcd's ops/ prefix in the cluster — by the watch
// alone, so the benchmark adds no request of its own to etcd's counters — and polled every 2 ms
// in the SQLite file on a single node — so no client polling loads the API.
//
// Requests per operation: etcd's own counters (`grpc_server_handled_total` of Range, Txn, Put and
// DeleteRange, from its /metrics) over the 1-worker measurement, less the same counters over an
// idle window of the same length right after (the members' background: sweeps, heartbeats),
// divided by the operations completed in the measurement.
//
// BENCH_CPU_PROF=<dir>: the API and the worker of the 1-worker configuration run with
// `node --cpu-prof`, their profiles and the measurement's window (window.json) go to <dir>;
// `node --import tsx test/bench/profile-summary.ts <dir>` says where their time went; the single
// node's profile and window go to <dir>/single-node.
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { Etcd3 } from 'etcd3';
import { SQLITE_STATE_FILE } from '../../../src/state/sqlite-state-store.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { VolumeClient } from '../../support/volume-client.js';
import { cpuBetween, cpuMsOf } from '../proc-cpu.js';
import { sqliteStatementCounts, type StatementCounts, statementsPerOp, totalStatements } from '../sqlite-statements.js';
import { type WorkerFigures, workerFigures, workerSnapshots } from '../worker-figures.js';
import { etcdRequestCounts, netOfIdle, type RequestCounts, requestsBetween, totalRequests } from '../etcd-requests.js';
import { type BenchContext, type BenchResult, type BenchSuite, percentile, standalone, versus } from '../types.js';
import { perSecond, rawSqlite, type Tally } from './transitions.js';
import { measure } from './etcd-baseline.js';

const CLIENTS = 32;

/** Resolves when a volume's op record is gone. */
export interface Completion {
  /** Call right after the request that recorded the op was answered. */
  done(volumeId: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Completion from etcd, by a watch on the ops/ prefix alone (no read): deletions are counted per
 * key as they come, and `done` consumes one — the op key of a volume is deleted once at the end
 * of its create and once at the end of its delete, and a client waits for each in turn.
 */
export async function etcdCompletion(endpoints: string[], prefix: string): Promise<Completion> {
  const client = new Etcd3({ hosts: endpoints });
  const deletions = new Map<string, number>();
  const waiters = new Map<string, () => void>();
  const watcher = await client.watch().prefix(`${prefix}/ops/volume/`).only('delete').create();
  watcher.on('delete', (kv) => {
    const key = kv.key.toString();
    const waiter = waiters.get(key);
    if (waiter) {
      waiters.delete(key);
      waiter();
    } else {
      deletions.set(key, (deletions.get(key) ?? 0) + 1);
    }
  });
  return {
    done(volumeId) {
      const key = `${prefix}/ops/volume/${volumeId}`;
      const seen = deletions.get(key) ?? 0;
      if (seen > 0) {
        if (seen === 1) deletions.delete(key);
        else deletions.set(key, seen - 1);
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => waiters.set(key, resolve));
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

/** What one configuration measured. */
export interface Run {
  readonly opsPerSecond: number;
  readonly latenciesMs: number[];
  /** etcd requests per completed operation, net of an idle window (with `Counting.etcdUrl`). */
  readonly requestsPerOp?: RequestCounts;
  /** CPU ms per completed operation of each counted process (and its children), net of an idle window. */
  readonly cpuMsPerOp?: Record<string, number>;
  /** SQLite statements per completed operation by kind, net of an idle window (with `Counting.opsUrl`). */
  readonly statementsPerOp?: StatementCounts;
  /** What each worker did in the measurement (with `ClusterRunOptions.observeWorkers`). */
  readonly workers?: WorkerFigures;
  /** Mean time from a request to its 202 (ms), and from the 202 to the op's end. */
  readonly apiMeanMs: number;
  readonly afterApiMeanMs: number;
}

/** What to count around the measurement, and over an idle window as long right after it. */
interface Counting {
  /** etcd's client URL: its request counters. */
  readonly etcdUrl?: string;
  /** A single node's ops listener: its SQLite statement counters. */
  readonly opsUrl?: string;
  /** Processes whose CPU time to count, by name. */
  readonly pids: Readonly<Record<string, number>>;
}

/** Where CPU profiles of the 1-worker run go (BENCH_CPU_PROF), if anywhere. */
const PROFILE_DIR = process.env.BENCH_CPU_PROF ? resolve(process.env.BENCH_CPU_PROF) : undefined;

/** The last measurement's window (epoch ms) and operations, for the profiles' summary. */
let lastWindow: { fromEpochMs: number; toEpochMs: number; ops: number } | undefined;

function profileArgs(name: string, dir = PROFILE_DIR): string[] {
  return dir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}.cpuprofile`];
}

/** The single node's profile and window go to a directory of their own beside the cluster's. */
const SINGLE_PROFILE_DIR = PROFILE_DIR === undefined ? undefined : join(PROFILE_DIR, 'single-node');

/** `clients` (32 unless given) alternating create and delete for `seconds` (after a 1 s warm-up). */
async function drive(ctx: BenchContext, apiUrl: string, completion: Completion, counting?: Counting, clients = CLIENTS, workerOpsUrls?: readonly string[]): Promise<Run> {
  const api = new VolumeClient(apiUrl);
  const volumes: (string | undefined)[] = new Array<string | undefined>(clients).fill(undefined);
  const split = { apiMs: 0, afterMs: 0, n: 0 };
  const op = async (client: number): Promise<void> => {
    const volume = volumes[client];
    const startedAt = performance.now();
    const id = volume ?? (await api.createVolume(1));
    if (volume !== undefined) await api.deleteVolume(volume);
    const answeredAt = performance.now();
    await completion.done(id);
    volumes[client] = volume === undefined ? id : undefined;
    split.apiMs += answeredAt - startedAt;
    split.afterMs += performance.now() - answeredAt;
    split.n++;
  };
  await measure(1, clients, op);
  Object.assign(split, { apiMs: 0, afterMs: 0, n: 0 });
  const workersBefore = workerOpsUrls && (await workerSnapshots(workerOpsUrls));
  // Every client waits for its operation's end, so nothing is in flight at either edge.
  const snapshot = async (): Promise<{ requests: RequestCounts | undefined; statements: StatementCounts | undefined; cpu: Record<string, number> }> => ({
    requests: counting?.etcdUrl === undefined ? undefined : await etcdRequestCounts(counting.etcdUrl),
    statements: counting?.opsUrl === undefined ? undefined : await sqliteStatementCounts(counting.opsUrl),
    cpu: await cpuMsOf(counting?.pids ?? {}),
  });
  const before = await snapshot();
  const startedAt = performance.now();
  const window = { fromEpochMs: Date.now(), toEpochMs: 0 };
  const measured = await measure(ctx.seconds, clients, op);
  const loadedMs = performance.now() - startedAt;
  const workers = workerOpsUrls && workersBefore && workerFigures(workersBefore, await workerSnapshots(workerOpsUrls));
  const run = { ...measured, apiMeanMs: split.apiMs / Math.max(1, split.n), afterApiMeanMs: split.afterMs / Math.max(1, split.n), ...(workers ? { workers } : {}) };
  window.toEpochMs = Date.now();
  lastWindow = { ...window, ops: run.latenciesMs.length };
  // Leave nothing behind for the next configuration (after the counting, which must not see it).
  const cleanUp = (): Promise<unknown> => Promise.all(volumes.map(async (id, i) => id !== undefined && (await op(i))));
  if (!counting) {
    await cleanUp();
    return run;
  }
  const after = await snapshot();
  await new Promise((r) => setTimeout(r, loadedMs));
  const idle = await snapshot();
  const idleMs = performance.now() - startedAt - loadedMs;
  const ops = run.latenciesMs.length;
  const scale = loadedMs / idleMs;
  const cpu = cpuBetween(before.cpu, after.cpu);
  const idleCpu = cpuBetween(after.cpu, idle.cpu);
  const cpuMsPerOp = Object.fromEntries(Object.entries(cpu).map(([name, ms]) => [name, Math.max(0, ms - (idleCpu[name] ?? 0) * scale) / ops]));
  ctx.log(`CPU per operation: ${Object.entries(cpuMsPerOp).map(([k, v]) => `${k} ${v.toFixed(2)} ms`).join(', ')}`);
  let requestsPerOp: RequestCounts | undefined;
  if (before.requests && after.requests && idle.requests) {
    const idleRequests = requestsBetween(after.requests, idle.requests);
    const net = netOfIdle(requestsBetween(before.requests, after.requests), idleRequests, loadedMs, idleMs);
    requestsPerOp = { Range: net.Range / ops, Txn: net.Txn / ops, Put: net.Put / ops, DeleteRange: net.DeleteRange / ops };
    ctx.log(`etcd requests per operation: ${totalRequests(requestsPerOp).toFixed(2)} (${JSON.stringify(Object.fromEntries(Object.entries(requestsPerOp).map(([k, v]) => [k, Number(v.toFixed(2))])))}; idle window: ${JSON.stringify(idleRequests)})`);
  }
  let statements: StatementCounts | undefined;
  if (before.statements && after.statements && idle.statements) {
    statements = statementsPerOp(before.statements, after.statements, idle.statements, loadedMs, idleMs, ops);
    ctx.log(`SQLite statements per operation: ${totalStatements(statements).toFixed(2)} (${JSON.stringify(Object.fromEntries(Object.entries(statements).map(([k, v]) => [k, Number(v.toFixed(2))])))})`);
  }
  await cleanUp();
  return { ...run, cpuMsPerOp, ...(requestsPerOp ? { requestsPerOp } : {}), ...(statements ? { statementsPerOp: statements } : {}) };
}

/** Options of a cluster run other than the e2e suite's own. */
export interface ClusterRunOptions {
  /** The fake driver's latency per call (default none). */
  readonly latencyMs?: number;
  /** Clients in flight (default 32). */
  readonly clients?: number;
  /** Read each worker's /metrics around the measurement (`Run.workers`). */
  readonly observeWorkers?: boolean;
}

/**
 * One API process and `workers` worker processes on the bench's etcd and RabbitMQ, driven by
 * clients alternating create and delete. Requests and CPU are counted with one worker and the
 * suite's defaults only.
 */
export async function clusterRun(ctx: BenchContext, workers: number, options: ClusterRunOptions = {}): Promise<Run> {
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
    ...(options.latencyMs === undefined ? {} : { HEARTH_DRIVER_FAKE_LATENCY_MS: String(options.latencyMs) }),
  };
  const procs: HearthProcess[] = [];
  const completion = await etcdCompletion(ctx.etcd.endpoints, prefix);
  const plain = options.latencyMs === undefined && options.clients === undefined;
  const profiled = plain && workers === 1 && PROFILE_DIR !== undefined;
  if (profiled) await mkdir(PROFILE_DIR, { recursive: true });
  try {
    const started = await Promise.all([
      startHearth({ name: `bench-api-${workers}`, env: { ...env, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' }, startTimeoutMs: 60_000, ...(profiled ? { nodeArgs: profileArgs('api') } : {}) }),
      ...Array.from({ length: workers }, (_, i) =>
        startHearth({
          name: `bench-w${i + 1}-of-${workers}`,
          env: { ...env, HEARTH_HOST: `w${i + 1}`, HEARTH_ROLES: 'worker' },
          startTimeoutMs: 60_000,
          ...(profiled ? { nodeArgs: profileArgs(`worker-${i + 1}`) } : {}),
        }),
      ),
    ]);
    procs.push(...started);
    const counting = { etcdUrl: ctx.etcd.url, pids: { api: started[0].pid, worker: (started[1] as HearthProcess).pid, etcd: ctx.etcd.pid, rabbitmq: ctx.rabbit.pid } };
    const workerOps = options.observeWorkers === true ? started.slice(1).map((p) => p.opsUrl) : undefined;
    return await drive(ctx, started[0].apiUrl, completion, plain && workers === 1 ? counting : undefined, options.clients, workerOps);
  } finally {
    await completion.close();
    await Promise.all(procs.map((p) => p.stop()));
    // A profile ends when its process exits: the summary finds the window counting back from there.
    if (profiled && lastWindow) await writeFile(join(PROFILE_DIR, 'window.json'), `${JSON.stringify({ ...lastWindow, stoppedAtEpochMs: Date.now() })}\n`);
    const client = new Etcd3({ hosts: ctx.etcd.endpoints });
    await client.delete().prefix(`${prefix}/`);
    client.close();
  }
}

async function singleNodeRun(ctx: BenchContext): Promise<Run> {
  if (SINGLE_PROFILE_DIR !== undefined) await mkdir(SINGLE_PROFILE_DIR, { recursive: true });
  const nodeArgs = profileArgs('single-node', SINGLE_PROFILE_DIR);
  const hearth = await startHearth({ name: 'bench-single', env: { HEARTH_DRIVER_NAME: 'fake', HEARTH_LOG_LEVEL: 'warn' }, startTimeoutMs: 60_000, ...(nodeArgs.length > 0 ? { nodeArgs } : {}) });
  const completion = sqliteCompletion(hearth.dataDir);
  try {
    return await drive(ctx, hearth.apiUrl, completion, { pids: { hearth: hearth.pid }, opsUrl: hearth.opsUrl });
  } finally {
    await completion.close();
    await hearth.stop();
    if (SINGLE_PROFILE_DIR !== undefined && lastWindow) await writeFile(join(SINGLE_PROFILE_DIR, 'window.json'), `${JSON.stringify({ ...lastWindow, stoppedAtEpochMs: Date.now() })}\n`);
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
    // The raw SQLite UPDATE rate (synchronous=FULL, WAL) on the same disk right after, for the ratio.
    const raw = rawSqlite(ctx, 'raw-e2e.sqlite');
    const rawTally: Tally = { ops: 0, ms: 0 };
    try {
      raw.slice(ctx.seconds * 1_000, rawTally);
    } finally {
      raw.close();
    }
    const rawSqliteOps = standalone('e2e.sqlite_raw_update_ops_per_s', perSecond(rawTally), 'ops/s');
    ctx.log(`single node: ${single.opsPerSecond.toFixed(0)} ops/s (raw SQLite UPDATE ${rawSqliteOps.value.toFixed(0)}/s)`);
    const ops1 = standalone('e2e.ops_per_s_1_worker', one.opsPerSecond, 'ops/s');
    const p50_1 = standalone('e2e.p50_ms_1_worker', percentile(one.latenciesMs, 50), 'ms');
    const p99_1 = standalone('e2e.p99_ms_1_worker', percentile(one.latenciesMs, 99), 'ms');
    const perOp = one.requestsPerOp as RequestCounts;
    const cpuTotal = (cpu: Record<string, number> | undefined): number => Object.values(cpu ?? {}).reduce((a, b) => a + b, 0);
    return [
      ops1,
      standalone('e2e.etcd_requests_per_op', totalRequests(perOp), 'requests'),
      standalone('e2e.etcd_txns_per_op', perOp.Txn, 'requests'),
      standalone('e2e.etcd_ranges_per_op', perOp.Range, 'requests'),
      standalone('e2e.etcd_puts_deletes_per_op', perOp.Put + perOp.DeleteRange, 'requests'),
      // CPU of the API, the worker, etcd and RabbitMQ (with their child processes) per operation.
      standalone('e2e.cpu_ms_per_op_1_worker', cpuTotal(one.cpuMsPerOp), 'ms'),
      standalone('e2e.cpu_ms_per_op_single_node', cpuTotal(single.cpuMsPerOp), 'ms'),
      // The single node's SQLite state store: statements per operation (BEGIN and COMMIT counted), and the writes among them.
      standalone('e2e.sqlite_statements_per_op', totalStatements(single.statementsPerOp ?? {}), 'statements'),
      standalone('e2e.sqlite_writes_per_op', ['insert', 'update', 'delete'].reduce((n, k) => n + (single.statementsPerOp?.[k] ?? 0), 0), 'statements'),
      standalone('e2e.sqlite_transactions_per_op', single.statementsPerOp?.begin ?? 0, 'transactions'),
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
      // Issue 18's yardsticks: the whole path against its store's raw write rate, same run.
      versus(ctx, 'e2e.ops_per_s_1_worker_vs_raw_txn_c32', one.opsPerSecond, 'ops/s', 'etcd.raw_txn_c32_ops_per_s'),
      rawSqliteOps,
      against('e2e.ops_per_s_single_node_vs_raw_sqlite', single.opsPerSecond, 'ops/s', rawSqliteOps),
    ];
  },
};
