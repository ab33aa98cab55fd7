import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderTimelineSvg, writeTimeline } from '../../chaos/timeline-svg.js';
import { EVENTS, type FaultMark, faultLabel, opsPerSecond, stallOf, type TimelineRun, timelineSpec } from '../../chaos/timeline.js';
import { svgProblems } from '../../support/svg.js';

const T0 = Date.UTC(2026, 11, 6, 10, 0, 0);
const at = (s: number): number => T0 + s * 1_000;

/** A kill at 5 s (all marks), a RabbitMQ restart at 20 s (no orphans), in a 30 s run. */
const kill: FaultMark = { kind: 'kill', target: 'w2', startedAt: at(5), endedAt: at(8.5), detectedAt: at(7.8), takenOverAt: at(9.2), readyAt: at(10) };
const broker: FaultMark = { kind: 'broker-restart', target: 'RabbitMQ', startedAt: at(20), endedAt: at(24), readyAt: at(25) };
/** A completion every 0.25 s, none from 5.1 s to 7 s and from 20 s to 25.5 s. */
const completions = Array.from({ length: 120 }, (_, i) => i * 0.25)
  .filter((s) => !(s > 5.1 && s < 7) && !(s >= 20 && s < 25.5))
  .map(at);
const run: TimelineRun = { topology: 'single', seed: 4242, startedAt: T0, endedAt: at(30), completions, faults: [kill, broker] };

describe('opsPerSecond', () => {
  it('counts completions in 1 s bins from the start, every second present, a quiet second as 0', () => {
    const bins = opsPerSecond([T0, T0 + 999, T0 + 1_000, T0 + 3_500, T0 - 1, T0 + 4_000], T0, T0 + 3_600);
    expect(bins).toEqual([
      { t: 0, ops: 2 },
      { t: 1, ops: 1 },
      { t: 2, ops: 0 },
      { t: 3, ops: 1 },
    ]);
  });

  it('is empty for an empty run', () => {
    expect(opsPerSecond([T0], T0, T0)).toEqual([]);
  });
});

describe('stallOf', () => {
  it('is the longest gap without a completion while the fault or its recovery is under way, from the fault’s start at the earliest', () => {
    expect(stallOf(kill, completions, run.endedAt)).toEqual({ from: at(5), to: at(7), ms: 2_000 });
    expect(stallOf(broker, completions, run.endedAt)).toEqual({ from: at(20), to: at(25.5), ms: 5_500 });
  });

  it('counts a gap that starts inside the window in full, and none that starts after it', () => {
    const f: FaultMark = { kind: 'zombie', target: 'w1', startedAt: at(1), endedAt: at(2), readyAt: at(3) };
    expect(stallOf(f, [at(0.5), at(1.5), at(2.9), at(6), at(7), at(20)], at(30))).toEqual({ from: at(2.9), to: at(6), ms: 3_100 });
  });

  it('runs to the end of the run when nothing completed after the fault, in any order of completions', () => {
    const f: FaultMark = { kind: 'etcd-restart', target: 'etcd', startedAt: at(10), endedAt: at(13) };
    expect(stallOf(f, [at(9), at(2), at(5)], at(30))).toEqual({ from: at(10), to: at(30), ms: 20_000 });
  });
});

