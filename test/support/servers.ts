import { EtcdServer } from './etcd.js';
import { RabbitServer, type RabbitNodeInfo } from './rabbitmq.js';

/** Servers shared by the integration tests of one run, and how to reach them. */
export interface SharedServers {
  readonly etcdEndpoints: string[];
  readonly amqpUrl: string;
  /** Set when the harness started RabbitMQ itself: tests may then create vhosts. */
  readonly rabbitNode: RabbitNodeInfo | undefined;
  /** Where the servers came from, for the run's log. */
  readonly source: 'environment' | 'testcontainers' | 'debian-binaries';
  stop(): Promise<void>;
}

/**
 * Finds or starts one etcd and one RabbitMQ for a test run, in this order: external servers
 * named by `HEARTH_TEST_ETCD_ENDPOINTS` and `HEARTH_TEST_AMQP_URL`; containers when a Docker
 * engine is reachable; otherwise the Debian binaries on free loopback ports. Failing to get a
 * server is an error, never a skip.
 */
export async function acquireSharedServers(): Promise<SharedServers> {
  const envEtcd = process.env.HEARTH_TEST_ETCD_ENDPOINTS;
  const envAmqp = process.env.HEARTH_TEST_AMQP_URL;
  if (envEtcd && envAmqp) {
    return {
      etcdEndpoints: envEtcd.split(',').map((s) => s.trim()),
      amqpUrl: envAmqp,
      rabbitNode: undefined,
      source: 'environment',
      stop: async () => undefined,
    };
  }
  const containers = await tryContainers();
  if (containers) return containers;
  const [etcd, rabbit] = await Promise.all([EtcdServer.start(), RabbitServer.start()]);
  return {
    etcdEndpoints: etcd.endpoints,
    amqpUrl: rabbit.url,
    rabbitNode: rabbit.describe(),
    source: 'debian-binaries',
    stop: async () => {
      await Promise.allSettled([etcd.stop(), rabbit.stop()]);
    },
  };
}

/** etcd and RabbitMQ in containers, when a Docker engine answers; undefined otherwise. */
async function tryContainers(): Promise<SharedServers | undefined> {
  const { GenericContainer, Wait, getContainerRuntimeClient } = await import('testcontainers');
  try {
    await getContainerRuntimeClient();
  } catch {
    return undefined; // No engine here (answers in ~2 ms): use the Debian binaries.
  }
  const etcd = await new GenericContainer('quay.io/coreos/etcd:v3.5.17')
    .withCommand(['etcd', '--listen-client-urls', 'http://0.0.0.0:2379', '--advertise-client-urls', 'http://127.0.0.1:2379'])
    .withExposedPorts(2379)
    .withWaitStrategy(Wait.forHttp('/health', 2379))
    .start();
  const rabbit = await new GenericContainer('rabbitmq:3.13')
    .withExposedPorts(5672)
    .withWaitStrategy(Wait.forLogMessage('Server startup complete'))
    .start();
  return {
    etcdEndpoints: [`http://${etcd.getHost()}:${etcd.getMappedPort(2379)}`],
    amqpUrl: `amqp://guest:guest@${rabbit.getHost()}:${rabbit.getMappedPort(5672)}`,
    rabbitNode: undefined,
    source: 'testcontainers',
    stop: async () => {
      await Promise.allSettled([etcd.stop(), rabbit.stop()]);
    },
  };
}
