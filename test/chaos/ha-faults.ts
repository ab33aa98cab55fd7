/**
 * The faults of the `ha` topology (a three-member etcd, a three-node RabbitMQ): kill -9 of the
 * etcd leader and of a follower (each restarted), SIGSTOP of a member then SIGCONT, a member cut
 * from its peers while its clients still reach it, quorum loss (two members down past the lease
 * TTL), kill -9 of the RabbitMQ node leading the cluster queue (restarted), a RabbitMQ node cut
 * from the other two, and a frozen RabbitMQ node. Each is bounded in time and returns only once
 * the servers are whole again (every member healthy; every node running in one cluster with the
 * cluster queue's three members online), so the next fault starts from a whole cluster.
 *
 * {@link LeaderWatch} records etcd's elections through the run: a new leader extends every
 * lease, so a detection bound after a leader change counts from the election.
 */
import { clusterQueueName } from '../../src/routing/topology.js';
import type { EtcdCluster, EtcdMember } from '../support/etcd-cluster.js';
import type { RabbitCluster, RabbitNode } from '../support/rabbitmq-cluster.js';
import { AMQP_PREFIX, type ChaosCluster, CLUSTER_ID } from './cluster.js';
import { sleep } from './stream.js';

/** The HA faults, as scheduled. */
export const HA_FAULTS = [
  'etcd-leader-kill',
  'etcd-member-kill',
  'etcd-member-freeze',
  'etcd-member-partition',
  'etcd-quorum-loss',
  'rabbit-leader-kill',
  'rabbit-partition',
  'rabbit-freeze',
] as const;
export type HaFaultKind = (typeof HA_FAULTS)[number];

/** True for the HA faults (pure). */
export const isHaFault = (kind: string): kind is HaFaultKind => (HA_FAULTS as readonly string[]).includes(kind);

/** How long each HA fault lasts (ms), given the lease TTL. */
export function haDurations(ttlMs: number): Readonly<Record<HaFaultKind, number>> {
  return {
    'etcd-leader-kill': 4_000,
    'etcd-member-kill': 4_000,
    'etcd-member-freeze': 5_000,
    'etcd-member-partition': 5_000,
    // Longer than the lease TTL, as the issue asks: two members down, no quorum.
    'etcd-quorum-loss': ttlMs + 2_000,
    'rabbit-leader-kill': 3_000,
    // Short of net_ticktime (10 s): a node frozen past it comes back partitioned.
    'rabbit-freeze': 5_000,
    'rabbit-partition': 8_000,
  };
}

/** What one HA fault did (epoch ms). */
export interface HaInjection {
  /** `etcd-1 (leader)`, `etcd-0+etcd-2`, `hearth-1@localhost (queue leader)`. */
  readonly target: string;
  readonly startedAt: number;
  /** Restarted / SIGCONT / healed. */
  readonly endedAt: number;
  /** When the servers were whole again (every member healthy; every node in the cluster, three queue members online). */
  readonly wholeAt: number;
  readonly detail: string;
}

/** Elections seen by polling every member's status (a majority naming one leader at a higher term). */
export class LeaderWatch {
  /** `at`: when the suite first saw the new leader (epoch ms). */
  readonly elections: { readonly at: number; readonly term: number; readonly leader: string }[] = [];
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(
    private readonly etcd: EtcdCluster,
    intervalMs = 150,
  ) {
    this.loop = (async () => {
      while (!this.stopped) {
        await this.poll().catch(() => undefined);
        await sleep(intervalMs);
      }
    })();
  }

  private async poll(): Promise<void> {
    const statuses = await Promise.all(this.etcd.members.map((m) => m.status(400)));
    const votes = new Map<string, { n: number; term: number }>();
    for (const s of statuses) {
      if (!s || s.leaderId === '0') continue;
      const v = votes.get(s.leaderId) ?? { n: 0, term: 0 };
      votes.set(s.leaderId, { n: v.n + 1, term: Math.max(v.term, s.raftTerm) });
    }
    const majority = Math.floor(this.etcd.members.length / 2) + 1;
    for (const [id, v] of votes) {
      if (v.n < majority) continue;
      const last = this.elections.at(-1);
      if (last && last.term >= v.term) return;
      const name = this.etcd.members[statuses.findIndex((s) => s?.memberId === id)]?.name ?? id;
      this.elections.push({ at: Date.now(), term: v.term, leader: name });
    }
  }

