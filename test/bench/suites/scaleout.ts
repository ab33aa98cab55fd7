// Scale-out, what active/active is for: the fake driver takes 200 ms per call, so the driver,
// not the coordinator, bounds an operation. A worker holds at most `amqp.prefetch` (8) jobs at
// once, so one worker completes at most about 8 / 0.2 s = 40 operations a second, three about
// 120, six about 240 — if the coordinator (API, etcd, RabbitMQ, the workers' own CPU) keeps up.
// 2 × 6 × 8 = 96 clients, so that the clients never limit it (an operation waits in the queue
// instead). 1 and 3 workers run in alternating rounds of the same run (the machine's load drifts),
// the median of each is reported; 6 workers once, last: how far one cluster goes on this machine.
import type { BenchResult, BenchSuite } from '../types.js';
import { percentile, standalone } from '../types.js';
import { clusterRun, type Run } from './e2e.js';

/** The fake driver's latency per call. */
const LATENCY_MS = 200;
/** The workers' default `amqp.prefetch`. */
const PREFETCH = 8;
const MOST_WORKERS = 6;
const CLIENTS = 2 * MOST_WORKERS * PREFETCH;
const ROUNDS = 2;

/** The median; of an even count, the mean of the middle two. */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The figures of one configuration's runs that say what limited it (means over its rounds). */
function limits(runs: readonly Run[]): { opMs: number; writeMs: number; busiestShare: number; apiMs: number; apiShare: number; busySlots: number } {
  const mean = (pick: (r: Run) => number): number => runs.reduce((n, r) => n + pick(r), 0) / runs.length;
  return {
    opMs: mean((r) => r.workers?.opMeanMs ?? 0),
    writeMs: mean((r) => r.workers?.writeMeanMs ?? 0),
    busiestShare: mean((r) => r.workers?.busiestShare ?? 0),
    apiMs: mean((r) => r.apiMeanMs),
    // The share of a client's wait spent before its 202: each client waits for its operation's end,
    // so time in the API is time no job of that client is queued for a worker.
    apiShare: mean((r) => r.apiMeanMs / (r.apiMeanMs + r.afterApiMeanMs)),
    // Slots of all workers busy running (claim to final write), on average: throughput × duration.
    busySlots: mean((r) => (r.opsPerSecond * (r.workers?.opMeanMs ?? 0)) / 1_000),
  };
}

export const suite: BenchSuite = {
  name: 'scaleout',
  async run(ctx) {
    const options = { latencyMs: LATENCY_MS, clients: CLIENTS, observeWorkers: true };
    const one: Run[] = [];
    const three: Run[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      one.push(await clusterRun(ctx, 1, options));
      three.push(await clusterRun(ctx, 3, options));
      ctx.log(`round ${round}: 1 worker ${(one.at(-1)?.opsPerSecond ?? 0).toFixed(1)} ops/s, 3 workers ${(three.at(-1)?.opsPerSecond ?? 0).toFixed(1)} ops/s`);
    }
    const six = await clusterRun(ctx, MOST_WORKERS, options);
    ctx.log(`${MOST_WORKERS} workers: ${six.opsPerSecond.toFixed(1)} ops/s (p50 ${percentile(six.latenciesMs, 50).toFixed(0)} ms)`);
    const [l1, l3, l6] = [limits(one), limits(three), limits([six])];
    for (const [n, l] of [[1, l1], [3, l3], [MOST_WORKERS, l6]] as const) {
      ctx.log(
        `${n} worker(s): operation ${l.opMs.toFixed(0)} ms claim to end, store write ${l.writeMs.toFixed(1)} ms, ${l.busySlots.toFixed(1)} of ${n * PREFETCH} slots running, busiest worker ${l.busiestShare.toFixed(2)}× an even share, API ${l.apiMs.toFixed(0)} ms to 202 (${(l.apiShare * 100).toFixed(0)} % of a client's wait)`,
      );
    }
    const base = standalone('e2e.ops_per_s_1_worker_latency', median(one.map((r) => r.opsPerSecond)), 'ops/s');
    const ratio = (value: number): number | null => (base.value === 0 ? null : value / base.value);
    const threeOps = median(three.map((r) => r.opsPerSecond));
    const opMs1 = standalone('e2e.scaleout_op_ms_1_worker', l1.opMs, 'ms');
    const writeMs1 = standalone('e2e.scaleout_store_write_ms_1_worker', l1.writeMs, 'ms');
    const vs = (name: string, value: number, unit: string, b: BenchResult): BenchResult => ({ name, value, unit, baseline: b.name, baseline_value: b.value, ratio: b.value === 0 ? null : value / b.value });
    return [
      base,
      { name: 'e2e.ops_per_s_3_workers_latency', value: threeOps, unit: 'ops/s', baseline: base.name, baseline_value: base.value, ratio: ratio(threeOps) },
      { name: 'e2e.ops_per_s_6_workers_latency', value: six.opsPerSecond, unit: 'ops/s', baseline: base.name, baseline_value: base.value, ratio: ratio(six.opsPerSecond) },
      // The ceiling the driver allows: workers × prefetch / latency.
      standalone('e2e.driver_bound_ops_per_s_1_worker', (PREFETCH * 1_000) / LATENCY_MS, 'ops/s'),
      // What limits it (test/bench/scaleout.md): how long an operation holds its slot, and the store writes in it.
      opMs1,
      vs('e2e.scaleout_op_ms_3_workers', l3.opMs, 'ms', opMs1),
      writeMs1,
      vs('e2e.scaleout_store_write_ms_3_workers', l3.writeMs, 'ms', writeMs1),
      standalone('e2e.scaleout_busiest_worker_share_3_workers', l3.busiestShare, 'x'),
      standalone('e2e.scaleout_busiest_worker_share_6_workers', l6.busiestShare, 'x'),
      standalone('e2e.scaleout_slots_running_share_3_workers', l3.busySlots / (3 * PREFETCH), 'x'),
      standalone('e2e.scaleout_slots_running_share_6_workers', l6.busySlots / (MOST_WORKERS * PREFETCH), 'x'),
      standalone('e2e.scaleout_api_wait_share_6_workers', l6.apiShare, 'x'),
    ];
  },
};
