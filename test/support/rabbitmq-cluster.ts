/**
 * A three-node (by default) RabbitMQ cluster on loopback from Debian's `rabbitmq-server`, for the
 * tests, `make chaos` and `make bench` that measure failover. Everything else keeps the single
 * node of rabbitmq.ts.
 *
 * Layout: one temp dir per cluster (`hearth-rabbit-cluster-*`, removed by the cluster's
 * `stop()`) holding the one Erlang cookie (it is every node's and every CLI call's HOME), one
 * sub-dir per node (`hearth-<i>/`: mnesia, log, rabbitmq.conf; the wrapper's output in
 * `rabbitmq.log`); per node a name `hearth-<i>@localhost`, an AMQP port and a distribution port
 * from ports.ts. The nodes find each other through the cluster's own port mapper
 * ({@link PortMapper}, `ERL_EPMD_PORT`), which answers every lookup with the {@link PeerLinks}
 * proxy in front of the node's distribution port: `partition(i)` cuts node i from the other
 * nodes while AMQP clients and the CLI still reach it.
 *
 * Settings: `cluster_partition_handling = pause_minority`; `net_ticktime` 10 s (RabbitMQ's
 * lowest recommended; a silent partition is noticed after 10–12.5 s; a cut one at once). Nodes
 * start in parallel, then nodes 1.. join node 0 with `rabbitmqctl stop_app`, `join_cluster`,
 * `start_app`, the joins in parallel. Measured on 2 shared cores (docs/failure-modes.md, "Test
 * topology"): start 25–36 s (boot ~10 s, joins ~15 s: every CLI call boots an Erlang VM).
 *
 * Use: `const rabbit = await RabbitCluster.start()`; `rabbit.urls`; `await rabbit.addVhost(v)`;
 * `rabbit.node(i).kill() / pause() / resume() / stop() / start() / restart()`;
 * `rabbit.partition(i)` / `rabbit.heal(i)`; `await rabbit.queueLeader(v, q)`;
 * `await rabbit.grow(node)`; `await rabbit.stop()`. With `plugins: ['rabbitmq_management']` each node
 * also serves the management API on a port of its own (`rabbit.managementUrls`).
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireBinary } from './binaries.js';
import { PortMapper } from './epmd.js';
import { type PartitionMode, PeerLinks } from './peer-links.js';
import { freePort } from './ports.js';
import { RABBIT_BIN, RabbitNode } from './rabbitmq-node.js';
import { makeTestDir, removeTestDir } from './test-dirs.js';

export { RabbitNode } from './rabbitmq-node.js';

/** Options of {@link RabbitCluster.start}. */
export interface RabbitClusterOptions {
  /** Number of nodes; default 3. */
  readonly nodes?: number;
  /** Erlang's `net_ticktime` in seconds; default 10. */
  readonly netTicktimeS?: number;
  /** `cluster_partition_handling`; default `pause_minority`. */
  readonly partitionHandling?: 'pause_minority' | 'autoheal' | 'ignore';
  /** Lines appended to every node's rabbitmq.conf. */
  readonly extraConfig?: readonly string[];
  /** Plugins every node enables; with `rabbitmq_management`, each node's API listens on a port of its own (`node(i).managementUrl()`). */
  readonly plugins?: readonly string[];
  /** Budget for starting and joining every node; default 120 s. */
  readonly startTimeoutMs?: number;
}

/** One quorum queue as the cluster sees it. */
export interface QuorumQueueInfo {
  readonly leader: RabbitNode | undefined;
  readonly members: RabbitNode[];
  readonly online: RabbitNode[];
}

const START_ATTEMPTS = 3;

/** A local RabbitMQ cluster of real processes whose nodes a test can kill, pause and partition. */
export class RabbitCluster {
  private stopped = false;
  /** Milliseconds for starting every node, joining them and seeing all of them running. */
  startMs = 0;
  /** Where {@link startMs} went: booting the nodes in parallel, joining, until all run. */
  readonly startPhasesMs = { boot: 0, join: 0, settle: 0 };

  private constructor(
    readonly dir: string,
    readonly nodes: readonly RabbitNode[],
    private readonly links: PeerLinks,
    private readonly epmd: PortMapper,
  ) {}

  /** Starts the nodes in parallel, joins them to node 0, and waits until all of them run. */
  static async start(options: RabbitClusterOptions = {}): Promise<RabbitCluster> {
    requireBinary(`${RABBIT_BIN}/rabbitmq-server`, 'rabbitmq-server');
    for (let attempt = 1; ; attempt++) {
      const started = Date.now();
      const cluster = await RabbitCluster.create(options);
      try {
        await cluster.form(options.startTimeoutMs ?? 120_000);
        cluster.startMs = Date.now() - started;
        return cluster;
      } catch (err) {
        await cluster.halt();
        const race = /eaddrinuse|address already in use|dist_port_already_used/i.test(String((err as Error).message));
        // A start that failed for good keeps its dir, whose node logs the error names.
        if (!race || attempt >= START_ATTEMPTS) throw err;
        await removeTestDir(cluster.dir);
      }
    }
  }

