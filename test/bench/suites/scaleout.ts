// Scale-out, what active/active is for: the fake driver takes 200 ms per call, so the driver,
// not the coordinator, bounds an operation. A worker holds at most `amqp.prefetch` (8) jobs at
// once, so one worker completes at most about 8 / 0.2 s = 40 operations a second, three about
// 120, six about 240 — if the coordinator (API, etcd, RabbitMQ, the workers' own CPU) keeps up.
// 2 × 6 × 8 = 96 clients, so that the clients never limit it (an operation waits in the queue
// instead). 1 and 3 workers run in alternating rounds of the same run (the machine's load drifts),
// the median of each is reported; 6 workers once, last: how far one cluster goes on this machine.
import type { BenchSuite } from '../types.js';
import { percentile, standalone } from '../types.js';
import { clusterRun } from './e2e.js';

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

export const suite: BenchSuite = {
  name: 'scaleout',
  async run(ctx) {
    const options = { latencyMs: LATENCY_MS, clients: CLIENTS };
    const one: number[] = [];
    const three: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      one.push((await clusterRun(ctx, 1, options)).opsPerSecond);
      three.push((await clusterRun(ctx, 3, options)).opsPerSecond);
      ctx.log(`round ${round}: 1 worker ${(one.at(-1) ?? 0).toFixed(1)} ops/s, 3 workers ${(three.at(-1) ?? 0).toFixed(1)} ops/s`);
    }
    const six = await clusterRun(ctx, MOST_WORKERS, options);
    ctx.log(`${MOST_WORKERS} workers: ${six.opsPerSecond.toFixed(1)} ops/s (p50 ${percentile(six.latenciesMs, 50).toFixed(0)} ms)`);
    const base = standalone('e2e.ops_per_s_1_worker_latency', median(one), 'ops/s');
    const ratio = (value: number): number | null => (base.value === 0 ? null : value / base.value);
    return [
      base,
      { name: 'e2e.ops_per_s_3_workers_latency', value: median(three), unit: 'ops/s', baseline: base.name, baseline_value: base.value, ratio: ratio(median(three)) },
      { name: 'e2e.ops_per_s_6_workers_latency', value: six.opsPerSecond, unit: 'ops/s', baseline: base.name, baseline_value: base.value, ratio: ratio(six.opsPerSecond) },
      // The ceiling the driver allows: workers × prefetch / latency.
      standalone('e2e.driver_bound_ops_per_s_1_worker', (PREFETCH * 1_000) / LATENCY_MS, 'ops/s'),
    ];
  },
};
