// Locks: hearth's etcd lock against raw etcd compare-and-put txns (the run's baselines), the npm
// etcd3 package's own Lock, and etcd's own lock service (/v3/lock through its JSON gateway, what
// `etcdctl lock` uses) with 8 contender processes; plus the in-process lock. On a shared machine
// the load changes from second to second, so every comparison here is also measured *paired*:
// the things compared run in alternating slices, and each sees the same load.
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
const SLICES = 6;
const CHILD = join(import.meta.dirname, '../children/lock-contender.ts');

/** A figure against a baseline this suite measured itself (not one of the run's shared ones). */
function against(name: string, value: number, unit: string, baseline: string, baselineValue: number): BenchResult {
  return { name, value, unit, baseline, baseline_value: baselineValue, ratio: baselineValue === 0 ? null : value / baselineValue };
}

/** Operations, milliseconds and latencies, summed over slices. */
interface Tally {
  ops: number;
  ms: number;
  latenciesMs: number[];
}
const tally = (): Tally => ({ ops: 0, ms: 0, latenciesMs: [] });
const perSecond = (t: Tally): number => (t.ops / t.ms) * 1_000;

async function slice(t: Tally, seconds: number, op: () => Promise<unknown>): Promise<void> {
  const run = await measure(seconds, 1, op);
  t.ops += run.latenciesMs.length;
  t.ms += (run.latenciesMs.length / run.opsPerSecond) * 1_000;
  t.latenciesMs.push(...run.latenciesMs);
}

/** One raw compare-and-put, as the baseline suite sends it. */
function rawTxn(client: Etcd3, key: string): () => Promise<void> {
  let revision = '0';
  return async () => {
    const res = await client.if(key, 'Mod', '==', revision).then(client.put(key).value('x')).commit();
    revision = res.header.revision;
  };
}

/** Uncontended acquire + release, raw txns and the npm etcd3 Lock, in alternating slices. */
async function uncontended(ctx: BenchContext): Promise<{ ours: Tally; raw: Tally; etcd3: Tally }> {
  const etcd = { endpoints: ctx.etcd.endpoints, prefix: '/bench-locks', username: '', password: '', caFile: '', certFile: '', keyFile: '', callTimeoutMs: 5_000 };
  const client = createEtcdClient(etcd);
  const plain = new Etcd3({ hosts: ctx.etcd.endpoints });
  const session = await EtcdSession.open({ client, host: 'bench@bench', leaseTtlMs: 10_000, leaseMarginMs: 2_000, callTimeoutMs: 5_000 });
  const locks = new EtcdLockService({ client, keys: new KeyLayout('/bench-locks'), session, callTimeoutMs: 5_000, metrics: new LockMetrics(new Registry()) });
  const result = { ours: tally(), raw: tally(), etcd3: tally() };
  try {
    const raw = rawTxn(plain, '/bench-locks-raw');
    const ours = async (): Promise<void> => (await locks.acquire('uncontended')).release();
    const theirs = async (): Promise<void> => {
      const lock = plain.lock('/bench-etcd3/lock');
      await lock.acquire();
      await lock.release();
    };
    for (let i = 0; i < 50; i++) await Promise.all([ours(), theirs(), raw()]);
    for (let s = 0; s < SLICES; s++) {
      await slice(result.raw, ctx.seconds / SLICES, raw);
      await slice(result.ours, ctx.seconds / SLICES, ours);
      await slice(result.etcd3, ctx.seconds / SLICES, theirs);
    }
    return result;
  } finally {
    await locks.close();
    await session.close();
    client.close();
    plain.close();
  }
}

