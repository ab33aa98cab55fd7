import { Etcd3 } from 'etcd3';
import { type BenchContext, type BenchResult, type BenchSuite, percentile, standalone } from '../types.js';

/** Runs `op` with `inFlight` concurrent loops for `seconds`; returns ops/s and latencies (ms). */
export async function measure(
  seconds: number,
  inFlight: number,
  op: (worker: number, i: number) => Promise<unknown>,
): Promise<{ opsPerSecond: number; latenciesMs: number[] }> {
  const latenciesMs: number[] = [];
  const deadline = performance.now() + seconds * 1_000;
  let count = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async (_, worker) => {
      for (let i = 0; performance.now() < deadline; i++) {
        const t = performance.now();
        await op(worker, i);
        latenciesMs.push(performance.now() - t);
        count++;
      }
    }),
  );
  return { opsPerSecond: count / ((performance.now() - started) / 1_000), latenciesMs };
}

/** One compare-and-put transaction on `key`: if its mod revision is unchanged, put. */
async function compareAndPut(client: Etcd3, key: string, revision: { value: string }): Promise<void> {
  const res = await client.if(key, 'Mod', '==', revision.value).then(client.put(key).value('x')).commit();
  revision.value = res.header.revision;
}

/** The raw etcd figures every etcd-backed benchmark is compared with. */
export const suite: BenchSuite = {
  name: 'etcd baselines',
  providesBaselines: true,
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const client = new Etcd3({ hosts: ctx.etcd.endpoints });
    try {
      const keys = Array.from({ length: 32 }, (_, i) => `/bench/raw/${i}`);
      const revisions = keys.map(() => ({ value: '0' }));
      const c1 = await measure(ctx.seconds, 1, () => compareAndPut(client, keys[0] as string, revisions[0] as { value: string }));
      const c32 = await measure(ctx.seconds, 32, (w) => compareAndPut(client, keys[w] as string, revisions[w] as { value: string }));
      return [
        standalone('etcd.raw_txn_ops_per_s', c1.opsPerSecond, 'ops/s'),
        standalone('etcd.raw_txn_p50_ms', percentile(c1.latenciesMs, 50), 'ms'),
        standalone('etcd.raw_txn_p99_ms', percentile(c1.latenciesMs, 99), 'ms'),
        standalone('etcd.raw_txn_c32_ops_per_s', c32.opsPerSecond, 'ops/s'),
      ];
    } finally {
      client.close();
    }
  },
};
