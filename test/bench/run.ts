// `make bench`: starts its own etcd and RabbitMQ (one member, one node: every suite's baselines
// are measured on them; suites/failover-ha.ts starts a three-member etcd and a three-node
// RabbitMQ cluster of its own), runs every suite under test/bench/suites/,
// prints one table with each figure beside its same-run baseline, and writes
// test/bench/results/latest.json and, beside it, latest.meta.json (machine, load, versions;
// `make bench-doc` turns both into docs/benchmarks.md). Usage: run.ts [suite-name-filter ...]; BENCH_QUICK=1 for a short run.
import { mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdServer } from '../support/etcd.js';
import { RabbitServer } from '../support/rabbitmq.js';
import { type BenchMeta, machineAtEnd, machineAtStart, serverVersions } from './machine.js';
import { missingFigures } from './report-core.js';
import type { BenchContext, BenchResult, BenchSuite } from './types.js';

const here = import.meta.dirname;

async function loadSuites(filters: readonly string[]): Promise<BenchSuite[]> {
  const files = (await readdir(join(here, 'suites'))).filter((f) => f.endsWith('.ts')).sort();
  const suites: BenchSuite[] = [];
  for (const file of files) {
    const mod = (await import(join(here, 'suites', file))) as { suite?: BenchSuite };
    if (!mod.suite) continue;
    const wanted = filters.length === 0 || mod.suite.providesBaselines || filters.some((f) => mod.suite?.name.includes(f) || file.includes(f));
    if (wanted) suites.push(mod.suite);
  }
  return suites.sort((a, b) => Number(b.providesBaselines ?? false) - Number(a.providesBaselines ?? false));
}

function format(n: number | null): string {
  if (n === null || Number.isNaN(n)) return '—';
  if (Math.abs(n) >= 100) return n.toFixed(0);
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

function printTable(results: readonly BenchResult[]): void {
  const rows = results.map((r) => [r.name, `${format(r.value)} ${r.unit}`, r.baseline ?? '', format(r.baseline_value), r.ratio === null ? '' : `${format(r.ratio)}x`]);
  const head = ['figure', 'value', 'baseline', 'baseline value', 'ratio'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ');
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}

async function main(): Promise<void> {
  const filters = process.argv.slice(2);
  const quick = process.env.BENCH_QUICK === '1';
  const start = await machineAtStart(quick, filters);
  const tmpDir = await mkdtemp(join(tmpdir(), 'hearth-bench-'));
  console.log('starting etcd and RabbitMQ …');
  const [etcd, rabbit] = await Promise.all([EtcdServer.start(), RabbitServer.start()]);
  const versions = await serverVersions(etcd, rabbit);
  const baselines = new Map<string, number>();
  const results: BenchResult[] = [];
  const failures: { suite: string; error: string }[] = [];
  const ctx: BenchContext = {
    etcd,
    rabbit,
    tmpDir,
    baselines,
    seconds: quick ? 1 : 5,
    quick,
    log: (message) => console.log(`  ${message}`),
  };
  try {
    for (const suite of await loadSuites(filters)) {
      console.log(`running ${suite.name} …`);
      const started = Date.now();
      try {
        const out = await suite.run(ctx);
        for (const r of out) {
          results.push(r);
          if (suite.providesBaselines) baselines.set(r.name, r.value);
        }
        console.log(`  done in ${((Date.now() - started) / 1_000).toFixed(1)} s`);
      } catch (err) {
        // The other suites still run; the report lists what failed and the run exits non-zero.
        const message = err instanceof Error ? err.message : String(err);
        failures.push({ suite: suite.name, error: message });
        console.error(`  FAILED after ${((Date.now() - started) / 1_000).toFixed(1)} s: ${message}`);
      }
    }
  } finally {
    await Promise.allSettled([etcd.stop(), rabbit.stop()]);
  }
  const meta: BenchMeta = machineAtEnd(start, versions, failures);
  console.log('');
  printTable(results);
  console.log(`\n${meta.cpuCount} × ${meta.cpuModel}, load average ${meta.loadAvgStart.join(' ')} at the start, ${meta.loadAvgEnd.join(' ')} at the end`);
  const outDir = join(here, 'results');
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(join(outDir, 'latest.meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
  console.log(`\nwrote test/bench/results/latest.json and latest.meta.json (make bench-doc writes docs/benchmarks.md from them)`);
  // A full run must have every figure issue 9 names; a filtered one has only its suites'.
  const missing = filters.length === 0 ? missingFigures(results) : [];
  for (const m of missing) console.error(`missing: ${m}`);
  if (missing.length > 0) process.exitCode = 1;
  if (failures.length > 0) {
    console.error(`\n${failures.length} suite(s) failed: ${failures.map((f) => f.suite).join(', ')}`);
    process.exitCode = 1;
  }
}

await main();
// Everything is written: end here. Runs of failover-ha alone did not return by themselves — after
// their results the main thread kept a core busy without ever reaching a timer again (seen three
// times, cause not found) — and `make bench` must not hang.
process.exit();
