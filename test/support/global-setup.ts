import type { TestProject } from 'vitest/node';
import type { RabbitNodeInfo } from './rabbitmq.js';
import { acquireSharedServers } from './servers.js';

declare module 'vitest' {
  export interface ProvidedContext {
    etcdEndpoints: string[];
    amqpUrl: string;
    rabbitNode: RabbitNodeInfo | null;
  }
}

/** Starts (or finds) the run's etcd and RabbitMQ once and hands their addresses to the tests. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const servers = await acquireSharedServers();
  console.log(
    `[harness] etcd ${servers.etcdEndpoints.join(',')} and RabbitMQ from ${servers.source} ready in ${Date.now() - started} ms`,
  );
  project.provide('etcdEndpoints', servers.etcdEndpoints);
  project.provide('amqpUrl', servers.amqpUrl);
  project.provide('rabbitNode', servers.rabbitNode ?? null);
  return () => servers.stop();
}
