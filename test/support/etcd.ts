import { join } from 'node:path';
import { freePort } from './ports.js';
import { ManagedProcess } from './process.js';
import { requireBinary } from './binaries.js';
import { makeTestDir, removeTestDir } from './test-dirs.js';
import { GiveUp, waitFor } from './wait.js';

/** Extra flags for one etcd member, e.g. TLS or auto-compaction. */
export interface EtcdStartOptions {
  readonly args?: readonly string[];
  /** Client URL scheme; `https` needs the TLS flags in `args`. */
  readonly scheme?: 'http' | 'https';
  /** How to probe readiness when plain `GET /health` cannot be used (e.g. client-cert auth). */
  readonly ready?: (server: EtcdServer) => Promise<boolean>;
}

/**
 * One etcd member started from the Debian binary on free loopback ports, with its data in a
 * temp dir. `restart()` brings it back on the same ports and data; `stop()` ends it by PID for
 * good and removes the dir (test-dirs.ts; `HEARTH_KEEP_TEST_DIRS=1` keeps it).
 */
export class EtcdServer {
  private process: ManagedProcess | undefined;
  private stopped = false;

  private constructor(
    readonly dataDir: string,
    readonly clientPort: number,
    readonly peerPort: number,
    private readonly options: EtcdStartOptions,
  ) {}

  /** Starts a fresh member and waits until it answers. */
  static async start(options: EtcdStartOptions = {}): Promise<EtcdServer> {
    requireBinary('etcd', 'etcd-server');
    const dataDir = await makeTestDir('hearth-etcd-');
    const server = new EtcdServer(dataDir, await freePort(), await freePort(), options);
    await server.launch();
    return server;
  }

  /** The client URL, e.g. `http://127.0.0.1:40123`. */
  get url(): string {
    return `${this.options.scheme ?? 'http'}://127.0.0.1:${this.clientPort}`;
  }

  get endpoints(): string[] {
    return [this.url];
  }

  get pid(): number {
    return this.process?.pid ?? -1;
  }

  get logPath(): string {
    return join(this.dataDir, 'etcd.log');
  }

  private async launch(): Promise<void> {
    const peer = `http://127.0.0.1:${this.peerPort}`;
    this.process = ManagedProcess.start({
      command: 'etcd',
      name: 'etcd',
      logDir: this.dataDir,
      args: [
        '--name', 'hearth-test',
        '--data-dir', join(this.dataDir, 'data'),
        '--listen-client-urls', this.url,
        '--advertise-client-urls', this.url,
        '--listen-peer-urls', peer,
        '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `hearth-test=${peer}`,
        '--initial-cluster-state', 'new',
        '--auto-compaction-mode', 'revision',
        '--auto-compaction-retention', '10000',
        ...(this.options.args ?? []),
      ],
    });
    const proc = this.process;
    await waitFor(
      async () => {
        if (!proc.alive) throw new GiveUp(`etcd exited (${JSON.stringify(proc.exit)}):\n${proc.tail()}`);
        return this.options.ready ? this.options.ready(this) : this.healthy();
      },
      { timeoutMs: 20_000, what: `etcd on ${this.url}` },
    );
  }

  private async healthy(): Promise<boolean> {
    const res = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(1_000) });
    const body = (await res.json()) as { health?: string };
    return body.health === 'true';
  }

  /** Stops the member (SIGTERM) and starts it again on the same ports and data. */
  async restart(downMs = 0): Promise<void> {
    if (this.stopped) throw new Error(`etcd on ${this.url} was stopped for good (its dir is removed): start a new one`);
    await this.halt();
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    await this.launch();
  }

  /** SIGKILLs the member (no clean shutdown). */
  async kill(): Promise<void> {
    this.process?.killNow();
    await this.process?.waitForExit();
  }

  /** Sends SIGSTOP / SIGCONT: the member stops answering without closing connections. */
  pause(): void {
    this.process?.signal('SIGSTOP');
  }

  resume(): void {
    this.process?.signal('SIGCONT');
  }

  /** Stops the member for good (SIGTERM, SIGKILL after 5 s) and removes its dir. Idempotent. */
  async stop(): Promise<void> {
    await this.halt();
    if (this.stopped) return;
    this.stopped = true;
    await removeTestDir(this.dataDir);
  }

  private async halt(): Promise<void> {
    await this.process?.stop(5_000);
  }
}
