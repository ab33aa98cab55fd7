// The pure part of the benchmark report: which figures a run must have, the goals the issues set,
// their evaluation and the Markdown of docs/benchmarks.md. No I/O (report.ts reads and writes).
import type { BenchMeta } from './machine.js';
import type { BenchResult } from './types.js';

/** A figure every full run must report, with the baseline it must be compared with (null: none). */
export interface RequiredFigure {
  readonly name: string;
  readonly baseline: string | null;
}

/** Issue 9's list, issue 13's fence figures, issue 12's figures of the three-member topology, issue 18's request counts and scale-out, issue 21's scale figures and issue 17's replication failover. */
export const REQUIRED_FIGURES: readonly RequiredFigure[] = [
  { name: 'scale.list_p50_ms_100k_etcd', baseline: 'scale.list_p50_ms_1k_etcd' },
  { name: 'scale.list_status_p50_ms_100k_etcd', baseline: 'scale.list_status_p50_ms_1k_etcd' },
  { name: 'scale.list_p50_ms_100k_sqlite', baseline: 'scale.list_p50_ms_1k_sqlite' },
  { name: 'scale.list_status_p50_ms_100k_sqlite', baseline: 'scale.list_status_p50_ms_1k_sqlite' },
  { name: 'scale.etcd_bytes_per_list_100k', baseline: 'scale.etcd_bytes_per_list_1k' },
  { name: 'scale.etcd_bytes_per_status_list_100k', baseline: 'scale.etcd_bytes_per_status_list_1k' },
  { name: 'scale.rss_mb_after_walk_api_etcd', baseline: 'scale.rss_mb_idle_api_etcd' },
  { name: 'scale.rss_mb_after_ops_api_etcd', baseline: 'scale.rss_mb_idle_api_etcd' },
  { name: 'scale.rss_mb_after_walk_worker_etcd', baseline: 'scale.rss_mb_idle_worker_etcd' },
  { name: 'scale.rss_mb_after_ops_worker_etcd', baseline: 'scale.rss_mb_idle_worker_etcd' },
  { name: 'scale.rss_mb_after_walk_sqlite', baseline: 'scale.rss_mb_idle_sqlite' },
  { name: 'scale.rss_mb_after_ops_sqlite', baseline: 'scale.rss_mb_idle_sqlite' },
  { name: 'scale.cinder_list_ms_per_page_100k_etcd', baseline: 'scale.cinder_list_ms_per_page_1k_etcd' },
  { name: 'scale.cinder_status_ms_per_page_100k_etcd', baseline: 'scale.cinder_list_ms_per_page_1k_etcd' },
  { name: 'scale.cinder_name_ms_per_page_100k_etcd', baseline: 'scale.cinder_name_ms_per_page_1k_etcd' },
  { name: 'scale.cinder_list_request_ms_per_page_100k_etcd', baseline: 'scale.cinder_list_request_ms_per_page_1k_etcd' },
  { name: 'scale.cinder_status_request_ms_per_page_100k_etcd', baseline: 'scale.cinder_list_request_ms_per_page_1k_etcd' },
  { name: 'scale.cinder_name_request_ms_per_page_100k_etcd', baseline: 'scale.cinder_name_request_ms_per_page_1k_etcd' },
  { name: 'scale.cinder_list_ms_per_page_100k_sqlite', baseline: 'scale.cinder_list_ms_per_page_1k_sqlite' },
  { name: 'scale.cinder_status_ms_per_page_100k_sqlite', baseline: 'scale.cinder_list_ms_per_page_1k_sqlite' },
  { name: 'scale.cinder_name_ms_per_page_100k_sqlite', baseline: 'scale.cinder_name_ms_per_page_1k_sqlite' },
  { name: 'scale.cinder_list_request_ms_per_page_100k_sqlite', baseline: 'scale.cinder_list_request_ms_per_page_1k_sqlite' },
  { name: 'scale.cinder_status_request_ms_per_page_100k_sqlite', baseline: 'scale.cinder_list_request_ms_per_page_1k_sqlite' },
  { name: 'scale.cinder_name_request_ms_per_page_100k_sqlite', baseline: 'scale.cinder_name_request_ms_per_page_1k_sqlite' },
  { name: 'lock.uncontended_ops_per_s', baseline: 'etcd.raw_txn_ops_per_s' },
  { name: 'lock.uncontended_vs_etcd3_lock', baseline: 'etcd3.lock_ops_per_s' },
  { name: 'lock.handoff_p50_ms', baseline: 'etcd.raw_txn_p50_ms' },
  { name: 'lock.contended_owner_changes_per_s', baseline: 'etcd.lock_service_owner_changes_per_s' },
  { name: 'lock.local_ops_per_s', baseline: null },
  { name: 'transition.c32_ops_per_s', baseline: 'etcd.raw_txn_c32_ops_per_s' },
  { name: 'transition.sqlite_ops_per_s', baseline: 'sqlite.raw_update_ops_per_s' },
  { name: 'e2e.ops_per_s_3_workers', baseline: 'e2e.ops_per_s_1_worker' },
  { name: 'e2e.ops_per_s_single_node', baseline: null },
  { name: 'e2e.ops_per_s_3_workers_vs_single_node', baseline: 'e2e.ops_per_s_single_node' },
  { name: 'failover.detect_s', baseline: 'lease.ttl_s' },
  { name: 'failover.takeover_s', baseline: 'lease.ttl_s' },
  { name: 'failover.takeover_fenced_s', baseline: 'lease.ttl_s' },
  { name: 'failover.takeover_lock_delay_s', baseline: 'lease.ttl_s' },
  { name: 'failover.etcd_leader_stall_s', baseline: 'lease.ttl_s' },
  { name: 'failover.etcd_leader_stall_max_s', baseline: 'lease.ttl_s' },
  { name: 'failover.etcd_leader_incarnations_lost', baseline: null },
  { name: 'failover.etcd_leader_requests_refused', baseline: null },
  { name: 'failover.amqp_node_stall_s', baseline: 'lease.ttl_s' },
  { name: 'failover.amqp_node_stall_max_s', baseline: 'lease.ttl_s' },
  { name: 'failover.ha_ops_lost', baseline: null },
  { name: 'failover.ha_calls_run_twice', baseline: null },
  { name: 'failover.quorum_return_ready_s', baseline: 'lease.ttl_s' },
  { name: 'failover.quorum_return_ready_max_s', baseline: 'lease.ttl_s' },
  { name: 'memory.rss_mb_10k_volumes', baseline: 'memory.rss_mb_idle' },
  { name: 'lock.uncontended_ops_per_s_3_workers', baseline: 'lock.uncontended_ops_per_s_1_worker' },
  { name: 'transition.ops_per_s_3_workers', baseline: 'transition.ops_per_s_1_worker' },
  { name: 'e2e.etcd_requests_per_op', baseline: null },
  { name: 'e2e.cpu_ms_per_op_1_worker', baseline: null },
  { name: 'e2e.ops_per_s_3_workers_latency', baseline: 'e2e.ops_per_s_1_worker_latency' },
  { name: 'e2e.ops_per_s_6_workers_latency', baseline: 'e2e.ops_per_s_1_worker_latency' },
  { name: 'upgrade.roll_max_latency_ms', baseline: 'upgrade.baseline_p99_ms' },
  { name: 'e2e.ops_per_s_1_worker_vs_raw_txn_c32', baseline: 'etcd.raw_txn_c32_ops_per_s' },
  { name: 'e2e.ops_per_s_single_node_vs_raw_sqlite', baseline: 'e2e.sqlite_raw_update_ops_per_s' },
  { name: 'lock.handoff_vs_lock_service_p50_ms', baseline: 'etcd.lock_service_handoff_p50_ms' },
  { name: 'upgrade.roll_failed_requests', baseline: null },
  { name: 'upgrade.roll_ops_failed', baseline: null },
  { name: 'copies.clones_per_s_distinct_sources', baseline: 'copies.creates_per_s' },
  { name: 'copies.clones_per_s_one_source', baseline: 'copies.clones_per_s_distinct_sources' },
  { name: 'driver.clone_empty_100g_s', baseline: 'driver.cp_sparse_empty_100g_s' },
  { name: 'replication.failover_s', baseline: 'replication.create_p50_s' },
  { name: 'replication.failback_s', baseline: 'replication.create_p50_s' },
  { name: 'replication.ops_stalled_s', baseline: 'replication.failover_s' },
  { name: 'replication.ops_failed', baseline: null },
  { name: 'replication.frozen_refusals', baseline: null },
  { name: 'replication.old_primary_writes_after_failover', baseline: null },
];

