// The cost of a replication failover (issue 17): one API process and three workers on the run's
// etcd and RabbitMQ, the fake driver replicating to a simulated target (`dr1`), under a steady
// stream of volume creates (100 ms driver calls). Each round fails the cluster over to `dr1`
// (`PUT /os-services/failover`, 3.26), enables it again (the failover disables it, reason
// `failed-over`), and fails it back to `default`.
//
// Baseline: the same stream's create p50 before the first failover, in seconds. A failover first
// waits for the cluster's operations in flight (each a create's run, bounded by the drain,
// `shutdownGraceMs`), then raises the epoch and promotes the target in a few etcd writes: so the
// ratio says how many plain creates a failover costs — the drain bound would only say how much of
// a bound was used, and it is not reached unless a call hangs. The stall (the longest time no
// create completed around a failover or failback, until three creates asked after it completed;
// the bench enables the cluster as soon as it shows `failed-over`) is set against the failover
// time: the stream waits for the freeze, the promotion and the re-enable, not much more.
// Creates refused while the cluster is frozen or disabled by the failover (Cinder's 400) are
// counted apart from failed ones (goal: none). `replication.old_primary_writes_after_failover`
// counts the fake journal's successful writes to `default` begun while failed over (goal: none).
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { backendWrites } from '../../../src/drivers/fake-journal.js';
import type { HearthProcess } from '../../support/hearth-process.js';
import { startHearth } from '../../support/hearth-process.js';
import { memberEnv, readJournal } from '../../support/orphans-cluster.js';
import { failedOverWindows } from '../../chaos/replication-faults.js';
import { ReplicationAdmin } from '../../support/replication-api.js';
import { waitFor } from '../../support/wait.js';
import type { BenchResult, BenchSuite } from '../types.js';
import { percentile, relative, standalone } from '../types.js';

const WORKERS = 3;
const LANES = 3;
const CLUSTER = 'repl@be';
/** Completions after a failover or failback over which its stall is measured. */
const AFTER = 3;

interface Done {
  readonly askedAt: number;
  readonly doneAt: number;
}

/** Client loops creating volumes and waiting for each to be `available` (polled every 100 ms). */
class CreateStream {
  readonly done: Done[] = [];
  /** Creates refused with 400 because the cluster is frozen or disabled by the failover. */
  frozenRefusals = 0;
  /** Creates refused otherwise, or that ended in `error` or never became `available`. */
  readonly failed: string[] = [];
  private stopping = false;
  private loops: Promise<void>[] = [];

  constructor(private readonly apiUrl: string) {}

  start(): this {
    this.loops = Array.from({ length: LANES }, () => this.loop());
    return this;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }

  /** Completions of creates asked after `since` (epoch ms). */
  countAskedAfter(since: number): number {
    return this.done.filter((d) => d.askedAt > since).length;
  }

  /**
   * The longest gap between completions from the last one before `at` until the `AFTER`-th
   * completion of a create asked after `at` — creates in flight at `at` finishing early do not
   * hide the time new ones were refused or waited. Seconds.
   */
  stallAround(at: number): number {
    const times = this.done.map((d) => d.doneAt).sort((a, b) => a - b);
    const end = this.done
      .filter((d) => d.askedAt > at)
      .map((d) => d.doneAt)
      .sort((a, b) => a - b)[AFTER - 1] ?? Number.POSITIVE_INFINITY;
    let previous = times.filter((t) => t <= at).at(-1) ?? at;
    let longest = 0;
    for (const t of times.filter((x) => x > at && x <= end)) {
      longest = Math.max(longest, t - previous);
      previous = t;
    }
    return longest / 1_000;
  }

