// Worker memory: the resident set (VmRSS from /proc/<pid>/status) of one `hearth serve` worker
// process, first idle in an empty cluster (the baseline), then — the same process — with 10,000
// volumes in its cluster's store (etcd) and 100 operations in flight, each holding its volume's
// lock (`hearth_locks_held` = 100) inside a fake driver call that takes ten minutes. An API-only
// member takes the requests, as in a deployment. RSS is sampled several times after a settle
// period and the median is reported (a GC can move it by a few MB either way). The worker holds
// no per-volume state (the store is etcd): what grows with volumes is etcd, not hearth.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Etcd3 } from 'etcd3';
import { Registry } from 'prom-client';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { EtcdStateStore } from '../../../src/state/etcd-state-store.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import { newVolume } from '../../contract/state-store.contract.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { benchAllocator } from '../allocator.js';
import { ClusterClient } from '../../support/orphans-cluster.js';
import { waitFor } from '../../support/wait.js';
import { type BenchContext, type BenchResult, type BenchSuite, relative, standalone } from '../types.js';

const VOLUMES = 10_000;
const LOCKS = 100;
const FILL_IN_FLIGHT = 32;
// Long enough for V8 to collect the start-up garbage (tsx's transpiling among it) once the
// process goes quiet; the idle baseline would otherwise count it.
const IDLE_SETTLE_MS = 20_000;
const SETTLE_MS = 10_000;

/** A `kB` field of /proc/<pid>/status, in MB. */
async function procStatusMb(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]) / 1_024;
}

/** Median RSS (MB) of five samples over four seconds, after a settle period. */
async function settledRssMb(pid: number, settleMs: number): Promise<number> {
  await new Promise((r) => setTimeout(r, settleMs));
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    samples.push(await procStatusMb(pid, 'VmRSS'));
    await new Promise((r) => setTimeout(r, 1_000));
  }
  return samples.sort((a, b) => a - b)[2] as number;
}

/** Writes `count` available volumes of `cluster`, hosted by `host`, straight into the etcd store. */
async function fill(ctx: BenchContext, prefix: string, cluster: string, host: string, count: number): Promise<void> {
  const client = createEtcdClient({ endpoints: ctx.etcd.endpoints, prefix, username: '', password: '', caFile: '', certFile: '', keyFile: '', callTimeoutMs: 10_000 });
  const store = new EtcdStateStore({ client, keys: new KeyLayout(prefix), clock: systemClock, metrics: createStateMetrics(new Registry()), logger: silentLogger() });
  try {
    let next = 0;
    await Promise.all(
      Array.from({ length: FILL_IN_FLIGHT }, async () => {
        while (next < count) {
          next++;
          const created = await store.create('volume', { record: newVolume({ cluster, host, name: `vol-${next}` }), op: { kind: 'create_volume' } });
          if (!created.ok) throw new Error(`create refused: ${JSON.stringify(created.failed)}`);
          const done = await store.transition({ type: 'volume', id: created.record.id }, { expect: { status: 'creating' }, set: { status: 'available' }, op: 'remove', by: 'worker' });
          if (!done.ok) throw new Error(`completion refused: ${JSON.stringify(done.failed)}`);
        }
      }),
    );
  } finally {
    await store.close();
    client.close();
  }
}

export const suite: BenchSuite = {
  name: 'memory',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const prefix = `/bench-memory-${randomUUID().slice(0, 8)}`;
    const allocator = benchAllocator();
    const env = {
      HEARTH_ETCD_ENDPOINTS: ctx.etcd.endpoints.join(','),
      HEARTH_ETCD_PREFIX: prefix,
      HEARTH_AMQP_URL: ctx.rabbit.url,
      HEARTH_AMQP_PREFIX: `m${randomUUID().slice(0, 8)}`,
      HEARTH_CLUSTER: 'mem',
      HEARTH_BACKEND: 'be',
      HEARTH_DRIVER_NAME: 'fake',
      HEARTH_LOG_LEVEL: 'warn',
      ...allocator.env,
    };
    const procs: HearthProcess[] = [];
    ctx.log(`allocator: ${allocator.label}`);
    try {
      // The built JavaScript, as deployers run it (bin/hearth.js; `make bench` builds first, and
      // the image's allocator, ../allocator.ts), with no memory flags: the TypeScript loader would
      // add its own heap.
      procs.push(await startHearth({ name: 'bench-memory-api', mode: 'built', env: { ...env, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' }, startTimeoutMs: 60_000 }));
      // prefetch 100: the worker may hold 100 jobs at once, so 100 runs (and their locks) can be in flight.
      const worker = await startHearth({
        name: 'bench-memory-w1',
        mode: 'built',
        env: { ...env, HEARTH_HOST: 'w1', HEARTH_ROLES: 'worker', HEARTH_AMQP_PREFETCH: String(LOCKS), HEARTH_DRIVER_FAKE_LATENCY_MS: '600000' },
        startTimeoutMs: 60_000,
      });
      procs.push(worker);
      const api = new ClusterClient(procs[0] as HearthProcess);
      const probe = new ClusterClient(worker);
      const idle = standalone('memory.rss_mb_idle', await settledRssMb(worker.pid, IDLE_SETTLE_MS), 'MB');
      const idleHeap = standalone('memory.heap_used_mb_idle', (await probe.metric('nodejs_heap_size_used_bytes')) / 2 ** 20, 'MB');
      ctx.log(`idle worker: ${idle.value.toFixed(1)} MB`);

      const filledAt = performance.now();
      await fill(ctx, prefix, 'mem@be', 'w1@be', VOLUMES);
      ctx.log(`${VOLUMES} volumes written in ${((performance.now() - filledAt) / 1_000).toFixed(1)} s`);
      for (let i = 0; i < LOCKS; i++) await api.createVolume();
      await waitFor(async () => (await probe.metric('hearth_locks_held')) === LOCKS, { timeoutMs: 60_000, intervalMs: 200, what: `${LOCKS} locks held by the worker` });
      const loaded = await settledRssMb(worker.pid, SETTLE_MS);
      const heap = (await probe.metric('nodejs_heap_size_used_bytes')) / 2 ** 20;
      const locksHeld = await probe.metric('hearth_locks_held');
      if (locksHeld !== LOCKS) throw new Error(`the worker holds ${locksHeld} locks, not ${LOCKS}, after settling`);
      const peak = await procStatusMb(worker.pid, 'VmHWM');
      ctx.log(`worker with ${VOLUMES} volumes and ${locksHeld} locks held: ${loaded.toFixed(1)} MB (peak ${peak.toFixed(1)} MB), V8 heap used ${heap.toFixed(1)} MB (idle ${idleHeap.value.toFixed(1)} MB)`);
      return [
        idle,
        relative('memory.rss_mb_10k_volumes', loaded, 'MB', idle),
        relative('memory.peak_rss_mb_10k_volumes', peak, 'MB', idle),
        idleHeap,
        relative('memory.heap_used_mb_10k_volumes', heap, 'MB', idleHeap),
      ];
    } finally {
      await Promise.all(procs.map((p) => p.kill()));
      const etcd = new Etcd3({ hosts: ctx.etcd.endpoints });
      await etcd.delete().prefix(`${prefix}/`);
      etcd.close();
    }
  },
};
