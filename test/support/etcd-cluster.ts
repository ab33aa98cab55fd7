/**
 * A three-member (by default) etcd cluster on loopback from Debian's `etcd-server`, for the
 * tests, `make chaos` and `make bench` that measure failover. Everything else keeps the single
 * member of etcd.ts.
 *
 * Layout: one temp dir per cluster (`hearth-etcd-cluster-*`, removed by the cluster's
 * `stop()`), one sub-dir per member (`etcd-<i>/data`, log in `etcd-<i>/etcd.log`); per member a
 * client port and a peer port from ports.ts. Members reach each other only through
 * {@link PeerLinks}: one TCP proxy in front of each member's peer port, whose address is what
 * the member advertises (`--initial-cluster`), so `partition(i)` cuts member i from its peers
 * while its client port stays reachable.
 *
 * Timings: heartbeat 100 ms, election timeout 1000 ms — etcd's defaults, which held on a loaded
 * 2-core machine (load average 10) without a spurious election — and `--pre-vote` (etcd 3.5's
 * default) so a healed member does not depose a working leader. Measured on 2 shared cores
 * (docs/failure-modes.md, "Test topology"): start 2.3–3.0 s; leader killed → new leader and a
 * committed write 1.0–1.7 s.
 *
 * Use: `const etcd = await EtcdCluster.start()`; `etcd.endpoints`; `await etcd.waitForLeader()`;
 * `etcd.member(i).kill() / pause() / resume() / stop() / start() / restart()`;
 * `etcd.partition(i)` / `etcd.heal(i)`; `await etcd.stop()`. topology.ts adds external
 * endpoints and test fixtures.
 */
import { mkdir } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { requireBinary } from './binaries.js';
import { EtcdMember } from './etcd-member.js';
import { type PartitionMode, PeerLinks } from './peer-links.js';
import { freePort } from './ports.js';
import { makeTestDir, removeTestDir } from './test-dirs.js';

export { EtcdCallError, EtcdMember, type EtcdMemberStatus } from './etcd-member.js';

/** Options of {@link EtcdCluster.start}. */
export interface EtcdClusterOptions {
  /** Number of members; default 3. */
  readonly members?: number;
  /** `--heartbeat-interval`; default 100. */
  readonly heartbeatMs?: number;
  /** `--election-timeout`; default 1000 (etcd wants at least 5× the heartbeat). */
  readonly electionMs?: number;
  /** Route peer traffic through cuttable proxies (needed by `partition`); default true. */
  readonly peerProxies?: boolean;
  /** Extra flags for every member; they override the defaults (e.g. compaction). */
  readonly args?: readonly string[];
  /** How long the members may take to elect a first leader; default 30 s. */
  readonly startTimeoutMs?: number;
}

/** Start attempts when a member loses a port race (EADDRINUSE); each takes fresh ports. */
const START_ATTEMPTS = 3;

/** A start failed: names the member and carries its log tail in the message. */
export class ClusterStartError extends Error {
  constructor(
    message: string,
    readonly member: string,
    readonly portRace: boolean,
  ) {
    super(message);
  }
}

/** A local etcd cluster of real processes whose members a test can kill, pause and partition. */
export class EtcdCluster {
  private stopped = false;

  private constructor(
    readonly dir: string,
    readonly members: readonly EtcdMember[],
    private readonly links: PeerLinks | undefined,
    /** Milliseconds from the first spawn until every member reported healthy. */
    readonly startMs: number,
  ) {}

  /** Starts the members in parallel and resolves once each one is healthy (sees a leader). */
  static async start(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
    requireBinary('etcd', 'etcd-server');
    for (let attempt = 1; ; attempt++) {
      try {
        return await EtcdCluster.attempt(options);
      } catch (err) {
        if (!(err instanceof ClusterStartError && err.portRace) || attempt >= START_ATTEMPTS) throw err;
      }
    }
  }

  private static async attempt(options: EtcdClusterOptions): Promise<EtcdCluster> {
    const count = options.members ?? 3;
    const dir = await makeTestDir('hearth-etcd-cluster-');
    const ports = [];
    for (let i = 0; i < count; i++) ports.push({ client: await freePort(), peer: await freePort() });
    let members: EtcdMember[] = [];
    const links = options.peerProxies === false ? undefined : await PeerLinks.start(ports.map((p) => p.peer), async () => members.map((m) => m.pid));
    const advertised = ports.map((p, i) => `http://127.0.0.1:${links ? links.port(i) : p.peer}`);
    const names = ports.map((_, i) => `etcd-${i}`);
    const shared = [
      '--initial-cluster', names.map((n, i) => `${n}=${advertised[i]}`).join(','),
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', `hearth-${randomUUID().slice(0, 8)}`,
      '--heartbeat-interval', String(options.heartbeatMs ?? 100),
      '--election-timeout', String(options.electionMs ?? 1_000),
      '--pre-vote',
      // As the single member: revision-based auto-compaction keeps a long run's history small.
      '--auto-compaction-mode', 'revision',
      '--auto-compaction-retention', '10000',
      ...(options.args ?? []),
    ];
    members = await Promise.all(
      ports.map(async (p, i) => {
        const memberDir = join(dir, names[i]!);
        await mkdir(memberDir);
        return new EtcdMember({
          index: i,
          name: names[i]!,
          dir: memberDir,
          clientPort: p.client,
          peerPort: p.peer,
          args: ['--initial-advertise-peer-urls', advertised[i]!, ...shared],
        });
      }),
    );
    const cluster = new EtcdCluster(dir, members, links, 0);
    const started = Date.now();
    try {
      await cluster.awaitHealthy(members.map((m) => m.launch()), options.startTimeoutMs ?? 30_000);
      await links?.waitMesh();
    } catch (err) {
      await cluster.halt();
      // A lost port race is tried again in a new dir; a start that failed for good keeps its
      // dir, whose logs the error names.
      if (err instanceof ClusterStartError && err.portRace) await removeTestDir(dir);
      throw err;
    }
    return new EtcdCluster(dir, members, links, Date.now() - started);
  }

