/**
 * The fault suite's cluster: a private etcd and RabbitMQ (so they can be restarted), one API-only
 * `hearth serve` process and worker-only processes, each worker reaching etcd through its own
 * TCP proxy (so one worker can be cut off from etcd), the fake driver with latency writing one
 * shared journal. Fencing is on: `fencing.method exec` with test/support/fence-kill.mjs, which
 * kills a dead incarnation's process (the test analogue of power fencing) unless a refusal file
 * for its host is in {@link ChaosCluster.refuseDir}. It remembers every process it started and
 * how each ended, and starts again a worker its fence killed.
 */
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { type HearthProcess, startHearth } from '../support/hearth-process.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait.js';
import type { ProcessEnd } from './invariants.js';
import { type ChaosServers, startServers, suiteClient, type Topology } from './servers.js';

/** The fence command of the run (an executable script: shebang and mode as committed). */
export const FENCE_KILL = join(import.meta.dirname, '../support/fence-kill.mjs');

/** Settings of a chaos cluster. */
export interface ClusterOptions {
  readonly workers: number;
  readonly leaseTtlMs: number;
  readonly latencyMs: number;
  /** `single` (default): one etcd member and one RabbitMQ node; `ha`: three of each. */
  readonly topology?: Topology;
  /** The fake driver replicates to one simulated target, `dr1` (the failover fault; default off). */
  readonly replication?: boolean;
}

/** The replication target of a run with `replication` (the fake's label of it). */
export const REPLICA_ID = 'dr1';

export const CLUSTER = 'chaos';
export const BACKEND = 'be';
export const CLUSTER_ID = `${CLUSTER}@${BACKEND}`;
export const ETCD_PREFIX = '/chaos';
export const AMQP_PREFIX = 'chaos';

interface Run {
  readonly proc: HearthProcess;
  by: ProcessEnd['by'];
  /** When the suite saw it exit (epoch ms). */
  endedAt?: number;
}

/** A run of `proc`, noting when it exits. */
function track(proc: HearthProcess): Run {
  const run: Run = { proc, by: 'none' };
  void proc.process.waitForExit().then(() => {
    run.endedAt = Date.now();
  });
  return run;
}

/** The servers and processes of one run. */
export class ChaosCluster {
  readonly hosts: readonly string[];
  private readonly runs: Run[] = [];
  private readonly current = new Map<string, Run>();
  private apiRun: Run | undefined;
  private closed = false;
  /** A built earlier release (test/support/release-build.ts) that the release-swap fault runs. */
  releaseRoot: string | undefined;

  private constructor(
    readonly options: ClusterOptions,
    /** The etcd and RabbitMQ of the run (servers.ts). */
    readonly servers: ChaosServers,
    /** `single`: each worker's TCP proxy to the one etcd member (none in `ha`: workers dial every member). */
    readonly proxies: ReadonlyMap<string, TcpProxy>,
    readonly journal: string,
    /** A client of the private etcd (directly, not through a proxy; every member in `ha`). */
    readonly client: Etcd3,
    /** While a file named like a host (`w2@be`) is here, the fence command refuses to fence it. */
    readonly refuseDir: string,
  ) {
    this.hosts = Array.from({ length: options.workers }, (_, i) => `w${i + 1}`);
  }

  /**
   * Starts etcd and RabbitMQ of the topology, the proxies (`single`), the API process and the
   * workers. Stops what it started when a part fails, and throws (naming the server or process).
   */
  static async start(options: ClusterOptions): Promise<ChaosCluster> {
    const servers = await startServers(options.topology ?? 'single');
    const proxies = new Map<string, TcpProxy>();
    try {
      if (servers.topology === 'single') {
        const port = Number(new URL(servers.etcdEndpoints[0]!).port);
        for (let i = 1; i <= options.workers; i++) proxies.set(`w${i}`, await TcpProxy.start({ port }));
      }
      const dir = await mkdtemp(join(tmpdir(), 'hearth-chaos-'));
      const refuseDir = join(dir, 'refuse-fence');
      await mkdir(refuseDir);
      const cluster = new ChaosCluster(options, servers, proxies, join(dir, 'journal.jsonl'), suiteClient(servers.etcdEndpoints), refuseDir);
      try {
        cluster.apiRun = track(await startHearth({ name: 'api', env: cluster.env('api', servers.etcdEndpoints.join(','), 'api'), startTimeoutMs: 60_000 }));
        cluster.runs.push(cluster.apiRun);
        await Promise.all(cluster.hosts.map((h) => cluster.startWorker(h)));
      } catch (err) {
        await cluster.close();
        throw err;
      }
      return cluster;
    } catch (err) {
      for (const p of proxies.values()) await p.close();
      await servers.close();
      throw err;
    }
  }

