import { describe, expect, it } from 'vitest';
import { GOALS } from '../../bench/goals.js';
import type { BenchMeta } from '../../bench/machine.js';
import {
  evaluateGoal,
  formatNumber,
  type Goal,
  goalsTable,
  markdownTable,
  missingFigures,
  ratio,
  REQUIRED_FIGURES,
  renderReport,
  resultsTable,
} from '../../bench/report-core.js';
import { type BenchResult, percentile, relative, standalone } from '../../bench/types.js';

const figure = (name: string, value: number, baseline: string | null = null, baselineValue: number | null = null): BenchResult => ({
  name,
  value,
  unit: 'ops/s',
  baseline,
  baseline_value: baselineValue,
  ratio: ratio(value, baselineValue),
});

/** A results array that satisfies every required figure (values made up, shapes real). */
function complete(): BenchResult[] {
  const results: BenchResult[] = [];
  for (const want of REQUIRED_FIGURES) {
    if (want.baseline !== null && !results.some((r) => r.name === want.baseline)) results.push(figure(want.baseline, 100));
    results.push(figure(want.name, 50, want.baseline, want.baseline === null ? null : 100));
  }
  return results;
}

const meta: BenchMeta = {
  startedAt: '2026-11-21T20:00:00.000Z',
  finishedAt: '2026-11-21T20:10:00.000Z',
  command: 'make bench',
  quick: false,
  filters: [],
  node: 'v20.20.2',
  os: 'Linux 6.1',
  cpuModel: 'Some CPU',
  cpuCount: 2,
  memoryTotalMb: 4_096,
  loadAvgStart: [1.5, 1, 0.5],
  loadAvgEnd: [2.5, 1.5, 0.75],
  etcdVersion: '3.4.23',
  rabbitmqVersion: '3.10.8',
  gitRevision: 'abc1234',
  failures: [],
};

describe('ratio', () => {
  it('is value / baseline, and null without a usable baseline', () => {
    expect(ratio(30, 60)).toBe(0.5);
    expect(ratio(5, null)).toBeNull();
    expect(ratio(5, 0)).toBeNull();
    expect(ratio(Number.NaN, 3)).toBeNull();
  });

  it('agrees with the result builders', () => {
    const base = standalone('etcd.raw_txn_ops_per_s', 400, 'ops/s');
    expect(relative('lock.uncontended_ops_per_s', 300, 'ops/s', base)).toEqual({
      name: 'lock.uncontended_ops_per_s',
      value: 300,
      unit: 'ops/s',
      baseline: 'etcd.raw_txn_ops_per_s',
      baseline_value: 400,
      ratio: 0.75,
    });
    expect(relative('x', 1, 's', standalone('zero', 0, 's')).ratio).toBeNull();
  });
});

describe('percentile', () => {
  it('takes the nearest rank and handles one or no value', () => {
    expect(percentile([5, 1, 4, 2, 3], 50)).toBe(3);
    expect(percentile([5, 1, 4, 2, 3], 100)).toBe(5);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });
});

describe('missingFigures', () => {
  it('accepts a run with every required figure against its baseline', () => {
    expect(missingFigures(complete())).toEqual([]);
  });

  it('names a missing figure, a wrong baseline and a baseline absent from the results', () => {
    const results = complete().filter((r) => r.name !== 'failover.takeover_s');
    const i = results.findIndex((r) => r.name === 'lock.handoff_p50_ms');
    results[i] = figure('lock.handoff_p50_ms', 1, 'etcd.raw_txn_p99_ms', 2);
    const withoutTtl = results.filter((r) => r.name !== 'lease.ttl_s');
    expect(missingFigures(withoutTtl)).toEqual([
      'lock.handoff_p50_ms is compared with etcd.raw_txn_p99_ms, not etcd.raw_txn_p50_ms',
      "failover.detect_s's baseline lease.ttl_s is not in the results",
      'failover.takeover_s is missing',
      "failover.takeover_fenced_s's baseline lease.ttl_s is not in the results",
      "failover.takeover_lock_delay_s's baseline lease.ttl_s is not in the results",
      ...['etcd_leader_stall', 'etcd_leader_stall_max', 'amqp_node_stall', 'amqp_node_stall_max', 'quorum_return_ready', 'quorum_return_ready_max'].map(
        (f) => `failover.${f}_s's baseline lease.ttl_s is not in the results`,
      ),
    ]);
  });

  it('requires issue 12\'s figures of the three-member topology beside the lease TTL', () => {
    const byName = new Map(REQUIRED_FIGURES.map((f) => [f.name, f.baseline]));
    for (const name of ['failover.etcd_leader_stall_s', 'failover.amqp_node_stall_s', 'failover.quorum_return_ready_s']) expect(byName.get(name)).toBe('lease.ttl_s');
    expect(byName.get('failover.etcd_leader_incarnations_lost')).toBeNull();
  });

  it('requires issue 9\'s names with their baselines', () => {
    const byName = new Map(REQUIRED_FIGURES.map((f) => [f.name, f.baseline]));
    expect(byName.get('lock.uncontended_ops_per_s')).toBe('etcd.raw_txn_ops_per_s');
    expect(byName.get('lock.contended_owner_changes_per_s')).toBe('etcd.lock_service_owner_changes_per_s');
    expect(byName.get('transition.c32_ops_per_s')).toBe('etcd.raw_txn_c32_ops_per_s');
    expect(byName.get('failover.detect_s')).toBe('lease.ttl_s');
    expect(byName.get('failover.takeover_fenced_s')).toBe('lease.ttl_s');
    expect(byName.get('failover.takeover_lock_delay_s')).toBe('lease.ttl_s');
    expect(byName.has('memory.rss_mb_10k_volumes')).toBe(true);
  });
});

