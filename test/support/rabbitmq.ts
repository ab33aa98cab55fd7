import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect } from 'amqplib';
import { requireBinary } from './binaries.js';
import { freePort } from './ports.js';
import { ManagedProcess } from './process.js';
import { makeTestDir, removeTestDir } from './test-dirs.js';
import { GiveUp, waitFor } from './wait.js';

const RABBIT_BIN = '/usr/lib/rabbitmq/bin';
const run = promisify(execFile);

/** Extra settings for one RabbitMQ node, e.g. TLS listeners. */
export interface RabbitStartOptions {
  /** Lines appended to rabbitmq.conf; `{dir}` is replaced by the node's temp dir. */
  readonly extraConfig?: readonly string[];
  /** Plugins to enable, e.g. `rabbitmq_auth_mechanism_ssl`. */
  readonly plugins?: readonly string[];
}

/** Where a node started by {@link RabbitServer.start} lives. */
export interface RabbitNodeInfo {
  readonly dir: string;
  readonly amqpPort: number;
  readonly distPort: number;
  readonly epmdPort: number;
}

/**
 * One RabbitMQ node started from the Debian package on free loopback ports, with its own
 * epmd, Erlang cookie and data in a temp dir, so several can run side by side. The wrapper on
 * PATH switches user and loses the environment, so RabbitMQ's own scripts are called directly.
 * `restart()` keeps the dir; `stop()` removes it (test-dirs.ts; `HEARTH_KEEP_TEST_DIRS=1` keeps it).
 */
export class RabbitServer {
  private node: ManagedProcess | undefined;
  private epmd: ManagedProcess | undefined;
  private stopped = false;

  private constructor(
    readonly dir: string,
    readonly amqpPort: number,
    private readonly distPort: number,
    private readonly epmdPort: number,
    private readonly options: RabbitStartOptions,
    /** Whether this handle started the node (and owns its dir), not {@link attach}ed to it. */
    private readonly owned: boolean,
  ) {}

  /** What another process needs to run `rabbitmqctl` against this node (see {@link attach}). */
  describe(): RabbitNodeInfo {
    return { dir: this.dir, amqpPort: this.amqpPort, distPort: this.distPort, epmdPort: this.epmdPort };
  }

  /** A handle on a node another process started: `ctl` and `addVhost` work; stopping does not. */
  static attach(info: RabbitNodeInfo): RabbitServer {
    return new RabbitServer(info.dir, info.amqpPort, info.distPort, info.epmdPort, {}, false);
  }

  /** Starts a fresh node and waits until it accepts AMQP connections. */
  static async start(options: RabbitStartOptions = {}): Promise<RabbitServer> {
    requireBinary(`${RABBIT_BIN}/rabbitmq-server`, 'rabbitmq-server');
    requireBinary('epmd', 'erlang-base (a dependency of rabbitmq-server)');
    const dir = await makeTestDir('hearth-rabbit-');
    const server = new RabbitServer(dir, await freePort(), await freePort(), await freePort(), options, true);
    await server.writeConfig();
    await server.launch();
    return server;
  }

  /** `amqp://guest:guest@127.0.0.1:<port>` (guest may connect from loopback). */
  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.amqpPort}`;
  }

  get nodeName(): string {
    return `hearth${this.amqpPort}@localhost`;
  }

  get pid(): number {
    return this.node?.pid ?? -1;
  }

  /** The environment RabbitMQ's scripts (server and CLI) need for this node. */
  private env(): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      HOME: this.dir,
      LANG: 'C.UTF-8',
      RABBITMQ_NODENAME: this.nodeName,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(this.amqpPort),
      RABBITMQ_DIST_PORT: String(this.distPort),
      RABBITMQ_MNESIA_BASE: join(this.dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(this.dir, 'log'),
      RABBITMQ_PID_FILE: join(this.dir, 'rabbit.pid'),
      RABBITMQ_CONFIG_FILE: join(this.dir, 'rabbitmq.conf'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(this.dir, 'enabled_plugins'),
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
      ERL_EPMD_PORT: String(this.epmdPort),
      ERL_EPMD_ADDRESS: '127.0.0.1',
    };
  }

  private async writeConfig(): Promise<void> {
    await mkdir(join(this.dir, 'log'), { recursive: true });
    const lines = [
      `listeners.tcp.1 = 127.0.0.1:${this.amqpPort}`,
      'log.console = false',
      'log.file.level = warning',
      'disk_free_limit.absolute = 50MB',
      ...(this.options.extraConfig ?? []).map((l) => l.replaceAll('{dir}', this.dir)),
    ];
    await writeFile(join(this.dir, 'rabbitmq.conf'), `${lines.join('\n')}\n`);
    await writeFile(join(this.dir, 'enabled_plugins'), `[${(this.options.plugins ?? []).join(',')}].\n`);
  }

  private async launch(): Promise<void> {
    this.epmd ??= ManagedProcess.start({
      command: 'epmd',
      args: ['-address', '127.0.0.1', '-port', String(this.epmdPort)],
      name: 'epmd',
      logDir: this.dir,
      env: this.env(),
    });
    this.node = ManagedProcess.start({
      command: `${RABBIT_BIN}/rabbitmq-server`,
      args: [],
      name: 'rabbitmq',
      logDir: this.dir,
      env: this.env(),
      group: true,
    });
    const node = this.node;
    await waitFor(
      async () => {
        if (!node.alive) throw new GiveUp(`rabbitmq exited (${JSON.stringify(node.exit)}):\n${node.tail()}`);
        const conn = await connect(this.url);
        await conn.close();
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 250, what: `RabbitMQ on 127.0.0.1:${this.amqpPort}` },
    );
  }

  /** Runs `rabbitmqctl <args>` against this node; resolves with its stdout. */
  async ctl(...args: string[]): Promise<string> {
    const { stdout } = await run(`${RABBIT_BIN}/rabbitmqctl`, ['-n', this.nodeName, ...args], { env: this.env(), timeout: 60_000 });
    return stdout;
  }

  /** Creates a vhost with full permissions for guest; resolves with its AMQP URL. */
  async addVhost(vhost: string): Promise<string> {
    await this.ctl('add_vhost', vhost);
    await this.ctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
    return `${this.url}/${encodeURIComponent(vhost)}`;
  }

  /** Stops the node (SIGTERM to its process group) and starts it again on the same ports and data. */
  async restart(downMs = 0): Promise<void> {
    if (this.stopped) throw new Error(`RabbitMQ on 127.0.0.1:${this.amqpPort} was stopped for good (its dir is removed): start a new one`);
    await this.node?.stop(15_000);
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    await this.launch();
  }

  /** SIGKILLs the node: connections drop without a close handshake. */
  async kill(): Promise<void> {
    this.node?.killNow();
    await this.node?.waitForExit();
  }

  /** Stops the node and its epmd for good (SIGTERM, SIGKILL after 15 s) and removes its dir. Idempotent. */
  async stop(): Promise<void> {
    await this.node?.stop(15_000);
    await this.epmd?.stop(2_000);
    if (this.stopped || !this.owned) return;
    this.stopped = true;
    await removeTestDir(this.dir);
  }
}
