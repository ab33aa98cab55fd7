/**
 * The production topology for the tests and runs that measure failover: a three-member etcd
 * cluster and a three-node RabbitMQ cluster, started on demand (never by the global setup, so
 * other integration tests keep their single servers and their speed).
 *
 * - A test file: `useEtcdCluster()` / `useRabbitCluster()` from topology-fixtures.ts.
 * - `make chaos` (`CHAOS_TOPOLOGY=ha`) and a bench failover suite: {@link startHaTopology}.
 * - External clusters, as servers.ts honours external servers:
 *   `HEARTH_TEST_ETCD_CLUSTER_ENDPOINTS` (comma-separated client URLs) and
 *   `HEARTH_TEST_AMQP_CLUSTER_URLS` (comma-separated AMQP URLs, one per node). Such clusters
 *   cannot be killed or partitioned from here: `local()` fails with a message saying so.
 */
import { EtcdCluster, type EtcdClusterOptions } from './etcd-cluster.js';
import { RabbitCluster, type RabbitClusterOptions } from './rabbitmq-cluster.js';

/** An etcd cluster for one test file or run. */
export interface EtcdTopology {
  readonly endpoints: string[];
  readonly source: 'environment' | 'debian-binaries';
  /** The local cluster, whose members can be killed, paused and partitioned. */
  local(): EtcdCluster;
  stop(): Promise<void>;
}

/** A RabbitMQ cluster for one test file or run. */
export interface RabbitTopology {
  /** One AMQP URL per node (default vhost). */
  readonly urls: string[];
  readonly source: 'environment' | 'debian-binaries';
  local(): RabbitCluster;
  stop(): Promise<void>;
}

function fromEnv(name: string): string[] | undefined {
  const raw = process.env[name];
  if (!raw) return undefined;
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function notLocal(what: string, variable: string): never {
  throw new Error(`${what} comes from ${variable}: this test kills or partitions members, which needs the local cluster (unset ${variable})`);
}

/** The etcd cluster named by `HEARTH_TEST_ETCD_CLUSTER_ENDPOINTS`, or a local one. */
export async function acquireEtcdCluster(options: EtcdClusterOptions = {}): Promise<EtcdTopology> {
  const endpoints = fromEnv('HEARTH_TEST_ETCD_CLUSTER_ENDPOINTS');
  if (endpoints) {
    return {
      endpoints,
      source: 'environment',
      local: () => notLocal('the etcd cluster', 'HEARTH_TEST_ETCD_CLUSTER_ENDPOINTS'),
      stop: async () => undefined,
    };
  }
  const cluster = await EtcdCluster.start(options);
  return { endpoints: cluster.endpoints, source: 'debian-binaries', local: () => cluster, stop: () => cluster.stop() };
}

/** The RabbitMQ cluster named by `HEARTH_TEST_AMQP_CLUSTER_URLS`, or a local one. */
export async function acquireRabbitCluster(options: RabbitClusterOptions = {}): Promise<RabbitTopology> {
  const urls = fromEnv('HEARTH_TEST_AMQP_CLUSTER_URLS');
  if (urls) {
    return {
      urls,
      source: 'environment',
      local: () => notLocal('the RabbitMQ cluster', 'HEARTH_TEST_AMQP_CLUSTER_URLS'),
      stop: async () => undefined,
    };
  }
  const cluster = await RabbitCluster.start(options);
  return { urls: cluster.urls, source: 'debian-binaries', local: () => cluster, stop: () => cluster.stop() };
}

/** Both clusters of the production topology. */
export interface HaTopology {
  readonly etcd: EtcdTopology;
  readonly rabbit: RabbitTopology;
  /** Milliseconds until both were ready (they start side by side). */
  readonly startMs: number;
  stop(): Promise<void>;
}

/**
 * Starts (or finds) both clusters side by side, for `make chaos` with `CHAOS_TOPOLOGY=ha` and
 * the failover benchmarks. When one fails to start, the other is stopped before the error is
 * thrown.
 */
export async function startHaTopology(options: { etcd?: EtcdClusterOptions; rabbit?: RabbitClusterOptions } = {}): Promise<HaTopology> {
  const started = Date.now();
  const [etcd, rabbit] = await Promise.allSettled([acquireEtcdCluster(options.etcd), acquireRabbitCluster(options.rabbit)]);
  if (etcd.status === 'rejected' || rabbit.status === 'rejected') {
    await Promise.allSettled([etcd, rabbit].flatMap((r) => (r.status === 'fulfilled' ? [r.value.stop()] : [])));
    throw etcd.status === 'rejected' ? etcd.reason : (rabbit as PromiseRejectedResult).reason;
  }
  return {
    etcd: etcd.value,
    rabbit: rabbit.value,
    startMs: Date.now() - started,
    stop: async () => {
      await Promise.allSettled([etcd.value.stop(), rabbit.value.stop()]);
    },
  };
}