/** The in-process lock, uncontended, with its metrics on (as in production). */
async function local(ctx: BenchContext): Promise<number> {
  const locks = new LocalLockService({ metrics: new LockMetrics(new Registry()) });
  const name = '3f2a1b4c-0000-4000-8000-00000000000a-delete_volume';
  for (let i = 0; i < 100_000; i++) await (await locks.acquire(name)).release();
  const deadline = performance.now() + ctx.seconds * 1_000;
  let count = 0;
  const started = performance.now();
  while (performance.now() < deadline) {
    for (let i = 0; i < 1_000; i++) {
      const handle = await locks.acquire(name);
      await handle.release();
    }
    count += 1_000;
  }
  return count / ((performance.now() - started) / 1_000);
}

/** 8 contender processes of one kind, kept running across rounds. */
class Contenders {
  private constructor(
    private readonly children: ChildProcess[],
    private readonly lines: AsyncIterator<string>[],
  ) {}

  static async start(ctx: BenchContext, mode: 'hearth' | 'gateway'): Promise<Contenders> {
    const children: ChildProcess[] = [];
    const lines: AsyncIterator<string>[] = [];
    for (let i = 0; i < CONTENDERS; i++) {
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD, mode, ctx.etcd.url, `/bench-contended-${mode}`, 'contended'], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      children.push(child);
      lines.push(createInterface({ input: child.stdout })[Symbol.asyncIterator]());
    }
    const contenders = new Contenders(children, lines);
    try {
      for (const [i, it] of lines.entries()) {
        const ready = await it.next();
        if (ready.value !== 'ready') throw new Error(`contender ${children[i]?.pid} did not start: ${String(ready.value)}`);
      }
    } catch (err) {
      contenders.kill();
      throw err;
    }
    return contenders;
  }

  /** One round of `seconds`: every contender's [acquiredAt, releasedAt] spans. */
  async round(seconds: number): Promise<[number, number][][]> {
    const endAt = Date.now() + 100 + seconds * 1_000;
    for (const child of this.children) child.stdin!.write(`go ${endAt}\n`);
    return Promise.all(this.lines.map(async (it) => JSON.parse(String((await it.next()).value)) as [number, number][]));
  }

  async stop(): Promise<void> {
    for (const child of this.children) child.stdin!.write('exit\n');
    await Promise.all(this.children.map((c) => new Promise((r) => (c.exitCode === null ? c.once('exit', r) : r(null)))));
  }

  kill(): void {
    for (const child of this.children) if (child.exitCode === null) child.kill('SIGKILL');
  }
}

/** Owner changes, span of time and hand-off latencies of rounds, summed. */
interface Contended {
  changes: number;
  ms: number;
  readonly shares: number[];
  readonly handoffsMs: number[];
}

function account(into: Contended, spans: [number, number][][]): void {
  const all = spans.flatMap((s, who) => s.map(([acquiredAt, releasedAt]) => ({ who, acquiredAt, releasedAt }))).sort((a, b) => a.acquiredAt - b.acquiredAt);
  spans.forEach((s, who) => (into.shares[who] = (into.shares[who] ?? 0) + s.length));
  for (let i = 1; i < all.length; i++) {
    const prev = all[i - 1]!;
    const cur = all[i]!;
    if (prev.who === cur.who) continue;
    into.changes++;
    into.handoffsMs.push(cur.acquiredAt - prev.releasedAt);
  }
  if (all.length > 1) into.ms += all[all.length - 1]!.acquiredAt - all[0]!.acquiredAt;
}

/** Alternating rounds: 8 hearth contenders, 8 etcd lock-service contenders, raw txns. */
async function contended(ctx: BenchContext): Promise<{ hearth: Contended; gateway: Contended; raw: Tally }> {
  const empty = (): Contended => ({ changes: 0, ms: 0, shares: [], handoffsMs: [] });
  const result = { hearth: empty(), gateway: empty(), raw: tally() };
  const plain = new Etcd3({ hosts: ctx.etcd.endpoints });
  const ours = await Contenders.start(ctx, 'hearth');
  let theirs: Contenders | undefined;
  try {
    theirs = await Contenders.start(ctx, 'gateway');
    const raw = rawTxn(plain, '/bench-contended-raw');
    const rounds = Math.max(1, Math.round(ctx.seconds));
    for (let r = 0; r < rounds; r++) {
      account(result.hearth, await ours.round(ctx.seconds / rounds));
      await slice(result.raw, Math.min(0.5, ctx.seconds / rounds), raw);
      account(result.gateway, await theirs.round(ctx.seconds / rounds));
    }
    await Promise.all([ours.stop(), theirs.stop()]);
    return result;
  } finally {
    ours.kill();
    theirs?.kill();
    plain.close();
  }
}