describe('timelineSpec', () => {
  const spec = JSON.parse(JSON.stringify(timelineSpec(run))) as { title: { text: string }; vconcat: { width: number; layer: { mark: { type: string }; data: { values: Record<string, unknown>[] } }[] }[] };
  const layers = spec.vconcat.flatMap((p) => p.layer);
  const values = (type: string): Record<string, unknown>[] => layers.filter((l) => l.mark.type === type).flatMap((l) => l.data.values);

  it('carries the topology in its title', () => {
    expect(spec.title.text).toContain('topology single');
  });

  it('draws the completions per second as an area over every 1 s bin of the run', () => {
    expect(values('area')).toHaveLength(30);
    expect(values('area')[22]).toEqual({ t: 22, ops: 0 });
    expect(values('area')[1]).toEqual({ t: 1, ops: 4 });
  });

  it('shades and labels each fault, and marks its detection, takeover and recovery in seconds since the start', () => {
    expect(values('text').map((v) => v.label)).toEqual(['kill -9 w2', 'restart RabbitMQ']);
    expect(values('rect').filter((v) => v.event === EVENTS[0].name)).toEqual(
      expect.arrayContaining([
        { event: EVENTS[0].name, label: 'kill -9 w2', from: 5, to: 8.5 },
        { event: EVENTS[0].name, label: 'restart RabbitMQ', from: 20, to: 24 },
      ]),
    );
    expect(values('point')).toEqual([
      { event: 'orphans detected', label: 'kill -9 w2', t: 7.8 },
      { event: 'orphans taken over', label: 'kill -9 w2', t: 9.2 },
      { event: 'recovered: every worker ready', label: 'kill -9 w2', t: 10 },
      { event: 'recovered: every worker ready', label: 'restart RabbitMQ', t: 25 },
    ]);
  });

  it('marks each fence (the end of a dead incarnation on record) with its host and how, beside the faults’ marks', () => {
    const withFences = timelineSpec({ ...run, fences: [{ atMs: at(8.1), host: 'w2', how: 'process-gone' }] }) as unknown as typeof spec;
    const points = withFences.vconcat.flatMap((p) => p.layer).filter((l) => l.mark.type === 'point').flatMap((l) => l.data.values);
    expect(points).toContainEqual({ event: 'dead incarnation fenced', label: 'fenced w2 (process-gone)', t: 8.1 });
    expect(JSON.stringify(withFences)).toContain('1 fences;');
    expect(faultLabel({ kind: 'fence-refused', target: 'w1' })).toBe('fence refused w1');
  });

  it('draws each fault’s stall', () => {
    expect(values('rect').filter((v) => v.event === 'stall (nothing completed)')).toEqual([
      { event: 'stall (nothing completed)', label: 'kill -9 w2', from: 5, to: 7, ms: 2_000 },
      { event: 'stall (nothing completed)', label: 'restart RabbitMQ', from: 20, to: 25.5, ms: 5_500 },
    ]);
  });

  it('is wider for a longer run (5 px per second, 900 px at least)', () => {
    expect(spec.vconcat[0]?.width).toBe(900);
    const long = timelineSpec({ ...run, endedAt: at(400) }) as unknown as { vconcat: { width: number }[] };
    expect(long.vconcat[0]?.width).toBe(2_000);
  });
});

describe('faultLabel', () => {
  it('says what was done to what', () => {
    expect([
      faultLabel({ kind: 'zombie', target: 'w3' }),
      faultLabel({ kind: 'partition-pause', target: 'w1' }),
      faultLabel({ kind: 'partition-cut', target: 'w1' }),
      faultLabel({ kind: 'etcd-restart', target: 'etcd' }),
      faultLabel({ kind: 'new-kind', target: 'x' }),
    ]).toEqual(['SIGSTOP w3', 'partition (silent) w1', 'partition (reset) w1', 'restart etcd', 'new-kind x']);
  });
});

describe('the SVG', () => {
  it('renders a small run to a well-formed SVG with the faults, the legend and the axes', async () => {
    const svg = await renderTimelineSvg(run);
    expect(svgProblems(svg)).toEqual([]);
    for (const text of ['hearth fault run — topology single', 'kill -9 w2', 'restart RabbitMQ', ...EVENTS.map((e) => e.name), 'operations completed per second', 'seconds since the stream started'])
      expect(svg).toContain(text);
  });

  it('is written with its data and as the topology’s latest', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'hearth-timeline-')), 'results');
    const files = await writeTimeline(dir, run);
    expect(files.latest).toBe(join(dir, 'timeline-single.svg'));
    expect(files.svg).toBe(join(dir, 'timeline-single-20261206-100000-seed4242.svg'));
    expect(await readFile(files.latest, 'utf8')).toBe(await readFile(files.svg, 'utf8'));
    expect(JSON.parse(await readFile(files.data, 'utf8'))).toEqual(run);
  });

  it('refuses a topology name that is not a plain file name', async () => {
    await expect(writeTimeline(tmpdir(), { ...run, topology: '../x' })).rejects.toThrow(/topology/);
  });
});
