/**
 * The fault run's timeline (pure: no I/O). The scenario records when each accepted request's
 * final status was seen and, per fault, its window and when its orphans were detected and taken
 * over and every worker was ready again, and when each dead incarnation was fenced and how;
 * {@link timelineSpec} turns that into a vega-lite spec: operations completed per second (1 s
 * bins) over the run, each fault shaded and labelled, its detection, takeover and recovery
 * marked, and the fences. `timeline-svg.ts` renders and writes it.
 * {@link stallOf} is the per-fault figure "how long no operation completed".
 */
import type { TopLevelSpec } from 'vega-lite';

/** One injected fault and what followed it (epoch ms). */
export interface FaultMark {
  /** As scheduled: `kill`, `zombie`, `partition-pause`, `partition-cut`, `broker-restart`, `etcd-restart`, or an HA fault (`etcd-leader-kill`, …: ha-faults.ts). */
  readonly kind: string;
  /** What it hit: a worker host (`w2`), `RabbitMQ` or `etcd`; an etcd member (`etcd-1 (leader)`) or RabbitMQ node (`rabbit-2`), with a worker fault run over it (`+ kill -9 w3`). */
  readonly target: string;
  /** When the fault began (the kill, the SIGSTOP, the cut, the server stop). */
  readonly startedAt: number;
  /** When it ended: the killed worker started again, SIGCONT, the partition healed, the server up. */
  readonly endedAt: number;
  /** First time the API's orphan view showed an op of a victim (absent: none seen, or not watched). */
  readonly detectedAt?: number;
  /** When no op the victims owned was still theirs (only once detected). */
  readonly takenOverAt?: number;
  /** When every worker answered `/readyz` with 200 again. */
  readonly readyAt?: number;
}

/** A dead incarnation's end on record (etcd's `fenced/<inc>`), without a clean leave. */
export interface FenceMark {
  /** When it was recorded (epoch ms). */
  readonly atMs: number;
  /** The worker whose incarnation it was (`w2`). */
  readonly host: string;
  /** `exec`, `process-gone`, `lock-delay`, `manual`, `self`, … */
  readonly how: string;
}

/** What the timeline is drawn from. */
export interface TimelineRun {
  /** The cluster's topology (`single`: one etcd member, one RabbitMQ node). */
  readonly topology: string;
  readonly seed: number;
  /** When the stream started (epoch ms): zero on the time axis. */
  readonly startedAt: number;
  /** When the stream stopped (epoch ms). */
  readonly endedAt: number;
  /** When the stream saw each accepted request's final status (epoch ms), in any order. */
  readonly completions: readonly number[];
  readonly faults: readonly FaultMark[];
  /** The fences of the run (absent: not recorded). */
  readonly fences?: readonly FenceMark[];
}

/** One 1 s bin: `t` seconds since the start, `ops` completions in [t, t + 1). */
export interface RateBin {
  readonly t: number;
  readonly ops: number;
}

/**
 * Completions per second from `startedAt` to `endedAt`, every bin present (a second without a
 * completion is a 0, not a gap: that is what a stall looks like). Completions outside the run
 * are left out.
 */
export function opsPerSecond(completions: readonly number[], startedAt: number, endedAt: number): RateBin[] {
  const n = Math.max(0, Math.ceil((endedAt - startedAt) / 1_000));
  const counts = Array<number>(n).fill(0);
  for (const c of completions) {
    if (c < startedAt || c >= endedAt) continue;
    const i = Math.floor((c - startedAt) / 1_000);
    counts[i] = (counts[i] ?? 0) + 1;
  }
  return counts.map((ops, t) => ({ t, ops }));
}

/** The longest time without a completion around one fault (epoch ms; `ms` = `to` − `from`). */
export interface Stall {
  readonly from: number;
  readonly to: number;
  readonly ms: number;
}

/**
 * The fault's stall: the longest stretch with no completion that starts while the fault or its
 * recovery is under way — from the fault's start up to the latest of its end, takeover and
 * every worker ready — counted from the fault's start at the earliest, and running until the
 * next completion (or the end of the run, if none came). With completions arriving through a
 * fault, it is the longest gap between two of them.
 */