  /** The `HEARTH_*` settings of a process. */
  env(host: string, etcdUrls: string, roles: 'api' | 'worker'): Record<string, string> {
    return {
      HEARTH_ETCD_ENDPOINTS: etcdUrls,
      HEARTH_ETCD_PREFIX: ETCD_PREFIX,
      HEARTH_ETCD_CALL_TIMEOUT_MS: '2000',
      HEARTH_AMQP_URL: this.servers.amqpUrls.join(','),
      HEARTH_AMQP_PREFIX: AMQP_PREFIX,
      HEARTH_AMQP_HEARTBEAT_SECONDS: '2',
      HEARTH_AMQP_RECONNECT_MAX_DELAY_MS: '1000',
      HEARTH_AMQP_PUBLISH_TIMEOUT_MS: '3000',
      HEARTH_CLUSTER: CLUSTER,
      HEARTH_BACKEND: BACKEND,
      HEARTH_HOST: host,
      HEARTH_ROLES: roles,
      HEARTH_LEASE_TTL_MS: String(this.options.leaseTtlMs),
      // hearth's default margin at its default TTL (10 s), a third of shorter TTLs.
      HEARTH_LEASE_MARGIN_MS: String(Math.min(2_000, Math.floor(this.options.leaseTtlMs / 3))),
      HEARTH_REPORT_INTERVAL_MS: '1000',
      HEARTH_SWEEP_INTERVAL_MS: '2000',
      HEARTH_SHUTDOWN_GRACE_MS: '5000',
      HEARTH_DRIVER_NAME: 'fake',
      HEARTH_DRIVER_FAKE_LATENCY_MS: String(this.options.latencyMs),
      HEARTH_DRIVER_FAKE_JOURNAL: this.journal,
      HEARTH_DRIVER_FAKE_DOWN_FILE: this.downFile(host),
      HEARTH_BACKEND_HEALTH_CHECK_INTERVAL_MS: '500',
      HEARTH_BACKEND_HEALTH_PROBE_TIMEOUT_MS: '500',
      HEARTH_ORPHANS_SWEEP_INTERVAL_MS: '2000',
      HEARTH_ORPHANS_AUTO_CLEANUP: 'true',
      HEARTH_ORPHANS_GRACE_MS: String(this.options.leaseTtlMs),
      HEARTH_FENCING_METHOD: 'exec',
      HEARTH_FENCING_EXEC_COMMAND: FENCE_KILL,
      HEARTH_FENCING_EXEC_ARGS: `--refuse-dir,${this.refuseDir}`,
      HEARTH_FENCING_EXEC_TIMEOUT_MS: '10000',
      HEARTH_FENCING_RETRY_MAX_DELAY_MS: '2000',
      HEARTH_LOG_LEVEL: 'info',
      ...(this.options.replication ? { HEARTH_DRIVER_FAKE_REPLICATION_TARGETS: `${REPLICA_ID}:simulated-dr-site` } : {}),
    };
  }

  /** While this file exists, `host`'s fake driver reports its backend down (the backend-down fault). */
  downFile(host: string): string {
    return join(dirname(this.journal), `backend-down-${host}`);
  }

  /** The API process. */
  get api(): HearthProcess {
    if (!this.apiRun) throw new Error('not started');
    return this.apiRun.proc;
  }

  /** The running process of `host`, if any. */
  worker(host: string): HearthProcess | undefined {
    const run = this.current.get(host);
    return run?.proc.process.alive ? run.proc : undefined;
  }

  /**
   * Starts `host` (again); tries a few times, since a start during a server restart can fail.
   * With `root`, the build in that directory (an earlier release) instead of the current tree.
   */
  async startWorker(host: string, root?: string): Promise<HearthProcess> {
    if (!this.hosts.includes(host)) throw new Error(`no host ${host}`);
    const etcdUrls = this.proxies.get(host)?.url ?? this.servers.etcdEndpoints.join(',');
    let last: unknown;
    for (let attempt = 1; attempt <= 4; attempt++) {
      try {
        // The first release knows no replication option (it would refuse to start on it); it runs without.
        const { HEARTH_DRIVER_FAKE_REPLICATION_TARGETS: _replication, ...released } = this.env(host, etcdUrls, 'worker');
        const env = root === undefined ? this.env(host, etcdUrls, 'worker') : released;
        const proc = await startHearth({ name: `worker-${host}${root === undefined ? '' : '-release'}`, env, startTimeoutMs: 45_000, ...(root === undefined ? {} : { root }) });
        const run = track(proc);
        this.runs.push(run);
        this.current.set(host, run);
        return proc;
      } catch (err) {
        last = err;
      }
    }
    throw last instanceof Error ? last : new Error(String(last));
  }