describe('evaluateGoal', () => {
  const goal = (over: Partial<Goal>): Goal => ({ issue: 3, figure: 'f', of: 'ratio', op: '>=', target: 0.5, text: 't', ...over });

  it('compares the ratio, the value or the excess over the baseline', () => {
    const results = [figure('f', 60, 'b', 100), figure('b', 100)];
    expect(evaluateGoal(goal({}), results)).toMatchObject({ actual: 0.6, met: true });
    expect(evaluateGoal(goal({ target: 0.7 }), results)).toMatchObject({ actual: 0.6, met: false });
    expect(evaluateGoal(goal({ of: 'value', op: '>', target: 60 }), results)).toMatchObject({ actual: 60, met: false });
    expect(evaluateGoal(goal({ of: 'value', op: '<=', target: 60 }), results)).toMatchObject({ actual: 60, met: true });
    expect(evaluateGoal(goal({ of: 'excess', op: '<=', target: -39 }), results)).toMatchObject({ actual: -40, met: true });
    expect(evaluateGoal(goal({ of: 'excess', op: '<=', target: -41 }), results)).toMatchObject({ met: false });
  });

  it('says not measured when the figure or its number is missing', () => {
    expect(evaluateGoal(goal({}), [])).toEqual({ goal: goal({}), actual: null, met: null });
    expect(evaluateGoal(goal({}), [figure('f', 1)]).met).toBeNull();
    expect(evaluateGoal(goal({ of: 'value' }), [figure('f', Number.NaN)]).met).toBeNull();
  });

  it('has goals only for figures a full run reports', () => {
    const reported = new Set([
      ...REQUIRED_FIGURES.map((f) => f.name),
      'lock.contended_worst_share_deviation',
      'failover.detect_max_s',
      'failover.detect_metric_max_s',
      'failover.takeover_fenced_after_expiry_s',
      'lock.uncontended_paired_ops_per_s',
      'lock.handoff_paired_p50_ms',
      'transition.c32_paired_ops_per_s',
      'driver.snapshot_empty_100g_s',
    ]);
    expect(GOALS.filter((g) => !reported.has(g.figure))).toEqual([]);
  });
});

describe('formatting', () => {
  it('formats whole numbers as they are and others to three significant digits', () => {
    expect(formatNumber(1_234_567.8)).toBe('1,234,568');
    expect(formatNumber(999.7)).toBe('1,000');
    expect(formatNumber(512.4)).toBe('512');
    expect(formatNumber(12.345)).toBe('12.3');
    expect(formatNumber(9.9996)).toBe('10.0');
    expect(formatNumber(1.234)).toBe('1.23');
    expect(formatNumber(0.01234)).toBe('0.0123');
    expect(formatNumber(5)).toBe('5');
    expect(formatNumber(-2.5)).toBe('-2.50');
    expect(formatNumber(null)).toBe('—');
    expect(formatNumber(Number.NaN)).toBe('—');
  });

  it('writes Markdown tables, escaping pipes', () => {
    expect(markdownTable(['a', 'b'], [['1', 'x|y']])).toBe('| a | b |\n| --- | --- |\n| 1 | x\\|y |');
  });

  it('puts value, baseline and ratio side by side', () => {
    const table = resultsTable([figure('lock.x', 300, 'etcd.y', 400), figure('etcd.y', 400)]);
    expect(table.split('\n')).toEqual([
      '| figure | value | baseline | baseline value | ratio |',
      '| --- | --- | --- | --- | --- |',
      '| `lock.x` | 300 ops/s | `etcd.y` | 400 | 0.750× |',
      '| `etcd.y` | 400 ops/s |  | — |  |',
    ]);
  });

  it('explains a missed goal and only a missed one', () => {
    const g: Goal = { issue: 5, figure: 'f', of: 'ratio', op: '>=', target: 0.8, text: 'fast enough', whenMissed: 'because' };
    const [met, missed, absent] = goalsTable([
      { goal: g, actual: 0.9, met: true },
      { goal: g, actual: 0.5, met: false },
      { goal: g, actual: null, met: null },
    ])
      .split('\n')
      .slice(2);
    expect(met).toBe('| #5 | fast enough | `f` ratio >= 0.800 | 0.900 | yes |');
    expect(missed).toBe('| #5 | fast enough | `f` ratio >= 0.800 | 0.500 | **no** — because |');
    expect(absent).toBe('| #5 | fast enough | `f` ratio >= 0.800 | — | not measured |');
  });

  it('renders the whole report with the machine, the goal count and the run\'s problems', () => {
    const results = complete();
    const doc = renderReport(results, meta, [{ issue: 3, figure: 'lock.uncontended_ops_per_s', of: 'ratio', op: '>=', target: 0.5, text: 'half a txn' }], 'Preface.');
    expect(doc).toContain('## Goals: 1 of 1 met');
    expect(doc).toContain('| CPU | 2 × Some CPU |');
    expect(doc).toContain('1.5, 1, 0.5 at the start; 2.5, 1.5, 0.75 at the end');
    expect(doc).toContain('(full mode)');
    expect(doc).not.toContain('## Problems of this run');
    const broken = renderReport(results.slice(1), { ...meta, quick: true, failures: [{ suite: 'memory', error: 'boom' }] }, [], '');
    expect(broken).toContain('quick mode');
    expect(broken).toContain('- suite memory failed: boom');
    expect(broken).toContain('## Problems of this run');
  });
});