export function stallOf(fault: FaultMark, completions: readonly number[], runEndedAt: number): Stall {
  const windowEnd = Math.max(fault.endedAt, fault.takenOverAt ?? 0, fault.readyAt ?? 0);
  const sorted = completions.filter((c) => c > fault.startedAt && c <= runEndedAt).sort((a, b) => a - b);
  let best: Stall = { from: fault.startedAt, to: fault.startedAt, ms: 0 };
  let from = fault.startedAt;
  for (const to of [...sorted, runEndedAt]) {
    if (from > windowEnd) break;
    if (to - from > best.ms) best = { from, to, ms: to - from };
    from = to;
  }
  return best;
}

const LABELS: Readonly<Record<string, string>> = {
  kill: 'kill -9',
  zombie: 'SIGSTOP',
  'fence-refused': 'fence refused',
  'partition-pause': 'partition (silent)',
  'partition-cut': 'partition (reset)',
  'broker-restart': 'restart',
  'etcd-restart': 'restart',
  'backend-down': 'backend down',
  'release-swap': 'on the first release',
  freeze: 'freeze',
  failover: 'failover and failback of',
  'etcd-leader-kill': 'kill -9',
  'etcd-member-kill': 'kill -9',
  'etcd-member-freeze': 'SIGSTOP',
  'etcd-member-partition': 'minority partition',
  'etcd-quorum-loss': 'quorum loss: kill -9',
  'rabbit-leader-kill': 'kill -9',
  'rabbit-partition': 'partition',
  'rabbit-freeze': 'SIGSTOP',
};

/** A fault's label: what was done, to what (`kill -9 w2`, `restart RabbitMQ`). */
export function faultLabel(f: Pick<FaultMark, 'kind' | 'target'>): string {
  return `${LABELS[f.kind] ?? f.kind} ${f.target}`;
}

/** The events marked per fault, in legend order, with their shape and colour. */
export const EVENTS = [
  { name: 'fault (shaded: start to end)', shape: 'square', color: '#f58518' },
  { name: 'orphans detected', shape: 'triangle-down', color: '#e45756' },
  { name: 'dead incarnation fenced', shape: 'cross', color: '#222222' },
  { name: 'orphans taken over', shape: 'diamond', color: '#54a24b' },
  { name: 'recovered: every worker ready', shape: 'circle', color: '#4c78a8' },
  // A flat bar: the stall is drawn as one along the time axis.
  { name: 'stall (nothing completed)', shape: 'M-1,-0.35H1V0.35H-1Z', color: '#b279a2' },
] as const;

/** Which of {@link EVENTS} a mark is. */
type EventName = (typeof EVENTS)[number]['name'];
const [FAULT, DETECTED, FENCED, TAKEN_OVER, READY, STALL] = EVENTS.map((e) => e.name) as [EventName, EventName, EventName, EventName, EventName, EventName];

/** Pixels per second of run on the time axis, and the narrowest chart. */
const PX_PER_S = 5;
const MIN_WIDTH = 900;

