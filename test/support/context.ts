import { randomUUID } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { inject } from 'vitest';
import { RabbitServer } from './rabbitmq.js';

/** A test's own slice of the shared etcd. */
export interface EtcdTestContext {
  readonly endpoints: string[];
  /** A fresh key prefix, e.g. `/hearth-test/3f2a…`; pass it as `etcd.prefix`. */
  readonly prefix: string;
  /** A plain etcd3 client for assertions (no namespace applied). */
  readonly client: Etcd3;
  /** Deletes every key under the prefix and closes the client. */
  close(): Promise<void>;
}

/** The shared etcd's endpoints (from the global setup). */
export function etcdEndpoints(): string[] {
  return inject('etcdEndpoints');
}

/** Creates a fresh etcd prefix for one test or suite. */
export function useEtcd(): EtcdTestContext {
  const endpoints = etcdEndpoints();
  const prefix = `/hearth-test/${randomUUID()}`;
  const client = new Etcd3({ hosts: endpoints });
  return {
    endpoints,
    prefix,
    client,
    async close() {
      try {
        await client.delete().prefix(`${prefix}/`);
      } finally {
        client.close();
      }
    },
  };
}

/** A test's own slice of the shared RabbitMQ. */
export interface AmqpTestContext {
  /** URL to connect with: a fresh vhost when the harness runs the node, else the shared one. */
  readonly url: string;
  /** A fresh name prefix for exchanges and queues; pass it as `amqp.prefix`. */
  readonly prefix: string;
  readonly vhost: string | undefined;
  /** Deletes the vhost (and with it every queue and exchange in it). */
  close(): Promise<void>;
}

/**
 * Creates a fresh AMQP vhost (when the harness started RabbitMQ itself) and a fresh name
 * prefix, so tests never see each other's queues.
 */
export async function useAmqp(): Promise<AmqpTestContext> {
  const base = inject('amqpUrl');
  const node = inject('rabbitNode');
  const id = randomUUID().slice(0, 8);
  const prefix = `t${id}`;
  if (!node) return { url: base, prefix, vhost: undefined, close: async () => undefined };
  const rabbit = RabbitServer.attach(node);
  const vhost = `hearth-test-${id}`;
  const url = await rabbit.addVhost(vhost);
  return {
    url,
    prefix,
    vhost,
    close: async () => {
      await rabbit.ctl('delete_vhost', vhost);
    },
  };
}
