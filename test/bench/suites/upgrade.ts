// A rolling restart under load (issue 14): three workers and two API processes on the run's etcd
// and RabbitMQ, a stream of mixed operations (create, snapshot, extend, delete both; 150 ms
// fake driver) through a balancer that routes only to ready API processes; first without a roll
// (the baseline), then while each worker and then each API process is replaced the StatefulSet's
// way (test/support/rolling.ts). `upgrade.roll_max_latency_ms` is the roll's slowest operation
// against the same stream's p99 without a roll; failed requests and lost operations are counted
// (goals: none).
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import type { HearthProcess } from '../../support/hearth-process.js';
import { startHearth } from '../../support/hearth-process.js';
import { ClusterClient, memberEnv } from '../../support/orphans-cluster.js';
import { MixedStream, p99, ReadinessBalancer, rollAll } from '../../support/rolling.js';
import { waitFor } from '../../support/wait.js';
import type { BenchSuite } from '../types.js';
import { relative, standalone } from '../types.js';

const WORKERS = 3;
const APIS = 2;
const LANES = 3;

export const suite: BenchSuite = {
  name: 'upgrade',
  async run(ctx) {
    const prefix = `/bench-roll-${randomUUID().slice(0, 8)}`;
    const journal = join(await mkdtemp(join(ctx.tmpDir, 'roll-')), 'journal.jsonl');
    const env = memberEnv({ endpoints: ctx.etcd.endpoints, prefix }, { url: ctx.rabbit.url, prefix: `r${randomUUID().slice(0, 8)}` }, 'roll', journal, {
      HEARTH_DRIVER_FAKE_LATENCY_MS: '150',
      HEARTH_LEASE_TTL_MS: '10000',
      HEARTH_LEASE_MARGIN_MS: '3000',
      HEARTH_LOG_LEVEL: 'warn',
    });
    const procs = new Set<HearthProcess>();
    const lb = new ReadinessBalancer();
    const start = async (name: string, host: string, roles: 'worker' | 'api'): Promise<HearthProcess> => {
      const p = await startHearth({ name: `bench-${name}`, env: { ...env, HEARTH_HOST: host, HEARTH_ROLES: roles }, startTimeoutMs: 150_000 });
      procs.add(p);
      return p;
    };
    try {
      const workers = await Promise.all(Array.from({ length: WORKERS }, (_, i) => start(`w-${i}`, `w-${i}`, 'worker')));
      const apis = await Promise.all(Array.from({ length: APIS }, (_, i) => start(`api-${i}`, `api-${i}`, 'api')));
      const backends = apis.map((p) => lb.add(p));
      const url = await lb.listen();
      await waitFor(() => backends.every((b) => b.ready), { timeoutMs: 30_000, what: 'the API processes ready behind the balancer' });
      const stream = new MixedStream(new ClusterClient({ apiUrl: url, opsUrl: apis[0]!.opsUrl }), LANES).start();
      const baselineOps = ctx.quick ? 10 : 30;
      await waitFor(() => stream.durationsMs.length >= baselineOps || stream.errors.length > 0 || undefined, { timeoutMs: 180_000, intervalMs: 200, what: 'baseline operations' });
      const roll = await rollAll({ lb, start, exited: (p) => procs.delete(p) }, workers, apis);
      const after = stream.durationsMs.length;
      await waitFor(() => stream.durationsMs.length >= after + 5 || stream.errors.length > 0 || undefined, { timeoutMs: 120_000, intervalMs: 200, what: 'operations after the roll' });
      await stream.stop();
      const baseline = stream.durationsMs.filter((d) => d.at < roll.startedAt).map((d) => d.ms);
      const during = stream.durationsMs.filter((d) => d.at >= roll.startedAt && d.at <= roll.endedAt).map((d) => d.ms);
      const failed = [...lb.statuses].filter(([status]) => status === 0 || status >= 500).reduce((n, [, count]) => n + count, 0);
      ctx.log(`roll of ${WORKERS} workers and ${APIS} API processes: ${((roll.endedAt - roll.startedAt) / 1_000).toFixed(1)} s, ${during.length} operations during it, ${stream.errors.length} stream errors`);
      for (const e of [...stream.errors, ...lb.failures].slice(0, 5)) ctx.log(`  ${e}`);
      const base = standalone('upgrade.baseline_p99_ms', p99(baseline), 'ms');
      return [
        base,
        relative('upgrade.roll_max_latency_ms', Math.max(0, ...during), 'ms', base),
        standalone('upgrade.roll_s', (roll.endedAt - roll.startedAt) / 1_000, 's'),
        standalone('upgrade.roll_failed_requests', failed + lb.failures.length, 'requests'),
        // A stream lane stops at its first failed step: an operation that never completed.
        standalone('upgrade.roll_ops_failed', stream.errors.length, 'operations'),
      ];
    } finally {
      await lb.close();
      await Promise.all([...procs].map((p) => p.stop()));
    }
  },
};
