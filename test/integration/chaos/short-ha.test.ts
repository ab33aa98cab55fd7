// The fault suite, short, on the production topology (CHAOS_TOPOLOGY=ha): three workers and an
// API process on a three-member etcd (every member in their endpoints) and a three-node
// RabbitMQ (every node in their AMQP URL list) run the stream of mixed operations while the etcd
// leader is killed (a worker killed with it), a member is cut from its peers while its clients
// still reach it, the RabbitMQ node leading the cluster queue is killed, and a worker is killed
// on its own. Every invariant of test/chaos/invariants.ts must hold, and every fault must end
// with every process ready again. Stalls and times to ready are printed, never asserted.
// `CHAOS_TOPOLOGY=ha make chaos` runs the long version. A server that cannot start fails the
// test with its name (the harness throws; nothing is skipped).
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatFences } from '../../chaos/fence-invariants.js';
import { formatTable } from '../../chaos/invariants.js';
import { formatMeasures } from '../../chaos/measure.js';
import { runChaos } from '../../chaos/scenario.js';
import { writeTimeline } from '../../chaos/timeline-svg.js';
import { faultLabel } from '../../chaos/timeline.js';
import { svgProblems } from '../../support/svg.js';

describe('fault suite (short, ha topology)', () => {
  it('loses nothing, overlaps nothing and accepts no fenced write under an etcd leader kill with a worker kill, a minority partition, a RabbitMQ queue-leader kill and a worker kill', async () => {
    const result = await runChaos({
      kills: 1,
      zombies: 0,
      refusedFences: 0,
      partitions: 0,
      brokerRestarts: 0,
      etcdRestarts: 0,
      haFaults: { 'etcd-leader-kill': 1, 'etcd-member-partition': 1, 'rabbit-leader-kill': 1 },
      overlaps: ['etcd-leader-kill'],
      maxSeconds: 200,
      leaseTtlMs: 3_000,
      latencyMs: 400,
      streams: 4,
      topology: 'ha',
      seed: Number(process.env.CHAOS_SEED ?? Date.now() % 1_000_000),
      log: (line) => console.log(`[chaos-ha] ${line}`),
    });
    console.log(`[chaos-ha] ${result.seconds.toFixed(0)} s; faults ${JSON.stringify(result.faults)}; ${result.settle}\n${formatFences(result.fences, result.timeline.startedAt)}\n${formatMeasures(result.measures)}\n${formatTable(result.rows)}`);
    expect(result.faults['etcd-leader-kill']).toBe(1);
    expect(result.faults['etcd-member-partition']).toBe(1);
    expect(result.faults['rabbit-leader-kill']).toBe(1);
    // One kill on its own, one run over the etcd leader's kill.
    expect(result.faults.kill).toBe(2);
    expect(result.measures.filter((m) => m.overlap !== undefined).map((m) => m.kind)).toEqual(['etcd-leader-kill']);
    expect(result.elections.length).toBeGreaterThan(0);
    expect(result.record.accepted.length).toBeGreaterThan(20);
    expect(result.rows.filter((r) => r.result === 'FAIL')).toEqual([]);

    const { timeline } = result;
    expect(timeline.topology).toBe('ha');
    const files = await writeTimeline(join(await mkdtemp(join(tmpdir(), 'hearth-chaos-timeline-')), 'results'), timeline);
    console.log(`[chaos-ha] timeline: ${files.svg}`);
    expect(files.latest).toMatch(/timeline-ha\.svg$/);
    const svg = await readFile(files.latest, 'utf8');
    expect(svgProblems(svg)).toEqual([]);
    for (const f of timeline.faults) expect(svg).toContain(faultLabel(f));
  }, 420_000);
});
