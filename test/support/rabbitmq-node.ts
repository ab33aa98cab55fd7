import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect } from 'amqplib';
import { ManagedProcess } from './process.js';
import { firstChild } from './socket-owner.js';
import { GiveUp, waitFor } from './wait.js';

export const RABBIT_BIN = '/usr/lib/rabbitmq/bin';
const run = promisify(execFile);

/** How to run one node; the cluster builds it (see {@link RabbitCluster}). */
export interface RabbitNodeSpec {
  readonly index: number;
  /** The short name, e.g. `hearth-0`; the node is `<shortName>@localhost`. */
  readonly shortName: string;
  readonly dir: string;
  readonly amqpPort: number;
  readonly distPort: number;
  /** Shared by the cluster: where the cookie is (`.erlang.cookie`). */
  readonly home: string;
  /** The cluster's port mapper ({@link PortMapper}). */
  readonly epmdPort: number;
  readonly netTicktimeS: number;
  /** Lines of rabbitmq.conf after the listener (partition handling, logs, extra settings). */
  readonly config: readonly string[];
  readonly plugins: readonly string[];
  /** The management plugin's HTTP port, when `plugins` has `rabbitmq_management`. */
  readonly managementPort?: number;
}

/**
 * One node of a {@link RabbitCluster}: its own node name, AMQP port, distribution port and data
 * dir, the cluster's cookie and port mapper. Stopped by its PID: the wrapper shell's process
 * group, so a signal reaches the Erlang VM too.
 */
export class RabbitNode {
  private process: ManagedProcess | undefined;
  private vmPid: number | undefined;

  constructor(private readonly spec: RabbitNodeSpec) {}

  get index(): number {
    return this.spec.index;
  }

  /** The Erlang node name, e.g. `hearth-0@localhost`. */
  get name(): string {
    return `${this.spec.shortName}@localhost`;
  }

  get shortName(): string {
    return this.spec.shortName;
  }

  get dir(): string {
    return this.spec.dir;
  }

  get amqpPort(): number {
    return this.spec.amqpPort;
  }

  get distPort(): number {
    return this.spec.distPort;
  }

  /** `amqp://guest:guest@127.0.0.1:<port>`, optionally for a vhost. */
  url(vhost?: string): string {
    const base = `amqp://guest:guest@127.0.0.1:${this.spec.amqpPort}`;
    return vhost === undefined ? base : `${base}/${encodeURIComponent(vhost)}`;
  }

  /** `http://127.0.0.1:<port>` of the management API (the cluster must enable `rabbitmq_management`). */
  managementUrl(): string {
    if (this.spec.managementPort === undefined) throw new Error(`${this.name} has no management plugin (start the cluster with plugins: ['rabbitmq_management'])`);
    return `http://127.0.0.1:${this.spec.managementPort}`;
  }

  /** PID of the wrapper shell (the process group) while running, -1 otherwise. */
  get pid(): number {
    return this.process?.alive ? this.process.pid : -1;
  }

  get alive(): boolean {
    return this.process?.alive ?? false;
  }

  /** The Erlang VM's PID (child of the wrapper shell), -1 when not running. */
  async beamPid(): Promise<number> {
    if (!this.process?.alive) return -1;
    this.vmPid ??= await firstChild(this.process.pid);
    return this.vmPid ?? -1;
  }

  /** The wrapper's output and the node's own log, for error messages. */
  tail(lines = 30): string {
    return this.process?.tail(lines) ?? '';
  }