  private async request(method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
    const res = await fetch(`${this.apiUrl}/v3/admin${path}`, {
      method,
      headers: { 'openstack-api-version': 'volume 3.26', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, text: await res.text() };
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      const askedAt = Date.now();
      const res = await this.request('POST', '/volumes', { volume: { size: 1 } }).catch((err: unknown) => ({ status: 0, text: String(err) }));
      if (res.status !== 202) {
        if (res.status === 400 && /frozen|failed-over|does not accept new volumes/i.test(res.text)) this.frozenRefusals += 1;
        else this.failed.push(`create: HTTP ${res.status} ${res.text.slice(0, 200)}`);
        await sleep(200);
        continue;
      }
      const id = (JSON.parse(res.text) as { volume: { id: string } }).volume.id;
      const outcome = await this.until(id, askedAt + 60_000);
      if (outcome === 'available') this.done.push({ askedAt, doneAt: Date.now() });
      else this.failed.push(`volume ${id}: ${outcome}`);
    }
  }

  private async until(id: string, deadline: number): Promise<string> {
    while (Date.now() < deadline) {
      const res = await this.request('GET', `/volumes/${id}`).catch(() => ({ status: 0, text: '' }));
      if (res.status === 200) {
        const status = (JSON.parse(res.text) as { volume: { status: string } }).volume.status;
        if (status === 'available' || status === 'error') return status;
      }
      await sleep(100);
    }
    return 'not available within 60 s';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}


export const suite: BenchSuite = {
  name: 'replication',
  async run(ctx) {
    const prefix = `/bench-repl-${randomUUID().slice(0, 8)}`;
    const journal = join(await mkdtemp(join(ctx.tmpDir, 'repl-')), 'journal.jsonl');
    const env = memberEnv({ endpoints: ctx.etcd.endpoints, prefix }, { url: ctx.rabbit.url, prefix: `r${randomUUID().slice(0, 8)}` }, 'repl', journal, {
      HEARTH_DRIVER_FAKE_REPLICATION_TARGETS: 'dr1:simulated',
      HEARTH_DRIVER_FAKE_LATENCY_MS: '100',
      HEARTH_LEASE_TTL_MS: '10000',
      HEARTH_LEASE_MARGIN_MS: '3000',
      HEARTH_SHUTDOWN_GRACE_MS: '2000',
      HEARTH_LOG_LEVEL: 'warn',
    });
    const procs: HearthProcess[] = [];
    const start = async (host: string, roles: 'worker' | 'api'): Promise<HearthProcess> => {
      const p = await startHearth({ name: `bench-repl-${host}`, env: { ...env, HEARTH_HOST: host, HEARTH_ROLES: roles }, startTimeoutMs: 150_000 });
      procs.push(p);
      return p;
    };
    let stream: CreateStream | undefined;
    try {
      const [api] = await Promise.all([start('api', 'api'), ...Array.from({ length: WORKERS }, (_, i) => start(`w-${i}`, 'worker'))]);
      const replication = new ReplicationAdmin(api.apiUrl);
      const admin = (method: string, path: string, body?: unknown) => replication.call(method, path, body);
      const cluster = async (): Promise<Record<string, unknown>> => (await replication.cluster(CLUSTER)) ?? {};
      const failover = async (backendId: string, want: string): Promise<{ at: number; seconds: number }> => {
        const at = Date.now();
        const res = await admin('PUT', '/os-services/failover', { cluster: CLUSTER, backend_id: backendId });
        if (res.status !== 202) throw new Error(`failover to ${backendId}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
        await waitFor(async () => ((await cluster()).replication_status === want && (await cluster()).frozen === false) || undefined, { timeoutMs: 60_000, intervalMs: 50, what: `the cluster ${want}` });
        return { at, seconds: (Date.now() - at) / 1_000 };
      };
      const enable = async (): Promise<void> => {
        const res = await admin('PUT', '/clusters/enable', { name: CLUSTER, binary: 'cinder-volume' });
        if (res.status !== 200) throw new Error(`enable: HTTP ${res.status} ${JSON.stringify(res.body)}`);
      };
      await waitFor(async () => (await cluster()).replication_status === 'enabled' || undefined, { timeoutMs: 30_000, what: 'the cluster replicating' });

      stream = new CreateStream(api.apiUrl).start();
      const baselineOps = ctx.quick ? 10 : 20;
      await waitFor(() => stream!.done.length >= baselineOps || stream!.failed.length > 0 || undefined, { timeoutMs: 60_000, intervalMs: 100, what: 'baseline creates' });
      const baseline = stream.done.map((d) => (d.doneAt - d.askedAt) / 1_000);
      const s = stream;
      const settle = async (since: number): Promise<void> => {
        await waitFor(() => s.countAskedAfter(since) >= AFTER || undefined, { timeoutMs: 60_000, intervalMs: 100, what: `${AFTER} creates asked after the failover completed` });
      };

      const rounds = ctx.quick ? 1 : 3;
      const failovers: number[] = [];
      const failbacks: number[] = [];
      const stalls: number[] = [];
      for (let round = 0; round < rounds; round += 1) {
        const over = await failover('dr1', 'failed-over');
        await enable();
        await settle(over.at);
        const back = await failover('default', 'enabled');
        // The failback enables a cluster the failover disabled; enable again if it did not.
        if ((await cluster()).status !== 'enabled') await enable();
        await settle(back.at);
        failovers.push(over.seconds);
        failbacks.push(back.seconds);
        stalls.push(s.stallAround(over.at), s.stallAround(back.at));
        ctx.log(`round ${round + 1}: failover ${over.seconds.toFixed(2)} s, failback ${back.seconds.toFixed(2)} s, stalls ${s.stallAround(over.at).toFixed(2)} / ${s.stallAround(back.at).toFixed(2)} s`);
      }
      await s.stop();

      const { entries, report } = await readJournal(journal);
      const windows = failedOverWindows(entries);
      const oldPrimary = windows.flatMap((w) => backendWrites(report.calls, 'default', w.from).filter((c) => c.start > w.from && c.start < w.to));
      if (windows.length < rounds) throw new Error(`the journal shows ${windows.length} promotion(s) of dr1, not ${rounds}`);
      const inWindows = report.calls.filter((c) => windows.some((w) => c.start > w.from && c.start < w.to)).length;
      ctx.log(`${s.done.length} creates completed, ${s.frozenRefusals} refused while frozen or disabled, ${s.failed.length} failed; ${inWindows} driver calls while failed over, ${oldPrimary.length} of them writes to the old primary`);
      for (const f of s.failed.slice(0, 5)) ctx.log(`  ${f}`);

      const base = standalone('replication.create_p50_s', percentile(baseline, 50), 's');
      const failoverFigure = relative('replication.failover_s', percentile(failovers, 50), 's', base);
      const results: BenchResult[] = [
        base,
        failoverFigure,
        relative('replication.failback_s', percentile(failbacks, 50), 's', base),
        relative('replication.ops_stalled_s', Math.max(...stalls), 's', failoverFigure),
        standalone('replication.ops_failed', s.failed.length, 'operations'),
        standalone('replication.frozen_refusals', s.frozenRefusals, 'requests'),
        standalone('replication.old_primary_writes_after_failover', oldPrimary.length, 'calls'),
      ];
      return results;
    } finally {
      await stream?.stop();
      await Promise.all(procs.map((p) => p.stop()));
    }
  },
};