  private static async create(options: RabbitClusterOptions): Promise<RabbitCluster> {
    const dir = await makeTestDir('hearth-rabbit-cluster-');
    // One cookie for every node and CLI call: each one's HOME is the cluster dir.
    await writeFile(join(dir, '.erlang.cookie'), randomBytes(15).toString('hex').toUpperCase(), { mode: 0o400 });
    const epmd = await PortMapper.start();
    const count = options.nodes ?? 3;
    const management = options.plugins?.includes('rabbitmq_management') ?? false;
    const ports = [];
    for (let i = 0; i < count; i++) ports.push({ amqp: await freePort(), dist: await freePort(), management: management ? await freePort() : undefined });
    const nodes: RabbitNode[] = [];
    const links = await PeerLinks.start(
      ports.map((p) => p.dist),
      async () => Promise.all(nodes.map((n) => n.beamPid())),
    );
    const config = [
      'log.console = false',
      'log.file.level = warning',
      'disk_free_limit.absolute = 50MB',
      `cluster_partition_handling = ${options.partitionHandling ?? 'pause_minority'}`,
      ...(options.extraConfig ?? []),
    ];
    for (const [i, p] of ports.entries()) {
      const shortName = `hearth-${i}`;
      const node = new RabbitNode({
        index: i,
        shortName,
        dir: join(dir, shortName),
        amqpPort: p.amqp,
        distPort: p.dist,
        home: dir,
        epmdPort: epmd.port,
        netTicktimeS: options.netTicktimeS ?? 10,
        config,
        plugins: options.plugins ?? [],
        ...(p.management === undefined ? {} : { managementPort: p.management }),
      });
      await node.writeConfig();
      epmd.setStandIn(shortName, links.port(i));
      nodes.push(node);
    }
    return new RabbitCluster(dir, nodes, links, epmd);
  }

  private async form(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const left = (): number => Math.max(1_000, deadline - Date.now());
    let mark = Date.now();
    const phase = (name: keyof RabbitCluster['startPhasesMs']): void => {
      this.startPhasesMs[name] = Date.now() - mark;
      mark = Date.now();
    };
    for (const n of this.nodes) n.launch();
    await Promise.all(this.nodes.map((n) => n.waitReady(left()).catch((err: Error) => Promise.reject(this.startError(n, err)))));
    phase('boot');
    const [first, ...rest] = this.nodes;
    // The joins run in parallel: each is three CLI calls of about a second plus a boot.
    await Promise.all(
      rest.map(async (n) => {
        try {
          await n.ctl('stop_app');
          await n.ctl('join_cluster', first!.name);
          await n.ctl('start_app');
        } catch (err) {
          throw this.startError(n, err as Error);
        }
      }),
    );
    phase('join');
    await this.waitRunning(this.nodes, left());
    await this.links.waitMesh();
    phase('settle');
  }

  private startError(node: RabbitNode, err: Error): Error {
    return new Error(`RabbitMQ cluster: ${node.name} (AMQP port ${node.amqpPort}, dist port ${node.distPort}) failed to start or join: ${err.message}\n--- ${node.dir}/rabbitmq.log:\n${node.tail(20)}`, {
      cause: err,
    });
  }

  /** One AMQP URL per node, in node order. */
  get urls(): string[] {
    return this.nodes.map((n) => n.url());
  }

  /** The management API of every node, in node order (with the `rabbitmq_management` plugin). */
  get managementUrls(): string[] {
    return this.nodes.map((n) => n.managementUrl());
  }

  /** The node whose AMQP listener is on `port` (e.g. from a `host:port` metric label). */
  byAmqpPort(port: number): RabbitNode | undefined {
    return this.nodes.find((n) => n.amqpPort === port);
  }

  node(i: number): RabbitNode {
    const n = this.nodes[i];
    if (!n) throw new Error(`no node ${i} (the cluster has ${this.nodes.length})`);
    return n;
  }

  /** The node with this Erlang name (e.g. `hearth-1@localhost`). */
  byName(name: string): RabbitNode | undefined {
    return this.nodes.find((n) => n.name === name);
  }

  /** A node to run CLI commands on: alive, not cut off, its rabbit application running. */
  async someRunningNode(): Promise<RabbitNode> {
    for (const n of this.nodes) {
      if (n.alive && !this.links.isolated(n.index) && (await n.acceptsAmqp())) return n;
    }
    throw new Error('RabbitMQ cluster: no node is running');
  }