function describeShares(ctx: BenchContext, label: string, shares: readonly number[]): number {
  const mean = shares.reduce((a, b) => a + b, 0) / shares.length;
  const worst = Math.max(...shares.map((s) => Math.abs(s - mean) / mean));
  ctx.log(`${label} acquisitions per contender: ${shares.join(', ')} (mean ${mean.toFixed(1)}, worst deviation ${(worst * 100).toFixed(1)}%)`);
  return worst;
}

export const suite: BenchSuite = {
  name: 'locks',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const u = await uncontended(ctx);
    ctx.log(`uncontended: hearth ${perSecond(u.ours).toFixed(0)}/s, raw txn ${perSecond(u.raw).toFixed(0)}/s, npm etcd3 Lock ${perSecond(u.etcd3).toFixed(0)}/s (alternating slices)`);
    const c = await contended(ctx);
    const worst = describeShares(ctx, 'hearth', c.hearth.shares);
    describeShares(ctx, 'etcd lock service', c.gateway.shares);
    const localOps = await local(ctx);
    const changes = (x: Contended): number => (x.changes / x.ms) * 1_000;
    return [
      versus(ctx, 'lock.uncontended_ops_per_s', perSecond(u.ours), 'ops/s', 'etcd.raw_txn_ops_per_s'),
      standalone('etcd.raw_txn_paired_ops_per_s', perSecond(u.raw), 'ops/s'),
      against('lock.uncontended_paired_ops_per_s', perSecond(u.ours), 'ops/s', 'etcd.raw_txn_paired_ops_per_s', perSecond(u.raw)),
      standalone('etcd3.lock_ops_per_s', perSecond(u.etcd3), 'ops/s'),
      against('lock.uncontended_vs_etcd3_lock', perSecond(u.ours), 'ops/s', 'etcd3.lock_ops_per_s', perSecond(u.etcd3)),
      standalone('etcd.lock_service_owner_changes_per_s', changes(c.gateway), 'changes/s'),
      against('lock.contended_owner_changes_per_s', changes(c.hearth), 'changes/s', 'etcd.lock_service_owner_changes_per_s', changes(c.gateway)),
      standalone('lock.contended_worst_share_deviation', worst * 100, '%'),
      versus(ctx, 'lock.handoff_p50_ms', percentile(c.hearth.handoffsMs, 50), 'ms', 'etcd.raw_txn_p50_ms'),
      standalone('etcd.raw_txn_paired_p50_ms', percentile(c.raw.latenciesMs, 50), 'ms'),
      against('lock.handoff_paired_p50_ms', percentile(c.hearth.handoffsMs, 50), 'ms', 'etcd.raw_txn_paired_p50_ms', percentile(c.raw.latenciesMs, 50)),
      versus(ctx, 'lock.handoff_p99_ms', percentile(c.hearth.handoffsMs, 99), 'ms', 'etcd.raw_txn_p99_ms'),
      standalone('etcd.lock_service_handoff_p50_ms', percentile(c.gateway.handoffsMs, 50), 'ms'),
      against('lock.handoff_vs_lock_service_p50_ms', percentile(c.hearth.handoffsMs, 50), 'ms', 'etcd.lock_service_handoff_p50_ms', percentile(c.gateway.handoffsMs, 50)),
      standalone('lock.local_ops_per_s', localOps, 'ops/s'),
    ];
  },
};
