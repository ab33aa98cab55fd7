import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ManagedProcess } from './process.js';
import { GiveUp, waitFor } from './wait.js';

/** What one member reports about itself and the cluster (`/v3/maintenance/status`). */
export interface EtcdMemberStatus {
  /** This member's id, as a decimal string (etcd's uint64). */
  readonly memberId: string;
  /** The leader it follows, `'0'` when it knows none. */
  readonly leaderId: string;
  readonly raftTerm: number;
  readonly raftIndex: number;
}

/** How to run one member; the cluster builds it (see {@link EtcdCluster}). */
export interface EtcdMemberSpec {
  readonly index: number;
  readonly name: string;
  readonly dir: string;
  readonly clientPort: number;
  /** The port it listens on for its peers. */
  readonly peerPort: number;
  /** Every flag but the per-member ports and dirs (cluster, token, timings, compaction). */
  readonly args: readonly string[];
}

/** A call through the member's JSON gateway failed (deadline, refused, or etcd's error). */
export class EtcdCallError extends Error {}

/**
 * One member of an {@link EtcdCluster}: its own data dir and port pair, stopped by its PID.
 * `kill`, `pause`/`resume`, `stop`, `start` and `restart` keep the data dir and the ports.
 */
export class EtcdMember {
  private process: ManagedProcess | undefined;

  constructor(private readonly spec: EtcdMemberSpec) {}

  get index(): number {
    return this.spec.index;
  }

  get name(): string {
    return this.spec.name;
  }

  get dir(): string {
    return this.spec.dir;
  }

  get clientPort(): number {
    return this.spec.clientPort;
  }

  get peerPort(): number {
    return this.spec.peerPort;
  }

  /** The client URL, e.g. `http://127.0.0.1:12379`. */
  get url(): string {
    return `http://127.0.0.1:${this.spec.clientPort}`;
  }

  /** PID while running, -1 otherwise. */
  get pid(): number {
    return this.process?.alive ? this.process.pid : -1;
  }

  get alive(): boolean {
    return this.process?.alive ?? false;
  }

  get logPath(): string {
    return join(this.spec.dir, 'etcd.log');
  }

  /** The end of its log, for error messages. */
  tail(lines = 30): string {
    return this.process?.tail(lines) ?? '';
  }

  /** Spawns the process without waiting (the cluster waits for all members together). */
  launch(): ManagedProcess {
    if (this.process?.alive) throw new Error(`${this.name} is already running (pid ${this.process.pid})`);
    const url = this.url;
    this.process = ManagedProcess.start({
      command: 'etcd',
      name: 'etcd',
      logDir: this.spec.dir,
      args: [
        '--name', this.spec.name,
        '--data-dir', join(this.spec.dir, 'data'),
        '--listen-client-urls', url,
        '--advertise-client-urls', url,
        '--listen-peer-urls', `http://127.0.0.1:${this.spec.peerPort}`,
        ...this.spec.args,
      ],
    });
    return this.process;
  }

  /**
   * Starts the member again on its data dir and ports; resolves once it serves its client port
   * (not once it has a leader: a member restarted without a quorum has none).
   */
  async start(timeoutMs = 20_000): Promise<void> {
    const proc = this.launch();
    await waitFor(
      async () => {
        if (!proc.alive) throw new GiveUp(`${this.name} exited (${JSON.stringify(proc.exit)}):\n${proc.tail()}`);
        const res = await fetch(`${this.url}/version`, { signal: AbortSignal.timeout(1_000) });
        return res.ok;
      },
      { timeoutMs, intervalMs: 100, what: `${this.name} serving ${this.url}` },
    );
  }

  /** True when the member answers `/health` with a leader and no alarm. */
  async healthy(timeoutMs = 1_000): Promise<boolean> {
    try {
      const res = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(timeoutMs) });
      return ((await res.json()) as { health?: string }).health === 'true';
    } catch {
      return false;
    }
  }

  /** SIGKILL (kill -9): no clean shutdown. Resolves once the process is gone. */
  async kill(): Promise<void> {
    this.process?.killNow();
    await this.process?.waitForExit();
  }

  /** SIGSTOP: the member stops answering without closing a connection (the half-open case). */
  pause(): void {
    this.process?.signal('SIGSTOP');
  }

  /** {@link pause}, then waits until the kernel shows the process stopped (`T` in /proc/<pid>/stat). */
  async paused(timeoutMs = 5_000): Promise<void> {
    this.pause();
    const pid = this.pid;
    await waitFor(async () => /\) T /.test(await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')), { timeoutMs, intervalMs: 10, what: `${this.name} (pid ${pid}) stopped` });
  }

  /** SIGCONT after {@link pause}. */
  resume(): void {
    this.process?.signal('SIGCONT');
  }

  /** SIGTERM (after a SIGCONT, should it be paused), SIGKILL after 5 s. */
  async stop(): Promise<void> {
    await this.process?.stop(5_000);
  }

  /** Stops (SIGTERM), waits `downMs`, and starts again on the same data dir and ports. */
  async restart(downMs = 0): Promise<void> {
    await this.stop();
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    await this.start();
  }

  /** Its own view of the cluster, or undefined when it does not answer within `timeoutMs`. */
  async status(timeoutMs = 1_000): Promise<EtcdMemberStatus | undefined> {
    try {
      const body = (await this.call('/v3/maintenance/status', {}, timeoutMs)) as {
        header?: { member_id?: string };
        leader?: string;
        raftTerm?: string;
        raftIndex?: string;
      };
      if (!body.header?.member_id) return undefined;
      return {
        memberId: body.header.member_id,
        leaderId: body.leader ?? '0',
        raftTerm: Number(body.raftTerm ?? 0),
        raftIndex: Number(body.raftIndex ?? 0),
      };
    } catch {
      return undefined;
    }
  }

  /**
   * Writes `key` through this member (a raft proposal: it needs a quorum); resolves with the
   * revision. Rejects with {@link EtcdCallError} when it fails or takes longer than `timeoutMs`.
   */
  async put(key: string, value: string, timeoutMs = 2_000): Promise<number> {
    const body = (await this.call('/v3/kv/put', { key: b64(key), value: b64(value) }, timeoutMs)) as { header?: { revision?: string } };
    return Number(body.header?.revision ?? 0);
  }

  /** Reads `key` through this member; linearizable unless `serializable` (then local, no quorum). */
  async get(key: string, options: { timeoutMs?: number; serializable?: boolean } = {}): Promise<string | undefined> {
    const body = (await this.call('/v3/kv/range', { key: b64(key), serializable: options.serializable ?? false }, options.timeoutMs ?? 2_000)) as {
      kvs?: { value?: string }[];
    };
    const value = body.kvs?.[0]?.value;
    return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
  }

  private async call(path: string, body: unknown, timeoutMs: number): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      throw new EtcdCallError(`${this.name} ${path}: ${(err as Error).message}`, { cause: err });
    }
    const json = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
    if (!res.ok || json.error) throw new EtcdCallError(`${this.name} ${path}: ${res.status} ${json.message ?? json.error ?? ''}`);
    return json;
  }
}

function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}
