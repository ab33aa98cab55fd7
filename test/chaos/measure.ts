/**
 * What each fault cost, measured (pure: no I/O): the stall (longest time with no operation
 * completed around it, {@link stallOf}), the worker incarnations it ended, the API requests
 * refused meanwhile, and how long after recovery every process was ready again. The scenario
 * records the raw samples; {@link measureFault} turns one fault's into numbers, and
 * {@link formatMeasures} prints the per-kind table of `make chaos` with the issue's goals.
 */
import { p50max } from './invariants.js';
import { few, type InvariantRow, row } from './rows.js';
import { type FaultMark, faultLabel, stallOf } from './timeline.js';

/** One readiness poll of every process: those that did not answer 200 (`api`, `w1`, …). */
export interface ReadySample {
  readonly at: number;
  readonly notReady: readonly string[];
}

/** What the scenario recorded around one fault. */
export interface FaultRecord {
  readonly mark: FaultMark;
  /** When the cause was gone: the later of the fault's end and the election that followed it (epoch ms). */
  readonly recoveredAt: number;
  /** Readiness polls from the fault's start until the measurement stopped. */
  readonly samples: readonly ReadySample[];
  /** Worker hosts whose incarnation changed or vanished between before the fault and after it (the overlap's victim left out). */
  readonly endedHosts: readonly string[];
  /** A worker fault run over it (`kill w2`, `zombie w1`), if any. */
  readonly overlap?: string;
  /** The worker that overlap took out: its own readiness is the overlap's cost, not the fault's. */
  readonly victim?: string;
}

/** One fault, measured. */
export interface FaultMeasure {
  readonly kind: string;
  readonly label: string;
  readonly overlap?: string;
  readonly stallMs: number;
  readonly incarnationsEnded: number;
  /** Stream requests answered 5xx or not at all between the fault's start and the end of its recovery. */
  readonly refused: number;
  /** From recovery until every process was ready for good (0: none went not ready after it). */
  readonly readyAfterMs: number;
  /** Longest stretch in which some process was not ready. */
  readonly notReadyMs: number;
  /** False when the polls never saw every process ready again. */
  readonly readyAgain: boolean;
}

/**
 * Measures one fault: `completions` (epoch ms) give the stall, `refusals` (epoch ms of 5xx or
 * unanswered stream requests) the refused count within the fault's window.
 */
export function measureFault(r: FaultRecord, completions: readonly number[], refusals: readonly number[], runEndedAt: number): FaultMeasure {
  const s = r.samples.map((x) => ({ at: x.at, ready: x.notReady.every((h) => h === r.victim) }));
  let lastUp: number | undefined;
  let downFrom: number | undefined;
  let notReadyMs = 0;
  for (const x of s) {
    if (!x.ready && downFrom === undefined) downFrom = x.at;
    if (x.ready && downFrom !== undefined) {
      notReadyMs = Math.max(notReadyMs, x.at - downFrom);
      lastUp = x.at;
      downFrom = undefined;
    }
  }
  // Ready again: the suite's recovery saw every process answer /readyz 200 (mark.readyAt), or
  // the last poll did. A single poll can miss on a loaded machine (each /readyz has 1 s).
  const readyAgain = r.mark.readyAt !== undefined || (s.length > 0 && s[s.length - 1]!.ready);
  const readyAfterMs = lastUp === undefined ? 0 : Math.max(0, lastUp - r.recoveredAt);
  const windowEnd = Math.max(r.mark.endedAt, r.mark.readyAt ?? 0, s.at(-1)?.at ?? 0);
  return {
    kind: r.mark.kind,
    label: faultLabel(r.mark),
    ...(r.overlap ? { overlap: r.overlap } : {}),
    stallMs: stallOf(r.mark, completions, runEndedAt).ms,
    incarnationsEnded: r.endedHosts.length,
    refused: refusals.filter((t) => t >= r.mark.startedAt && t <= windowEnd).length,
    readyAfterMs,
    notReadyMs,
    readyAgain,
  };
}