  /** The environment RabbitMQ's scripts (server and CLI) need for this node. */
  env(): NodeJS.ProcessEnv {
    const erlArgs = `-kernel net_ticktime ${this.spec.netTicktimeS} -start_epmd false`;
    return {
      PATH: process.env.PATH,
      HOME: this.spec.home,
      LANG: 'C.UTF-8',
      RABBITMQ_NODENAME: this.name,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(this.spec.amqpPort),
      RABBITMQ_DIST_PORT: String(this.spec.distPort),
      RABBITMQ_MNESIA_BASE: join(this.spec.dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(this.spec.dir, 'log'),
      RABBITMQ_PID_FILE: join(this.spec.dir, 'rabbit.pid'),
      RABBITMQ_CONFIG_FILE: join(this.spec.dir, 'rabbitmq.conf'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(this.spec.dir, 'enabled_plugins'),
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: `-kernel inet_dist_use_interface {127,0,0,1} ${erlArgs}`,
      // The CLI is an Erlang node too: same tick time (or the node drops it mid-command).
      RABBITMQ_CTL_ERL_ARGS: erlArgs,
      // A VM that fails to boot writes its crash dump here, not into the test's working dir.
      ERL_CRASH_DUMP: join(this.spec.dir, 'erl_crash.dump'),
      ERL_EPMD_PORT: String(this.spec.epmdPort),
      ERL_EPMD_ADDRESS: '127.0.0.1',
    };
  }

  /** Writes rabbitmq.conf and enabled_plugins (once, before the first start). */
  async writeConfig(): Promise<void> {
    await mkdir(join(this.spec.dir, 'log'), { recursive: true });
    const management = this.spec.managementPort === undefined ? [] : [`management.tcp.ip = 127.0.0.1`, `management.tcp.port = ${this.spec.managementPort}`];
    const lines = [`listeners.tcp.1 = 127.0.0.1:${this.spec.amqpPort}`, ...management, ...this.spec.config];
    await writeFile(join(this.spec.dir, 'rabbitmq.conf'), `${lines.join('\n')}\n`);
    await writeFile(join(this.spec.dir, 'enabled_plugins'), `[${this.spec.plugins.join(',')}].\n`);
  }

  /** Spawns the node without waiting (the cluster waits for all nodes together). */
  launch(): ManagedProcess {
    if (this.process?.alive) throw new Error(`${this.name} is already running (pid ${this.process.pid})`);
    this.vmPid = undefined;
    this.process = ManagedProcess.start({
      command: `${RABBIT_BIN}/rabbitmq-server`,
      args: [],
      name: 'rabbitmq',
      logDir: this.spec.dir,
      env: this.env(),
      group: true,
    });
    return this.process;
  }

  /**
   * True when the node opens an AMQP connection within `timeoutMs` (its rabbit application
   * runs). Never hangs: a stopped (SIGSTOP) or pausing node answers false.
   */
  async acceptsAmqp(timeoutMs = 2_000): Promise<boolean> {
    const opening = connect(this.url(), { timeout: timeoutMs });
    // Whenever it opens (even after the deadline), close it without waiting: a node that goes
    // away mid-close would leave the close pending and emit an error nobody else listens to.
    void opening.then(
      (conn) => {
        conn.on('error', () => undefined);
        conn.close().catch(() => undefined);
      },
      () => undefined,
    );
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs + 500);
    });
    try {
      return await Promise.race([opening.then(() => true, () => false), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits until the node accepts AMQP connections; fails at once when it exits. */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    const proc = this.process;
    if (!proc) throw new Error(`${this.name} was never started`);
    await waitFor(
      async () => {
        if (!proc.alive) throw new GiveUp(`${this.name} exited (${JSON.stringify(proc.exit)}):\n${proc.tail()}`);
        return this.acceptsAmqp();
      },
      { timeoutMs, intervalMs: 250, what: `${this.name} accepting AMQP on 127.0.0.1:${this.spec.amqpPort}` },
    );
  }

  /** Starts the node again with its data, ports and name; resolves once it accepts AMQP. */
  async start(timeoutMs = 60_000): Promise<void> {
    this.launch();
    await this.waitReady(timeoutMs);
  }

  /** SIGKILL to the process group (kill -9): connections drop without a close handshake. */
  async kill(): Promise<void> {
    this.process?.killNow();
    await this.process?.waitForExit();
  }

  /** SIGSTOP: the VM stops answering without closing a connection (the half-open case). */
  pause(): void {
    this.process?.signal('SIGSTOP');
  }

  /** SIGCONT after {@link pause}. */
  resume(): void {
    this.process?.signal('SIGCONT');
  }

  /** A clean stop (SIGTERM), SIGKILL after 15 s. */
  async stop(): Promise<void> {
    await this.process?.stop(15_000);
  }

  /** Stops, waits `downMs`, starts again with the same data, ports and name (it rejoins). */
  async restart(downMs = 0): Promise<void> {
    await this.stop();
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    await this.start();
  }

  /** Runs `rabbitmqctl -n <this node> <args>`; resolves with its stdout. */
  async ctl(...args: string[]): Promise<string> {
    return this.cli('rabbitmqctl', args);
  }

  /** Runs `rabbitmq-queues -n <this node> <args>`; resolves with its stdout. */
  async queues(...args: string[]): Promise<string> {
    return this.cli('rabbitmq-queues', args);
  }

  private async cli(tool: string, args: readonly string[]): Promise<string> {
    try {
      const { stdout } = await run(`${RABBIT_BIN}/${tool}`, ['-n', this.name, ...args], { env: this.env(), timeout: 60_000 });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(`${tool} -n ${this.name} ${args.join(' ')} failed: ${(e.stderr || e.stdout || e.message).trim()}`, { cause: err });
    }
  }
}