/** The vega-lite spec of the run's timeline (two panels sharing the time axis). */
export function timelineSpec(run: TimelineRun): TopLevelSpec {
  const s = (t: number): number => Math.round(t - run.startedAt) / 1_000;
  const seconds = Math.max(1, s(run.endedAt));
  const width = Math.max(MIN_WIDTH, Math.round(seconds * PX_PER_S));
  const faults = run.faults.map((f) => ({ event: FAULT, label: faultLabel(f), from: s(f.startedAt), to: s(f.endedAt) }));
  const events = run.faults.flatMap((f) => {
    const at = (event: EventName, t: number | undefined): { event: EventName; label: string; t: number }[] => (t === undefined ? [] : [{ event, label: faultLabel(f), t: s(t) }]);
    return [...at(DETECTED, f.detectedAt), ...at(TAKEN_OVER, f.takenOverAt), ...at(READY, f.readyAt)];
  });
  const fences = (run.fences ?? []).map((f) => ({ event: FENCED, label: `fenced ${f.host} (${f.how})`, t: s(f.atMs) }));
  const stalls = run.faults.map((f) => {
    const st = stallOf(f, run.completions, run.endedAt);
    return { event: STALL, label: faultLabel(f), from: s(st.from), to: s(st.to), ms: st.ms };
  });
  const rate = opsPerSecond(run.completions, run.startedAt, run.endedAt);
  const peak = Math.max(1, ...rate.map((r) => r.ops));
  const x: { scale: { domain: number[]; nice: boolean }; axis: { title: string | null; grid: boolean } } = { scale: { domain: [0, seconds], nice: false }, axis: { title: `seconds since the stream started (run of ${seconds.toFixed(0)} s; 1 s bins)`, grid: false } };
  // The top panel shares the time axis; one axis title is enough.
  const xTop = { ...x, axis: { ...x.axis, title: null } };
  const legend = { title: null, orient: 'top' as const, direction: 'horizontal' as const };
  const color = { field: 'event', type: 'nominal' as const, scale: { domain: EVENTS.map((e) => e.name), range: EVENTS.map((e) => e.color) }, legend };
  const shape = { field: 'event', type: 'nominal' as const, scale: { domain: EVENTS.map((e) => e.name), range: EVENTS.map((e) => e.shape) }, legend };
  const spans = (axis: typeof x) => ({
    data: { values: faults },
    mark: { type: 'rect' as const, opacity: 0.18 },
    encoding: { x: { field: 'from', type: 'quantitative' as const, ...axis }, x2: { field: 'to' }, color, tooltip: [{ field: 'label' }, { field: 'from' }, { field: 'to' }] },
  });
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `hearth fault run — topology ${run.topology}`,
      subtitle: `seed ${run.seed}; ${run.faults.length} faults; ${run.fences ? `${run.fences.length} fences; ` : ''}${run.completions.length} operations completed; ${new Date(run.startedAt).toISOString().slice(0, 19).replace('T', ' ')} UTC`,
      anchor: 'start',
    },
    background: 'white',
    config: { view: { stroke: '#ddd' }, axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11, symbolSize: 90, symbolOpacity: 0.8, labelLimit: 260 } },
    resolve: { scale: { x: 'shared' } },
    vconcat: [
      {
        width,
        height: 150,
        layer: [
          spans(xTop),
          {
            data: { values: faults },
            mark: { type: 'text', angle: 270, align: 'right', baseline: 'top', dx: -4, dy: 2, fontSize: 10, color: '#333' },
            encoding: { x: { field: 'from', type: 'quantitative', ...xTop }, y: { value: 0 }, text: { field: 'label' } },
          },
          {
            data: { values: [...events, ...fences] },
            mark: { type: 'point', filled: true, size: 70, opacity: 0.9 },
            encoding: {
              x: { field: 't', type: 'quantitative', ...xTop },
              y: { field: 'event', type: 'nominal', scale: { domain: [DETECTED, FENCED, TAKEN_OVER, READY], paddingOuter: 0.2 }, axis: { title: null, labelFontSize: 10, labelLimit: 240 } },
              color,
              shape,
              tooltip: [{ field: 'label' }, { field: 'event' }, { field: 't', title: 's' }],
            },
          },
        ],
      },
      {
        width,
        height: 240,
        layer: [
          spans(x),
          {
            data: { values: stalls },
            mark: { type: 'rect', opacity: 0.9, height: 6, y: 238 },
            encoding: { x: { field: 'from', type: 'quantitative', ...x }, x2: { field: 'to' }, color, tooltip: [{ field: 'label' }, { field: 'ms', title: 'stall ms' }] },
          },
          {
            data: { values: rate },
            mark: { type: 'area', interpolate: 'step-after', color: '#4c78a8', opacity: 0.25, line: { color: '#4c78a8', strokeWidth: 1.2 } },
            encoding: {
              x: { field: 't', type: 'quantitative', ...x },
              y: { field: 'ops', type: 'quantitative', scale: { domain: [0, peak] }, axis: { title: 'operations completed per second', tickMinStep: 1 } },
            },
          },
        ],
      },
    ],
  };
  return spec;
}
