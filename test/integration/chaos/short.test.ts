// The fault suite, short: three workers and an API process on a private etcd and RabbitMQ run a
// stream of mixed operations while a few workers are killed, one is frozen past its lease, one is
// cut off etcd, and RabbitMQ and etcd restart; bad API requests and AMQP messages are mixed in.
// Every invariant of test/chaos/invariants.ts must hold, and the run's timeline is drawn (to a
// temp dir). `make chaos` runs the long version.
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatTable } from '../../chaos/invariants.js';
import { runChaos } from '../../chaos/scenario.js';
import { writeTimeline } from '../../chaos/timeline-svg.js';
import { faultLabel } from '../../chaos/timeline.js';
import { svgProblems } from '../../support/svg.js';

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
      topology: 'single',
      seed: Number(process.env.CHAOS_SEED ?? Date.now() % 1_000_000),
      log: (line) => console.log(`[chaos] ${line}`),
    });
    console.log(`[chaos] ${result.seconds.toFixed(0)} s; faults ${JSON.stringify(result.faults)}; ${result.settle}\n${formatTable(result.rows)}`);
    expect(result.faults.kill).toBe(3);
    expect(result.record.accepted.length).toBeGreaterThan(20);
    expect(result.rows.filter((r) => r.result === 'FAIL')).toEqual([]);

    const { timeline } = result;
    expect(timeline.completions.length).toBe(result.record.accepted.filter((a) => a.final !== undefined).length);
    expect(timeline.faults.filter((f) => f.kind === 'kill')).toHaveLength(3);
    const files = await writeTimeline(join(await mkdtemp(join(tmpdir(), 'hearth-chaos-timeline-')), 'results'), timeline);
    console.log(`[chaos] timeline: ${files.svg}`);
    const svg = await readFile(files.latest, 'utf8');
    expect(svgProblems(svg)).toEqual([]);
    for (const f of timeline.faults) expect(svg).toContain(faultLabel(f));
  }, 300_000);
});
