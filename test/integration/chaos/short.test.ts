// The fault suite, short: three workers and an API process on a private etcd and RabbitMQ run a
// stream of mixed operations while a few workers are killed, one is frozen past its lease (its
// fence kills it), one is frozen with its fence refused until it is confirmed by hand, one is cut
// off etcd, one's backend goes down and comes back, one is rolled back to the first release
// (v0.1.0) for a while and forward again, the cluster is frozen and thawed, failed over to the
// fake driver's replication target and back, and RabbitMQ and etcd restart; bad API
// requests and AMQP messages are mixed in; the stream force-deletes volumes mid-extend.
// Fencing is on (exec: test/support/fence-kill.mjs). Every invariant of test/chaos/invariants.ts
// must hold — the overlap row without exception — and the run's timeline is drawn (to a temp
// dir). `make chaos` runs the long version.
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatFences } from '../../chaos/fence-invariants.js';
import { formatTable } from '../../chaos/invariants.js';
import { runChaos } from '../../chaos/scenario.js';
import { writeTimeline } from '../../chaos/timeline-svg.js';
import { faultLabel } from '../../chaos/timeline.js';
import { svgProblems } from '../../support/svg.js';

describe('fault suite (short)', () => {
  it('loses nothing, overlaps nothing, accepts no fenced write and moves no dead worker\'s work before its fence under kills, a zombie, a refused fence, a partition and server restarts', async () => {
    const result = await runChaos({
      kills: 3,
      zombies: 1,
      refusedFences: 1,
      partitions: 1,
      brokerRestarts: 1,
      etcdRestarts: 1,
      backendDowns: 1,
      releaseSwaps: 1,
      freezes: 1,
      failovers: 1,
      maxSeconds: 210,
      leaseTtlMs: 3_000,
      latencyMs: 400,
      streams: 4,
      topology: 'single',
      seed: Number(process.env.CHAOS_SEED ?? Date.now() % 1_000_000),
      log: (line) => console.log(`[chaos] ${line}`),
    });
    console.log(`[chaos] ${result.seconds.toFixed(0)} s; faults ${JSON.stringify(result.faults)}; ${result.settle}\n${formatFences(result.fences, result.timeline.startedAt)}\n${formatTable(result.rows)}`);
    expect(result.faults.kill).toBe(3);
    expect(result.faults.zombie).toBe(1);
    expect(result.faults['fence-refused']).toBe(1);
    expect(result.faults['release-swap']).toBe(1);
    expect(result.faults.freeze).toBe(1);
    expect(result.faults.failover).toBe(1);
    expect(result.rows.map((r) => r.name)).toContain('replication: no member writes to the old primary while failed over');
    expect(result.rows.map((r) => r.name)).toContain('upgrade: the first release served beside the current tree');
    // The frozen worker was fenced by the exec fence (killed), the refused one by the operator.
    expect(result.fences.map((f) => f.how)).toEqual(expect.arrayContaining(['exec', 'manual', 'process-gone']));
    expect(result.record.accepted.length).toBeGreaterThan(20);
    expect(result.rows.filter((r) => r.result === 'FAIL')).toEqual([]);

    const { timeline } = result;
    expect(timeline.completions.length).toBe(result.record.accepted.filter((a) => a.final !== undefined).length);
    expect(timeline.faults.filter((f) => f.kind === 'kill')).toHaveLength(3);
    expect(timeline.fences).toHaveLength(result.fences.length);
    const files = await writeTimeline(join(await mkdtemp(join(tmpdir(), 'hearth-chaos-timeline-')), 'results'), timeline);
    console.log(`[chaos] timeline: ${files.svg}`);
    const svg = await readFile(files.latest, 'utf8');
    expect(svgProblems(svg)).toEqual([]);
    for (const f of timeline.faults) expect(svg).toContain(faultLabel(f));
  }, 420_000);
});
