import type { EtcdServer } from '../support/etcd.js';
import type { RabbitServer } from '../support/rabbitmq.js';

/** One line of the benchmark report (and of `results/latest.json`). */
export interface BenchResult {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  /** Name of the baseline measured in the same run, or null when the figure stands alone. */
  readonly baseline: string | null;
  readonly baseline_value: number | null;
  /** value / baseline_value (for latencies too: below 1 is faster than the baseline). */
  readonly ratio: number | null;
}

/** What every benchmark suite gets: servers of its own run, and the run's shared baselines. */
export interface BenchContext {
  readonly etcd: EtcdServer;
  readonly rabbit: RabbitServer;
  readonly tmpDir: string;
  /** Baseline figures measured earlier in this run, by name (e.g. `etcd.raw_txn_ops_per_s`). */
  readonly baselines: ReadonlyMap<string, number>;
  /** Seconds each throughput measurement runs (shorter with BENCH_QUICK=1). */
  readonly seconds: number;
  /** BENCH_QUICK=1: fewer rounds too, not only shorter measurements. */
  readonly quick: boolean;
  log(message: string): void;
}

/** A benchmark suite: a module under test/bench/suites/ exporting one of these as `suite`. */
export interface BenchSuite {
  readonly name: string;
  /** Runs first when it provides baselines other suites compare against. */
  readonly providesBaselines?: boolean;
  run(ctx: BenchContext): Promise<BenchResult[]>;
}

/** Builds a result that compares against a named baseline of the run. */
export function versus(ctx: BenchContext, name: string, value: number, unit: string, baseline: string): BenchResult {
  const base = ctx.baselines.get(baseline);
  if (base === undefined) throw new Error(`baseline ${baseline} was not measured in this run`);
  return { name, value, unit, baseline, baseline_value: base, ratio: base === 0 ? null : value / base };
}

/** A figure against another figure of the same suite (not one of the run's shared baselines). */
export function relative(name: string, value: number, unit: string, baseline: BenchResult): BenchResult {
  return { name, value, unit, baseline: baseline.name, baseline_value: baseline.value, ratio: baseline.value === 0 ? null : value / baseline.value };
}

/** A result with no baseline. */
export function standalone(name: string, value: number, unit: string): BenchResult {
  return { name, value, unit, baseline: null, baseline_value: null, ratio: null };
}

/** The p-th percentile (0..100) of a list of numbers. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] as number;
}