/** value / baseline; null when there is no baseline or it is zero (or either is not a number). */
export function ratio(value: number, baseline: number | null): number | null {
  if (baseline === null || baseline === 0 || !Number.isFinite(value) || !Number.isFinite(baseline)) return null;
  return value / baseline;
}

/** What is wrong with a run's results against {@link REQUIRED_FIGURES}; empty when nothing. */
export function missingFigures(results: readonly BenchResult[], required: readonly RequiredFigure[] = REQUIRED_FIGURES): string[] {
  const byName = new Map(results.map((r) => [r.name, r]));
  const problems: string[] = [];
  for (const want of required) {
    const got = byName.get(want.name);
    if (!got) problems.push(`${want.name} is missing`);
    else if (got.baseline !== want.baseline) problems.push(`${want.name} is compared with ${got.baseline ?? 'nothing'}, not ${want.baseline ?? 'nothing'}`);
    else if (got.baseline !== null && !byName.has(got.baseline)) problems.push(`${want.name}'s baseline ${got.baseline} is not in the results`);
  }
  return problems;
}

/** A goal an issue set for a figure. */
export interface Goal {
  readonly issue: number;
  readonly figure: string;
  /** What is compared: the ratio, the value, or the value minus its baseline. */
  readonly of: 'ratio' | 'value' | 'excess';
  readonly op: '>=' | '>' | '<=';
  readonly target: number;
  /** The goal in words, as the issue says it. */
  readonly text: string;
  /** Why it can be missed here, shown only when it was. */
  readonly whenMissed?: string;
}