  /** Names of the nodes whose rabbit application runs, as `node`'s cluster_status reports. */
  async runningNodes(via?: RabbitNode): Promise<string[]> {
    const node = via ?? (await this.someRunningNode());
    const status = JSON.parse(await node.ctl('cluster_status', '--formatter', 'json')) as { running_nodes?: string[] };
    return status.running_nodes ?? [];
  }

  /**
   * Waits until cluster_status (asked on the first of `nodes`) lists every one of `nodes`
   * running and each of them accepts AMQP (a node is listed a moment before its listener opens).
   */
  async waitRunning(nodes: readonly RabbitNode[] = this.nodes, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let seen: string[] = [];
    for (;;) {
      try {
        seen = await this.runningNodes(nodes[0]);
        if (nodes.every((n) => seen.includes(n.name)) && (await Promise.all(nodes.map((n) => n.acceptsAmqp()))).every(Boolean)) return;
      } catch {
        // The node is still starting; ask again.
      }
      if (Date.now() > deadline) throw new Error(`RabbitMQ cluster: ${nodes.map((n) => n.name).join(', ')} not all running after ${timeoutMs} ms (running: ${seen.join(', ') || 'none'})`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** Creates a vhost with full permissions for guest (once: it is cluster-wide). */
  async addVhost(vhost: string): Promise<void> {
    const node = await this.someRunningNode();
    await node.ctl('add_vhost', vhost);
    await node.ctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
  }

  /** Leader, members and online members of a quorum queue, from `rabbitmqctl list_queues`. */
  async quorumQueue(vhost: string, queue: string, via?: RabbitNode): Promise<QuorumQueueInfo> {
    const node = via ?? (await this.someRunningNode());
    const rows = JSON.parse(await node.ctl('list_queues', '-p', vhost, 'name', 'leader', 'members', 'online', '--formatter', 'json')) as {
      name: string;
      leader?: string;
      members?: string[];
      online?: string[];
    }[];
    const row = rows.find((r) => r.name === queue);
    if (!row) throw new Error(`RabbitMQ cluster: no queue ${queue} in vhost ${vhost}`);
    const pick = (names: readonly string[] | undefined): RabbitNode[] =>
      (names ?? []).map((n) => this.byName(n)).filter((n): n is RabbitNode => n !== undefined);
    return { leader: row.leader ? this.byName(row.leader) : undefined, members: pick(row.members), online: pick(row.online) };
  }

  /** The node that leads a quorum queue's Raft group. */
  async queueLeader(vhost: string, queue: string): Promise<RabbitNode | undefined> {
    return (await this.quorumQueue(vhost, queue)).leader;
  }

  /** The nodes holding a replica of a quorum queue. */
  async queueMembers(vhost: string, queue: string): Promise<RabbitNode[]> {
    return (await this.quorumQueue(vhost, queue)).members;
  }

  /**
   * `rabbitmq-queues grow <node> all|even`: adds `node` as a member of the matching quorum
   * queues (e.g. after it was reset, or to restore the replica count).
   */
  async grow(node: RabbitNode, options: { vhostPattern?: string; queuePattern?: string; which?: 'all' | 'even' } = {}): Promise<string> {
    const via = await this.someRunningNode();
    return via.queues('grow', node.name, options.which ?? 'all', '--vhost-pattern', options.vhostPattern ?? '.*', '--queue-pattern', options.queuePattern ?? '.*');
  }

  /**
   * Cuts node `i` from the other nodes (its distribution links, both directions); AMQP clients
   * and the CLI still reach it. `cut` resets and refuses; `silence` drops everything, so the
   * nodes notice only after `net_ticktime`.
   */
  partition(i: number, mode: PartitionMode = 'cut'): void {
    this.links.isolate(i, mode);
  }

  /** Reconnects node `i` (with pause_minority, a paused node starts its application again). */
  heal(i: number): void {
    this.links.rejoin(i);
  }

  /** The distribution links, for cuts other than one node against the rest. */
  get peerLinks(): PeerLinks {
    return this.links;
  }

  /**
   * Kills every node by PID, closes the proxies and the port mapper, and removes the cluster's
   * dir (test-dirs.ts; `HEARTH_KEEP_TEST_DIRS=1` keeps it). For good (a node's own `stop()` /
   * `restart()` keep its data); idempotent.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.halt();
    await removeTestDir(this.dir);
  }

  /** Kills every node and closes the proxies and the port mapper, keeping the dir. */
  private async halt(): Promise<void> {
    await Promise.allSettled(this.nodes.map((n) => n.kill()));
    await this.links.close();
    await this.epmd.close();
  }
}