  /** Waits until every member is healthy; fails fast, naming the member, when one exits. */
  private async awaitHealthy(procs: readonly { alive: boolean; exit: unknown }[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const pending = new Set(this.members);
    while (pending.size > 0) {
      for (const m of this.members) {
        const proc = procs[m.index]!;
        if (!proc.alive) {
          const tail = m.tail();
          const race = /address already in use/i.test(tail);
          throw new ClusterStartError(`etcd cluster: ${m.name} (client ${m.url}, peer port ${m.peerPort}) exited during start (${JSON.stringify(proc.exit)}):\n${tail}`, m.name, race);
        }
      }
      await Promise.all([...pending].map(async (m) => (await m.healthy()) && pending.delete(m)));
      if (pending.size === 0) break;
      if (Date.now() > deadline) {
        const names = [...pending].map((m) => m.name).join(', ');
        const tails = [...pending].map((m) => `--- ${m.name} (${m.logPath}):\n${m.tail(15)}`).join('\n');
        throw new ClusterStartError(`etcd cluster: ${names} not healthy after ${timeoutMs} ms:\n${tails}`, [...pending][0]!.name, false);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Every member's client URL, for a client's `hosts`. */
  get endpoints(): string[] {
    return this.members.map((m) => m.url);
  }

  member(i: number): EtcdMember {
    const m = this.members[i];
    if (!m) throw new Error(`no member ${i} (the cluster has ${this.members.length})`);
    return m;
  }

  /**
   * The member a majority of members names as leader (a deposed leader that has not noticed
   * yet does not count), or undefined during an election or without a quorum.
   */
  async leader(statusTimeoutMs = 500): Promise<EtcdMember | undefined> {
    const statuses = await Promise.all(this.members.map((m) => m.status(statusTimeoutMs)));
    const votes = new Map<string, number>();
    for (const s of statuses) if (s && s.leaderId !== '0') votes.set(s.leaderId, (votes.get(s.leaderId) ?? 0) + 1);
    const majority = Math.floor(this.members.length / 2) + 1;
    for (const [id, n] of votes) {
      if (n < majority) continue;
      const index = statuses.findIndex((s) => s?.memberId === id);
      if (index >= 0) return this.members[index];
    }
    return undefined;
  }

  /** Polls {@link leader} until there is one (other than `not`, when given). */
  async waitForLeader(options: { not?: EtcdMember; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<EtcdMember> {
    const deadline = Date.now() + (options.timeoutMs ?? 20_000);
    for (;;) {
      options.signal?.throwIfAborted();
      const leader = await this.leader();
      if (leader && leader !== options.not) return leader;
      if (Date.now() > deadline) throw new Error(`etcd cluster: no leader${options.not ? ` other than ${options.not.name}` : ''} after ${options.timeoutMs ?? 20_000} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Cuts member `i` from its peers (both directions); its clients still reach it. `cut` resets
   * and refuses peer connections; `silence` holds them without an answer (dropped packets).
   */
  partition(i: number, mode: PartitionMode = 'cut'): void {
    this.requireLinks().isolate(i, mode);
  }

  /** Reconnects member `i` to its peers. */
  heal(i: number): void {
    this.requireLinks().rejoin(i);
  }

  /** The peer links, for cuts other than one member against the rest (e.g. a single link). */
  get peerLinks(): PeerLinks {
    return this.requireLinks();
  }

  private requireLinks(): PeerLinks {
    if (!this.links) throw new Error('this etcd cluster was started with peerProxies: false; partitions need the peer proxies');
    return this.links;
  }

  /**
   * Kills every member (SIGKILL, by PID), closes the proxies and removes the cluster's dir, data
   * and logs (test-dirs.ts; `HEARTH_KEEP_TEST_DIRS=1` keeps it). Not SIGTERM: a leader whose
   * followers stop with it waits out etcd's 5 s grace. For good (a member's own `stop()` /
   * `restart()` keep its data); idempotent.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.halt();
    await removeTestDir(this.dir);
  }

  /** Kills every member and closes the proxies, keeping the dir. */
  private async halt(): Promise<void> {
    await Promise.allSettled(this.members.map((m) => m.kill()));
    await this.links?.close();
  }
}
