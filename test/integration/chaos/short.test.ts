// The fault suite, short: three workers and an API process on a private etcd and RabbitMQ run a
// stream of mixed operations while a few workers are killed, one is frozen past its lease, one is
// cut off etcd, and RabbitMQ and etcd restart; bad API requests and AMQP messages are mixed in.
// Every invariant of test/chaos/invariants.ts must hold. `make chaos` runs the long version.
import { describe, expect, it } from 'vitest';
import { formatTable } from '../../chaos/invariants.js';
import { runChaos } from '../../chaos/scenario.js';

describe('fault suite (short)', () => {
  it('loses nothing, overlaps nothing, accepts no fenced write under kills, a zombie, a partition and server restarts', async () => {
    const result = await runChaos({
      kills: 3,
      zombies: 1,
      partitions: 1,
      brokerRestarts: 1,
      etcdRestarts: 1,
      maxSeconds: 150,
      leaseTtlMs: 3_000,
      latencyMs: 400,
      streams: 4,
      seed: Number(process.env.CHAOS_SEED ?? Date.now() % 1_000_000),
      log: (line) => console.log(`[chaos] ${line}`),
    });
    console.log(`[chaos] ${result.seconds.toFixed(0)} s; faults ${JSON.stringify(result.faults)}; ${result.settle}\n${formatTable(result.rows)}`);
    expect(result.faults.kill).toBe(3);
    expect(result.record.accepted.length).toBeGreaterThan(20);
    expect(result.rows.filter((r) => r.result === 'FAIL')).toEqual([]);
  }, 300_000);
});