/** A goal and how the run did. `met` is null when the figure is missing. */
export interface GoalOutcome {
  readonly goal: Goal;
  readonly actual: number | null;
  readonly met: boolean | null;
}

/** Compares one goal with the run's results. */
export function evaluateGoal(goal: Goal, results: readonly BenchResult[]): GoalOutcome {
  const r = results.find((x) => x.name === goal.figure);
  let actual: number | null = null;
  if (r) {
    if (goal.of === 'value') actual = r.value;
    else if (goal.of === 'ratio') actual = r.ratio ?? ratio(r.value, r.baseline_value);
    else actual = r.baseline_value === null ? null : r.value - r.baseline_value;
  }
  if (actual === null || !Number.isFinite(actual)) return { goal, actual: null, met: null };
  const met = goal.op === '>=' ? actual >= goal.target : goal.op === '>' ? actual > goal.target : actual <= goal.target;
  return { goal, actual, met };
}

/** A whole number as is, anything else with three significant digits; thousands grouped; `—` for none. */
export function formatNumber(n: number | null): string {
  if (n === null || !Number.isFinite(n)) return '—';
  const rounded = n.toPrecision(3);
  if (Number.isInteger(n) || Math.abs(Number(rounded)) >= 1_000) return Math.round(n).toLocaleString('en-US');
  return rounded;
}