/** The issue's goal for a fault kind, checked on its measures (alone: without an overlapping worker fault). */
interface Goal {
  readonly text: string;
  readonly met: (alone: readonly FaultMeasure[], all: readonly FaultMeasure[]) => boolean;
}

const ONE_MEMBER_DOWN: Goal = {
  text: 'refused 0, incarnations 0, stall ≤ 3 s',
  met: (alone, all) => all.every((m) => m.refused === 0 && m.incarnationsEnded === 0) && alone.every((m) => m.stallMs <= 3_000),
};

/** Goals from the issue, by fault kind. */
export const GOALS: Readonly<Record<string, Goal>> = {
  'etcd-leader-kill': ONE_MEMBER_DOWN,
  'etcd-member-kill': ONE_MEMBER_DOWN,
  'rabbit-leader-kill': { text: 'stall ≤ 5 s', met: (alone) => alone.every((m) => m.stallMs <= 5_000) },
  'etcd-quorum-loss': { text: 'every process ready ≤ 2 s after quorum returns', met: (_, all) => all.every((m) => m.readyAfterMs <= 2_000) },
};

const sec = (ms: number): string => (ms / 1000).toFixed(1);

/** One line per fault kind: counts, stall, incarnations ended, refused, time to ready, goal. */
export function formatMeasures(measures: readonly FaultMeasure[]): string {
  const kinds = [...new Set(measures.map((m) => m.kind))];
  const header = ['fault', 'n (with a worker fault)', 'stall s: p50 / max alone (max all)', 'incarnations ended', 'refused', 'ready after recovery s: max', 'not ready s: max', 'goal (issue 12)'];
  const lines = kinds.map((kind) => {
    const all = measures.filter((m) => m.kind === kind);
    const alone = all.filter((m) => m.overlap === undefined);
    const st = p50max(alone.map((m) => m.stallMs));
    const stAll = p50max(all.map((m) => m.stallMs));
    const goal = GOALS[kind];
    return [
      kind,
      `${all.length} (${all.length - alone.length})`,
      `${st ? `${sec(st.p50)} / ${sec(st.max)}` : '—'} (${stAll ? sec(stAll.max) : '—'})`,
      String(all.reduce((n, m) => n + m.incarnationsEnded, 0)),
      String(all.reduce((n, m) => n + m.refused, 0)),
      sec(Math.max(...all.map((m) => m.readyAfterMs))),
      sec(Math.max(...all.map((m) => m.notReadyMs))),
      goal ? `${goal.text}: ${goal.met(alone.length > 0 ? alone : all, all) ? 'met' : 'MISSED'}` : '—',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
  return [fmt(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...lines.map(fmt)].join('\n');
}

/**
 * The invariant table's row for each scheduled fault kind: it happened as often as scheduled, and
 * after each one every process was ready again. (The goals are reported, not asserted.)
 */
export function faultRows(measures: readonly FaultMeasure[], scheduled: Readonly<Record<string, number>>): InvariantRow[] {
  return Object.entries(scheduled)
    .filter(([, n]) => n > 0)
    .map(([kind, n]) => {
      const all = measures.filter((m) => m.kind === kind);
      const stuck = all.filter((m) => !m.readyAgain).map((m) => `${m.label}: not every process ready again`);
      const st = p50max(all.map((m) => m.stallMs));
      return row(
        `fault ${kind}: happened, every process ready again after it`,
        all.length >= n && stuck.length === 0,
        stuck.length
          ? few(stuck)
          : `${all.length} of ${n} (${all.filter((m) => m.overlap).length} with a worker fault); stall max ${st ? sec(st.max) : '—'} s; ${all.reduce((k, m) => k + m.incarnationsEnded, 0)} incarnations ended, ${all.reduce((k, m) => k + m.refused, 0)} requests refused`,
      );
    });
}