  /** SIGTERM of `host`'s process, as a rolling update stops a pod; resolves with how it exited. */
  async stopWorker(host: string): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
    const run = this.current.get(host);
    if (!run?.proc.process.alive) return undefined;
    run.by = 'stop';
    return run.proc.stop(45_000);
  }

  /** kill -9 of `host`'s process. */
  async kill(host: string): Promise<void> {
    const run = this.current.get(host);
    if (!run) return;
    run.by = 'kill';
    await run.proc.kill();
  }

  /**
   * Starts again every worker whose process has ended — its fence killed it (a frozen or
   * cut-off worker whose lease expired), or the suite did (a refused fence, confirmed, then
   * powered off) — then waits until every worker is ready. Returns the hosts started again. A
   * process that crashed is started again too; the "no process crashed" row still reports it,
   * unless etcd shows its fence.
   */
  async recover(timeoutMs = 90_000): Promise<string[]> {
    const restarted: string[] = [];
    const end = Date.now() + timeoutMs;
    for (let round = 0; round < 3; round++) {
      for (const h of this.hosts) {
        const run = this.current.get(h);
        if (run && !run.proc.process.alive) {
          await this.startWorker(h);
          restarted.push(h);
        }
      }
      try {
        await this.allReady(Math.max(1_000, end - Date.now()));
        return restarted;
      } catch (err) {
        // A fence may have killed one more meanwhile (a death seen later): look again, bounded.
        if (Date.now() >= end || this.hosts.every((h) => this.worker(h))) throw err;
      }
    }
    await this.allReady(Math.max(1_000, end - Date.now()));
    return restarted;
  }

  /** Waits until every worker and the API process answer `/readyz` with 200. */
  async allReady(timeoutMs = 60_000): Promise<void> {
    await waitFor(
      async () => {
        for (const h of [...this.hosts, 'api']) {
          const p = h === 'api' ? this.apiRun?.proc : this.worker(h);
          if (!p) return false;
          const res = await fetch(`${p.opsUrl}/readyz`, { signal: AbortSignal.timeout(1_000) });
          if (res.status !== 200) return false;
        }
        return true;
      },
      { timeoutMs, intervalMs: 100, what: 'every worker and the API ready' },
    );
  }

  /** The processes (`api`, `w1`, …) that do not answer `/readyz` with 200 now (each asked with a 1 s bound). */
  async notReadyNow(): Promise<string[]> {
    const names = [...this.hosts, 'api'];
    const answers = await Promise.all(
      names.map(async (h) => {
        const p = h === 'api' ? this.apiRun?.proc : this.worker(h);
        return p ? fetch(`${p.opsUrl}/readyz`, { signal: AbortSignal.timeout(1_000) }).then((res) => res.status === 200, () => false) : false;
      }),
    );
    return names.filter((_, i) => !answers[i]);
  }

  /** The incarnation each worker runs as now, from its alive key (absent: none, or etcd did not answer). */
  async incarnations(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    await Promise.all(
      this.hosts.map(async (h) => {
        const text = await this.client.get(`${ETCD_PREFIX}/alive/${h}@${BACKEND}`).string().catch(() => null);
        if (text !== null) out.set(h, (JSON.parse(text) as { incarnation: string }).incarnation);
      }),
    );
    return out;
  }

  /** Stops every process still running (SIGTERM) and returns how every run ended. */
  async stopAll(): Promise<ProcessEnd[]> {
    await Promise.all(
      this.runs.map(async (r) => {
        if (!r.proc.process.alive) return;
        r.by = 'stop';
        await r.proc.stop(15_000);
      }),
    );
    return this.ends();
  }

  /** How every run ended so far (a running process counts as not ended: `by` none, no code). */
  ends(): ProcessEnd[] {
    return this.runs
      .filter((r) => !r.proc.process.alive)
      .map((r) => ({
        name: `${r.proc.name} (pid ${r.proc.pid})`,
        pid: r.proc.pid,
        by: r.by,
        ...(r.endedAt === undefined ? {} : { endedAt: r.endedAt }),
        code: r.proc.process.exit?.code ?? null,
        signal: r.proc.process.exit?.signal ?? null,
        stray: r.proc
          .output()
          .split('\n')
          .filter((l) => l.trim() !== '' && !l.startsWith('{'))
          .slice(0, 5),
        fenced: fenceLogs(r.proc.output()),
      }));
  }

  /** Process runs that ended although nobody killed or stopped them. */
  crashed(): ProcessEnd[] {
    return this.ends().filter((e) => e.by === 'none');
  }

  /** Every process's log lines (JSON), for diagnosis. */
  logs(): { name: string; pid: number; lines: Record<string, unknown>[] }[] {
    return this.runs.map((r) => ({ name: r.proc.name, pid: r.proc.pid, lines: r.proc.logs() }));
  }

  /** Stops everything, servers included. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.runs) if (r.proc.process.alive) r.proc.process.killNow();
    for (const p of this.proxies.values()) await p.close();
    this.client.close();
    await this.servers.close();
  }
}

/** The `fenced a dead incarnation` lines of a process's output (a line torn by a kill is skipped). */
function fenceLogs(output: string): { incarnation: string; how: string }[] {
  const out: { incarnation: string; how: string }[] = [];
  for (const line of output.split('\n')) {
    if (!line.includes('"fenced a dead incarnation"')) continue;
    try {
      const l = JSON.parse(line) as { msg?: string; incarnation?: string; how?: string };
      if (l.msg === 'fenced a dead incarnation') out.push({ incarnation: String(l.incarnation), how: String(l.how) });
    } catch {
      // Torn by a kill: not a complete log line.
    }
  }
  return out;
}
