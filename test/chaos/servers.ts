/**
 * The fault suite's servers, per topology: `single` (one etcd member, one RabbitMQ node, each
 * restarted whole by its faults) or `ha` (a three-member etcd and a three-node RabbitMQ,
 * test/support/topology.ts, whose members and nodes the HA faults kill, freeze and partition).
 * The rest of the suite asks only for endpoints, a URL that works now, and a client.
 */
import { Etcd3 } from 'etcd3';
import type { EtcdCluster } from '../support/etcd-cluster.js';
import { EtcdServer } from '../support/etcd.js';
import type { RabbitCluster } from '../support/rabbitmq-cluster.js';
import { RabbitServer } from '../support/rabbitmq.js';
import { startHaTopology } from '../support/topology.js';

/** The cluster layouts the suite can run (`single`: one etcd member, one RabbitMQ node; `ha`: three of each). */
export const TOPOLOGIES = ['single', 'ha'] as const;
export type Topology = (typeof TOPOLOGIES)[number];

/** The suite's own etcd calls: a deadline each, so a frozen member costs a call, not the run. */
const SUITE_CALL_TIMEOUT_MS = 3_000;

/** A client for the suite's own reads (bounded calls; the package's failover between members). */
export function suiteClient(endpoints: readonly string[]): Etcd3 {
  return new Etcd3({ hosts: [...endpoints], dialTimeout: SUITE_CALL_TIMEOUT_MS, defaultCallOptions: (c) => (c.isStream ? {} : { deadline: Date.now() + SUITE_CALL_TIMEOUT_MS }) });
}

/** The etcd and RabbitMQ of one run. */
export interface ChaosServers {
  readonly topology: Topology;
  /** Every etcd member's client URL (hearth gets them all). */
  readonly etcdEndpoints: readonly string[];
  /** Every RabbitMQ node's AMQP URL (hearth gets them all, comma-separated). */
  readonly amqpUrls: readonly string[];
  /** An AMQP URL of a node that is up and not under a fault now (for the suite's own publishes). */
  amqpUrl(): string;
  /** A fresh client of one live member (for the history read at the end; the caller closes it). */
  liveClient(): Promise<Etcd3>;
  /** The three-member etcd and three-node RabbitMQ (`ha` only). */
  readonly ha?: {
    readonly etcd: EtcdCluster;
    readonly rabbit: RabbitCluster;
    /** RabbitMQ nodes (by index) under a fault now: {@link ChaosServers.amqpUrl} avoids them. */
    readonly rabbitDisturbed: Set<number>;
  };
  /** `single`: restarts the one etcd member / RabbitMQ node (down `downMs`). */
  restartEtcd(downMs: number): Promise<void>;
  restartRabbit(downMs: number): Promise<void>;
  close(): Promise<void>;
}

/** No compaction during a run: the fenced-write check reads the whole history. */
const NO_COMPACTION = ['--auto-compaction-retention', '100000000'];

/** Starts the servers of `topology`; fails loudly (naming the member or node) when one cannot start. */
export async function startServers(topology: Topology): Promise<ChaosServers> {
  return topology === 'ha' ? startHa() : startSingle();
}

async function startSingle(): Promise<ChaosServers> {
  const etcd = await EtcdServer.start({ args: NO_COMPACTION });
  const rabbit = await RabbitServer.start().catch(async (err: unknown) => {
    await etcd.stop();
    throw err;
  });
  return {
    topology: 'single',
    etcdEndpoints: etcd.endpoints,
    amqpUrls: [rabbit.url],
    amqpUrl: () => rabbit.url,
    liveClient: async () => new Etcd3({ hosts: etcd.endpoints }),
    restartEtcd: (ms) => etcd.restart(ms),
    restartRabbit: (ms) => rabbit.restart(ms),
    close: async () => {
      await rabbit.stop();
      await etcd.stop();
    },
  };
}

async function startHa(): Promise<ChaosServers> {
  const topo = await startHaTopology({ etcd: { args: NO_COMPACTION } });
  const etcd = topo.etcd.local();
  const rabbit = topo.rabbit.local();
  const rabbitDisturbed = new Set<number>();
  const unsupported = (what: string) => async (): Promise<void> => {
    throw new Error(`${what} is a single-topology fault; the ha topology kills, freezes and partitions members instead`);
  };
  return {
    topology: 'ha',
    etcdEndpoints: etcd.endpoints,
    amqpUrls: rabbit.urls,
    ha: { etcd, rabbit, rabbitDisturbed },
    amqpUrl: () => (rabbit.nodes.find((n) => n.alive && !rabbitDisturbed.has(n.index)) ?? rabbit.node(0)).url(),
    liveClient: async () => {
      const leader = (await etcd.leader()) ?? (await etcd.waitForLeader({ timeoutMs: 30_000 }));
      return new Etcd3({ hosts: [leader.url] });
    },
    restartEtcd: unsupported('a restart of the whole etcd'),
    restartRabbit: unsupported('a restart of the whole RabbitMQ'),
    close: () => topo.stop(),
  };
}
