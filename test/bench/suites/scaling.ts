// Scaling from 1 to 3 workers: aggregate lock and transition throughput of 1 and of 3 worker
// processes on the same etcd. Each process keeps 8 operations in flight (a worker's default
// `amqp.prefetch`) on names / volumes of its own: uncontended lock acquire + release through
// one session, or conditional transitions in the shared state store. The 1- and 3-process runs
// alternate in rounds so both see the same load on a shared machine; each figure sums its rounds.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Etcd3 } from 'etcd3';
import { type BenchContext, type BenchResult, type BenchSuite, relative, standalone } from '../types.js';

const CHILD = join(import.meta.dirname, '../children/throughput-worker.ts');
const IN_FLIGHT = 8;
const WORKERS = 3;

/** Worker processes of one kind, kept running across rounds. */
class Workers {
  private constructor(
    private readonly children: ChildProcess[],
    private readonly lines: AsyncIterator<string>[],
  ) {}

  static async start(ctx: BenchContext, mode: 'lock' | 'transition', prefix: string): Promise<Workers> {
    const children: ChildProcess[] = [];
    const lines: AsyncIterator<string>[] = [];
    for (let i = 0; i < WORKERS; i++) {
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD, mode, ctx.etcd.url, prefix, String(IN_FLIGHT)], { stdio: ['pipe', 'pipe', 'inherit'] });
      children.push(child);
      lines.push(createInterface({ input: child.stdout })[Symbol.asyncIterator]());
    }
    const workers = new Workers(children, lines);
    try {
      for (const [i, it] of lines.entries()) {
        const ready = await it.next();
        if (ready.value !== 'ready') throw new Error(`worker ${children[i]?.pid} did not start: ${String(ready.value)}`);
      }
    } catch (err) {
      workers.kill();
      throw err;
    }
    return workers;
  }

  /** The first `count` workers run for `seconds`, starting together; resolves with ops and ms. */
  async run(count: number, seconds: number): Promise<{ ops: number; ms: number }> {
    const startAt = Date.now() + 200;
    const endAt = startAt + seconds * 1_000;
    for (const child of this.children.slice(0, count)) child.stdin!.write(`go ${startAt} ${endAt}\n`);
    const outs = await Promise.all(this.lines.slice(0, count).map(async (it) => JSON.parse(String((await it.next()).value)) as { ops: number; ms: number }));
    return { ops: outs.reduce((a, o) => a + o.ops, 0), ms: Math.max(...outs.map((o) => o.ms)) };
  }

  async stop(): Promise<void> {
    for (const child of this.children) child.stdin!.write('exit\n');
    await Promise.all(this.children.map((c) => new Promise((r) => (c.exitCode === null ? c.once('exit', r) : r(null)))));
  }

  kill(): void {
    for (const child of this.children) if (child.exitCode === null) child.kill('SIGKILL');
  }
}

/** Ops/s of 1 and of 3 workers, alternating in rounds. */
async function compare(ctx: BenchContext, mode: 'lock' | 'transition'): Promise<{ one: number; three: number }> {
  const prefix = `/bench-scaling-${mode}-${randomUUID().slice(0, 8)}`;
  const workers = await Workers.start(ctx, mode, prefix);
  const one = { ops: 0, ms: 0 };
  const three = { ops: 0, ms: 0 };
  try {
    const rounds = ctx.quick ? 1 : 3;
    for (let r = 0; r < rounds; r++) {
      for (const [count, into] of [[1, one], [WORKERS, three]] as const) {
        const got = await workers.run(count, ctx.seconds / rounds);
        into.ops += got.ops;
        into.ms += got.ms;
      }
    }
    await workers.stop();
  } finally {
    workers.kill();
    const etcd = new Etcd3({ hosts: ctx.etcd.endpoints });
    await etcd.delete().prefix(`${prefix}/`);
    etcd.close();
  }
  const perSecond = (t: { ops: number; ms: number }): number => (t.ops / t.ms) * 1_000;
  ctx.log(`${mode}: 1 worker ${perSecond(one).toFixed(0)}/s, ${WORKERS} workers ${perSecond(three).toFixed(0)}/s (${IN_FLIGHT} in flight each)`);
  return { one: perSecond(one), three: perSecond(three) };
}

export const suite: BenchSuite = {
  name: 'scaling',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const locks = await compare(ctx, 'lock');
    const transitions = await compare(ctx, 'transition');
    const lock1 = standalone('lock.uncontended_ops_per_s_1_worker', locks.one, 'ops/s');
    const transition1 = standalone('transition.ops_per_s_1_worker', transitions.one, 'ops/s');
    return [
      lock1,
      relative('lock.uncontended_ops_per_s_3_workers', locks.three, 'ops/s', lock1),
      transition1,
      relative('transition.ops_per_s_3_workers', transitions.three, 'ops/s', transition1),
    ];
  },
};
