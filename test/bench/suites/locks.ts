import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Etcd3 } from 'etcd3';
import { Registry } from 'prom-client';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { EtcdLockService } from '../../../src/locks/etcd-lock-service.js';
import { LocalLockService } from '../../../src/locks/local-lock-service.js';
import { LockMetrics } from '../../../src/locks/metrics.js';
import { EtcdSession } from '../../../src/session/etcd-session.js';
import { type BenchContext, type BenchResult, type BenchSuite, percentile, standalone, versus } from '../types.js';
import { measure } from './etcd-baseline.js';

const CONTENDERS = 8;
const CHILD = join(import.meta.dirname, '../children/lock-contender.ts');

/** A figure against a baseline this suite measured itself (not one of the run's shared ones). */
function against(name: string, value: number, unit: string, baseline: string, baselineValue: number): BenchResult {
  return { name, value, unit, baseline, baseline_value: baselineValue, ratio: baselineValue === 0 ? null : value / baselineValue };
}

/** Uncontended acquire + release on one name, one session, for `seconds`. */
async function uncontended(ctx: BenchContext): Promise<number> {
  const etcd = { endpoints: ctx.etcd.endpoints, prefix: '/bench-locks', username: '', password: '', caFile: '', certFile: '', keyFile: '', callTimeoutMs: 5_000 };
  const client = createEtcdClient(etcd);
  const session = await EtcdSession.open({ client, host: 'bench@bench', leaseTtlMs: 10_000, leaseMarginMs: 2_000, callTimeoutMs: 5_000 });
  const locks = new EtcdLockService({ client, keys: new KeyLayout('/bench-locks'), session, callTimeoutMs: 5_000, metrics: new LockMetrics(new Registry()) });
  try {
    for (let i = 0; i < 100; i++) await (await locks.acquire('warm')).release();
    const run = await measure(ctx.seconds, 1, async () => {
      const handle = await locks.acquire('uncontended');
      await handle.release();
    });
    return run.opsPerSecond;
  } finally {
    await locks.close();
    await session.close();
    client.close();
  }
}

/** The npm etcd3 package's own Lock: grant, create-if-absent txn, revoke. */
async function etcd3Lock(ctx: BenchContext): Promise<number> {
  const client = new Etcd3({ hosts: ctx.etcd.endpoints });
  try {
    const run = await measure(ctx.seconds, 1, async () => {
      const lock = client.lock('/bench-etcd3/lock');
      await lock.acquire();
      await lock.release();
    });
    return run.opsPerSecond;
  } finally {
    client.close();
  }
}

/** The local adapter, uncontended, with its metrics on (as in production). */
async function local(ctx: BenchContext): Promise<number> {
  const locks = new LocalLockService({ metrics: new LockMetrics(new Registry()) });
  const deadline = performance.now() + ctx.seconds * 1_000;
  let count = 0;
  const started = performance.now();
  while (performance.now() < deadline) {
    for (let i = 0; i < 1_000; i++) {
      const handle = await locks.acquire('3f2a1b4c-0000-4000-8000-00000000000a-delete_volume');
      await handle.release();
    }
    count += 1_000;
  }
  return count / ((performance.now() - started) / 1_000);
}

interface Contended {
  readonly ownerChangesPerSecond: number;
  readonly shares: number[];
  readonly handoffsMs: number[];
}

/** 8 processes take and release one lock for `seconds`; owner changes, shares, hand-off latency. */
async function contended(ctx: BenchContext, mode: 'hearth' | 'gateway'): Promise<Contended> {
  const prefix = `/bench-contended-${mode}`;
  const children: ChildProcess[] = [];
  try {
    const outputs = await Promise.all(
      Array.from({ length: CONTENDERS }, () => {
        const child = spawn(process.execPath, ['--import', 'tsx', CHILD, mode, ctx.etcd.url, prefix, 'contended'], { stdio: ['pipe', 'pipe', 'inherit'] });
        children.push(child);
        const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
        return { child, lines };
      }).map(async ({ child, lines }) => {
        const ready = await lines.next();
        if (ready.value !== 'ready') throw new Error(`contender ${child.pid} did not start: ${String(ready.value)}`);
        return { child, lines };
      }),
    );
    const endAt = Date.now() + 300 + ctx.seconds * 1_000;
    for (const { child } of outputs) child.stdin.write(`go ${endAt}\n`);
    const spans = await Promise.all(
      outputs.map(async ({ lines }) => JSON.parse(String((await lines.next()).value)) as [number, number][]),
    );
    const all = spans.flatMap((s, who) => s.map(([acquiredAt, releasedAt]) => ({ who, acquiredAt, releasedAt }))).sort((a, b) => a.acquiredAt - b.acquiredAt);
    let changes = 0;
    const handoffsMs: number[] = [];
    for (let i = 1; i < all.length; i++) {
      const prev = all[i - 1]!;
      const cur = all[i]!;
      if (prev.who === cur.who) continue;
      changes++;
      handoffsMs.push(cur.acquiredAt - prev.releasedAt);
    }
    const span = (all[all.length - 1]!.acquiredAt - all[0]!.acquiredAt) / 1_000;
    return { ownerChangesPerSecond: changes / span, shares: spans.map((s) => s.length), handoffsMs };
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  }
}

function describeShares(label: string, shares: readonly number[]): number {
  const mean = shares.reduce((a, b) => a + b, 0) / shares.length;
  const worst = Math.max(...shares.map((s) => Math.abs(s - mean) / mean));
  console.log(`  ${label} shares per contender: ${shares.join(', ')} (mean ${mean.toFixed(1)}, worst deviation ${(worst * 100).toFixed(1)}%)`);
  return worst;
}

/** Locks: hearth's etcd lock against raw etcd, the npm etcd3 Lock and etcd's own lock service. */
export const suite: BenchSuite = {
  name: 'locks',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const ours = await uncontended(ctx);
    ctx.log(`uncontended acquire+release: ${ours.toFixed(0)}/s`);
    const theirs = await etcd3Lock(ctx);
    ctx.log(`npm etcd3 Lock acquire+release: ${theirs.toFixed(0)}/s`);
    const fair = await contended(ctx, 'hearth');
    const gateway = await contended(ctx, 'gateway');
    const worstHearth = describeShares('hearth', fair.shares);
    describeShares('etcd lock service', gateway.shares);
    const localOps = await local(ctx);
    return [
      versus(ctx, 'lock.uncontended_ops_per_s', ours, 'ops/s', 'etcd.raw_txn_ops_per_s'),
      standalone('etcd3.lock_ops_per_s', theirs, 'ops/s'),
      against('lock.uncontended_vs_etcd3_lock', ours, 'ops/s', 'etcd3.lock_ops_per_s', theirs),
      standalone('etcd.lock_service_owner_changes_per_s', gateway.ownerChangesPerSecond, 'changes/s'),
      against('lock.contended_owner_changes_per_s', fair.ownerChangesPerSecond, 'changes/s', 'etcd.lock_service_owner_changes_per_s', gateway.ownerChangesPerSecond),
      standalone('lock.contended_worst_share_deviation', worstHearth * 100, '%'),
      versus(ctx, 'lock.handoff_p50_ms', percentile(fair.handoffsMs, 50), 'ms', 'etcd.raw_txn_p50_ms'),
      versus(ctx, 'lock.handoff_p99_ms', percentile(fair.handoffsMs, 99), 'ms', 'etcd.raw_txn_p99_ms'),
      standalone('lock.local_ops_per_s', localOps, 'ops/s'),
    ];
  },
};