/** A Markdown table; cells are escaped for pipes. */
export function markdownTable(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const cell = (c: string): string => c.replaceAll('|', '\\|');
  const line = (cells: readonly string[]): string => `| ${cells.map(cell).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The results as a Markdown table: figure, value, baseline, baseline value, ratio. */
export function resultsTable(results: readonly BenchResult[]): string {
  return markdownTable(
    ['figure', 'value', 'baseline', 'baseline value', 'ratio'],
    results.map((r) => [
      `\`${r.name}\``,
      `${formatNumber(r.value)} ${r.unit}`,
      r.baseline === null ? '' : `\`${r.baseline}\``,
      formatNumber(r.baseline_value),
      r.ratio === null ? '' : `${formatNumber(r.ratio)}×`,
    ]),
  );
}

const OF_LABEL: Record<Goal['of'], string> = { ratio: 'ratio', value: 'value', excess: 'over baseline' };

/** The goals as a Markdown table, with the explanation of each one missed. */
export function goalsTable(outcomes: readonly GoalOutcome[]): string {
  return markdownTable(
    ['issue', 'goal', 'figure', 'measured', 'met'],
    outcomes.map((o) => [
      `#${o.goal.issue}`,
      o.goal.text,
      `\`${o.goal.figure}\` ${OF_LABEL[o.goal.of]} ${o.goal.op} ${formatNumber(o.goal.target)}`,
      formatNumber(o.actual),
      o.met === null ? 'not measured' : o.met ? 'yes' : `**no** — ${o.goal.whenMissed ?? 'no explanation recorded'}`,
    ]),
  );
}

/** The machine paragraph of the report. */
export function machineSection(meta: BenchMeta): string {
  const rows: [string, string][] = [
    ['run', `${meta.startedAt} → ${meta.finishedAt}${meta.quick ? ' (**quick mode**: short measurements, figures are rough)' : ' (full mode)'}`],
    ['command', `\`${meta.command}\``],
    ['revision', `\`${meta.gitRevision}\``],
    ['CPU', `${meta.cpuCount} × ${meta.cpuModel}`],
    ['memory', `${formatNumber(meta.memoryTotalMb / 1_024)} GiB`],
    ['OS', meta.os],
    ['load average (1, 5, 15 min)', `${meta.loadAvgStart.join(', ')} at the start; ${meta.loadAvgEnd.join(', ')} at the end`],
    ['Node.js', meta.node],
    ['etcd', `${meta.etcdVersion} (one member, on the same machine; the failover-ha figures: three members)`],
    ['RabbitMQ', `${meta.rabbitmqVersion} (one node, on the same machine; the failover-ha figures: a cluster of three)`],
  ];
  return markdownTable(['', ''], rows);
}

/** The whole of docs/benchmarks.md. */
export function renderReport(results: readonly BenchResult[], meta: BenchMeta, goals: readonly Goal[], preface: string, appendix = ''): string {
  const outcomes = goals.map((g) => evaluateGoal(g, results));
  const met = outcomes.filter((o) => o.met === true).length;
  const problems = [...missingFigures(results), ...meta.failures.map((f) => `suite ${f.suite} failed: ${f.error}`)];
  return [
    '# Benchmarks',
    '',
    '<!-- Generated by `make bench-doc` (test/bench/report.ts) from test/bench/results/latest.json and latest.meta.json. Do not edit by hand. -->',
    '',
    preface.trim(),
    '',
    '## The machine',
    '',
    machineSection(meta),
    '',
    `## Goals: ${met} of ${outcomes.length} met`,
    '',
    goalsTable(outcomes),
    '',
    '## Every figure',
    '',
    'Ratio = value / baseline value, for latencies too (below 1 is faster than the baseline).',
    '',
    resultsTable(results),
    '',
    ...(appendix.trim() === '' ? [] : [appendix.trim(), '']),
    ...(problems.length === 0 ? [] : ['## Problems of this run', '', ...problems.map((p) => `- ${p}`), '']),
  ].join('\n');
}