  /** The first election seen after `from` (epoch ms), if any. */
  electedAfter(from: number): number | undefined {
    return this.elections.find((e) => e.at > from)?.at;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

function ha(cluster: ChaosCluster): { etcd: EtcdCluster; rabbit: RabbitCluster; rabbitDisturbed: Set<number> } {
  const h = cluster.servers.ha;
  if (!h) throw new Error('an HA fault needs CHAOS_TOPOLOGY=ha');
  return h;
}

const pick = <T>(items: readonly T[], random: () => number): T => items[Math.floor(random() * items.length)] as T;

/** Runs one HA fault; resolves once the servers are whole again (bounded). */
export async function injectHa(cluster: ChaosCluster, kind: HaFaultKind, random: () => number, ttlMs: number, n: number): Promise<HaInjection> {
  const { etcd, rabbit, rabbitDisturbed } = ha(cluster);
  const downMs = haDurations(ttlMs)[kind];
  switch (kind) {
    case 'etcd-leader-kill':
    case 'etcd-member-kill': {
      const leader = await etcd.waitForLeader({ timeoutMs: 30_000 });
      const victim = kind === 'etcd-leader-kill' ? leader : pick(etcd.members.filter((m) => m !== leader), random);
      const startedAt = Date.now();
      await victim.kill();
      await sleep(Math.max(0, startedAt + downMs - Date.now()));
      await victim.start(30_000);
      const endedAt = Date.now();
      const wholeAt = await etcdWhole(etcd);
      return { target: `${victim.name}${victim === leader ? ' (leader)' : ''}`, startedAt, endedAt, wholeAt, detail: `kill -9, down ${endedAt - startedAt} ms, restarted` };
    }
    case 'etcd-member-freeze': {
      const leader = await etcd.leader();
      const victim = pick(etcd.members, random);
      const startedAt = Date.now();
      victim.pause();
      await sleep(downMs);
      victim.resume();
      const endedAt = Date.now();
      const wholeAt = await etcdWhole(etcd);
      return { target: `${victim.name}${victim === leader ? ' (leader)' : ''}`, startedAt, endedAt, wholeAt, detail: `SIGSTOP ${endedAt - startedAt} ms, SIGCONT` };
    }
    case 'etcd-member-partition': {
      const leader = await etcd.leader();
      const victim = pick(etcd.members, random);
      const mode = n % 2 === 0 ? 'cut' : 'silence';
      const startedAt = Date.now();
      etcd.partition(victim.index, mode);
      await sleep(downMs);
      etcd.heal(victim.index);
      const endedAt = Date.now();
      const wholeAt = await etcdWhole(etcd);
      return { target: `${victim.name}${victim === leader ? ' (leader)' : ''}`, startedAt, endedAt, wholeAt, detail: `cut from its peers (${mode}) ${endedAt - startedAt} ms, its clients still reach it; healed` };
    }
    case 'etcd-quorum-loss': {
      const first = pick(etcd.members, random);
      const second = pick(etcd.members.filter((m) => m !== first), random);
      const down: EtcdMember[] = [first, second];
      const startedAt = Date.now();
      await Promise.all(down.map((m) => m.kill()));
      await sleep(Math.max(0, startedAt + downMs - Date.now()));
      await Promise.all(down.map((m) => m.start(30_000)));
      const endedAt = Date.now();
      const wholeAt = await etcdWhole(etcd);
      return { target: down.map((m) => m.name).join('+'), startedAt, endedAt, wholeAt, detail: `two members kill -9, no quorum for ${endedAt - startedAt} ms (TTL ${ttlMs} ms), restarted` };
    }
    case 'rabbit-leader-kill': {
      const queue = clusterQueueName(AMQP_PREFIX, CLUSTER_ID);
      const victim = (await rabbit.queueLeader('/', queue).catch(() => undefined)) ?? pick(rabbit.nodes, random);
      rabbitDisturbed.add(victim.index);
      try {
        const startedAt = Date.now();
        await victim.kill();
        await sleep(downMs);
        await victim.start(120_000);
        const endedAt = Date.now();
        const wholeAt = await rabbitWhole(rabbit, [victim]);
        return { target: `rabbit-${victim.index} (queue leader)`, startedAt, endedAt, wholeAt, detail: `kill -9, restarted after ${endedAt - startedAt} ms (boot included)` };
      } finally {
        rabbitDisturbed.delete(victim.index);
      }
    }
    case 'rabbit-partition':
    case 'rabbit-freeze': {
      const victim = pick(rabbit.nodes, random);
      rabbitDisturbed.add(victim.index);
      try {
        const startedAt = Date.now();
        if (kind === 'rabbit-partition') rabbit.partition(victim.index, 'cut');
        else victim.pause();
        await sleep(downMs);
        if (kind === 'rabbit-partition') rabbit.heal(victim.index);
        else victim.resume();
        const endedAt = Date.now();
        const wholeAt = await rabbitWhole(rabbit, [victim]);
        const what = kind === 'rabbit-partition' ? 'cut from the other nodes (AMQP still reachable)' : 'SIGSTOP';
        return { target: `rabbit-${victim.index}`, startedAt, endedAt, wholeAt, detail: `${what} ${endedAt - startedAt} ms, then ${kind === 'rabbit-partition' ? 'healed' : 'SIGCONT'}` };
      } finally {
        rabbitDisturbed.delete(victim.index);
      }
    }
  }
}

/** Waits until every member is healthy (sees a leader); returns when. */
async function etcdWhole(etcd: EtcdCluster, timeoutMs = 60_000): Promise<number> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if ((await Promise.all(etcd.members.map((m) => m.healthy(1_000)))).every(Boolean)) return Date.now();
    await sleep(100);
  }
  throw new Error(`etcd: not every member healthy ${timeoutMs} ms after the fault`);
}

/**
 * Waits until every node runs in one cluster and the cluster queue has its three members online.
 * A node that comes back partitioned from the others (pause_minority does not resolve that when
 * it never saw itself in a minority) gets its application restarted, as the runbook says
 * (docs/operations.md).
 */
async function rabbitWhole(rabbit: RabbitCluster, suspects: readonly RabbitNode[]): Promise<number> {
  const queue = clusterQueueName(AMQP_PREFIX, CLUSTER_ID);
  if (!(await rabbit.waitRunning(rabbit.nodes, 30_000).then(() => true, () => false))) {
    const via = rabbit.nodes.find((n) => !suspects.includes(n));
    const running = await rabbit.runningNodes(via);
    for (const node of suspects.filter((s) => !running.includes(s.name))) {
      await node.ctl('stop_app');
      await node.ctl('start_app');
    }
    await rabbit.waitRunning(rabbit.nodes, 120_000);
  }
  const end = Date.now() + 90_000;
  for (;;) {
    const online = await rabbit.quorumQueue('/', queue).then((q) => q.online.length, () => 0);
    if (online === rabbit.nodes.length) return Date.now();
    if (Date.now() > end) throw new Error(`RabbitMQ: the cluster queue ${queue} has ${online} of ${rabbit.nodes.length} members online 90 s after the fault`);
    await sleep(500);
  }
}
