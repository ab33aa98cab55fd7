// What a benchmark run ran on: written beside results/latest.json as results/latest.meta.json,
// so that docs/benchmarks.md can say which machine, load and versions its figures come from.
import { execFile } from 'node:child_process';
import { cpus, loadavg, release, totalmem, type } from 'node:os';
import { promisify } from 'node:util';
import type { EtcdServer } from '../support/etcd.js';
import type { RabbitServer } from '../support/rabbitmq.js';

const run = promisify(execFile);

/** The companion of `latest.json`. */
export interface BenchMeta {
  /** ISO times of the run's start and end. */
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly command: string;
  readonly quick: boolean;
  /** Suite filters given on the command line; empty = every suite. */
  readonly filters: readonly string[];
  readonly node: string;
  readonly os: string;
  readonly cpuModel: string;
  readonly cpuCount: number;
  readonly memoryTotalMb: number;
  /** 1, 5 and 15 minute load averages. */
  readonly loadAvgStart: readonly number[];
  readonly loadAvgEnd: readonly number[];
  readonly etcdVersion: string;
  readonly rabbitmqVersion: string;
  /** `git describe`-like: short hash, `-dirty` when the tree had changes. */
  readonly gitRevision: string;
  /** Suites that threw; their figures are missing from the results. */
  readonly failures: readonly { readonly suite: string; readonly error: string }[];
}

/** The part of {@link BenchMeta} known before the run. */
export type MachineStart = Omit<BenchMeta, 'finishedAt' | 'loadAvgEnd' | 'etcdVersion' | 'rabbitmqVersion' | 'failures'>;

const rounded = (values: readonly number[]): number[] => values.map((v) => Math.round(v * 100) / 100);

async function gitRevision(): Promise<string> {
  try {
    const hash = (await run('git', ['rev-parse', '--short', 'HEAD'])).stdout.trim();
    const dirty = (await run('git', ['status', '--porcelain', '--untracked-files=no'])).stdout.trim() !== '';
    return dirty ? `${hash}-dirty` : hash;
  } catch {
    return 'unknown';
  }
}

/** Machine facts and load at the start of a run. */
export async function machineAtStart(quick: boolean, filters: readonly string[]): Promise<MachineStart> {
  const cores = cpus();
  return {
    startedAt: new Date().toISOString(),
    command: `${quick ? 'BENCH_QUICK=1 ' : ''}make bench${filters.length > 0 ? ` BENCH="${filters.join(' ')}"` : ''}`,
    quick,
    filters,
    node: process.version,
    os: `${type()} ${release()}`,
    cpuModel: cores[0]?.model.trim() ?? 'unknown',
    cpuCount: cores.length,
    memoryTotalMb: Math.round(totalmem() / 2 ** 20),
    loadAvgStart: rounded(loadavg()),
    gitRevision: await gitRevision(),
  };
}

/** etcd's `/version`; `unknown` when it cannot be read. */
async function etcdVersion(etcd: EtcdServer): Promise<string> {
  try {
    const res = await fetch(`${etcd.url}/version`, { signal: AbortSignal.timeout(5_000) });
    return ((await res.json()) as { etcdserver?: string }).etcdserver ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** `rabbitmqctl version`; `unknown` when it cannot be run. */
async function rabbitVersion(rabbit: RabbitServer): Promise<string> {
  try {
    return (await rabbit.ctl('version')).trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The servers' versions; read while they run. */
export async function serverVersions(etcd: EtcdServer, rabbit: RabbitServer): Promise<Pick<BenchMeta, 'etcdVersion' | 'rabbitmqVersion'>> {
  const [etcdV, rabbitV] = await Promise.all([etcdVersion(etcd), rabbitVersion(rabbit)]);
  return { etcdVersion: etcdV, rabbitmqVersion: rabbitV };
}

/** Completes the start facts with the end of the run. */
export function machineAtEnd(start: MachineStart, versions: Pick<BenchMeta, 'etcdVersion' | 'rabbitmqVersion'>, failures: BenchMeta['failures']): BenchMeta {
  return { ...start, ...versions, failures, finishedAt: new Date().toISOString(), loadAvgEnd: rounded(loadavg()) };
}
