import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import { Registry } from 'prom-client';
import type { Config } from '../../src/config/schema.js';
import { silentLogger, type Logger } from '../../src/observability/logger.js';
import { AmqpJobBus } from '../../src/routing/amqp-job-bus.js';
import { clusterQueueName } from '../../src/routing/topology.js';
import type { JobBusBackend, MemberOptions } from '../contract/job-bus.contract.js';

/** The `amqp` config slice with hearth's defaults and test-friendly timings. */
export function amqpSettings(url: string, prefix: string, overrides: Partial<Config['amqp']> = {}): Config['amqp'] {
  return {
    url,
    passwordFile: '',
    prefix,
    prefetch: 8,
    caFile: '',
    certFile: '',
    keyFile: '',
    publishTimeoutMs: 5_000,
    heartbeatSeconds: 5,
    connectTimeoutMs: 3_000,
    reconnectMaxDelayMs: 1_000,
    maxDeliveries: 10,
    quorumInitialGroupSize: 3,
    managementUrl: '',
    managementIntervalMs: 30_000,
    ...overrides,
  };
}

/** Options of {@link amqpBackend}. */
export interface AmqpBackendOptions {
  readonly url: string;
  /** Name prefix; a fresh one per backend keeps tests apart within one vhost. */
  readonly prefix?: string;
  readonly cluster?: string;
  readonly settings?: Partial<Config['amqp']>;
  readonly logger?: Logger;
}

/** A {@link JobBusBackend} on a real RabbitMQ: every member is an {@link AmqpJobBus}. */
export async function amqpBackend(options: AmqpBackendOptions): Promise<JobBusBackend & { readonly prefix: string }> {
  const prefix = options.prefix ?? `t${randomUUID().slice(0, 8)}`;
  const cluster = options.cluster ?? 'c1@be';
  const members: AmqpJobBus[] = [];
  return {
    cluster,
    prefix,
    async member(host: string, member: MemberOptions = {}) {
      const overrides: Partial<Config['amqp']> = {
        ...options.settings,
        ...(member.prefetch === undefined ? {} : { prefetch: member.prefetch }),
        ...(member.maxDeliveries === undefined ? {} : { maxDeliveries: member.maxDeliveries }),
      };
      const bus = new AmqpJobBus(amqpSettings(options.url, prefix, overrides), {
        identity: { cluster, host },
        logger: options.logger ?? silentLogger(),
        registry: member.registry ?? new Registry(),
      });
      members.push(bus);
      await bus.start();
      await bus.waitUntilReady({ timeoutMs: 15_000 });
      return bus;
    },
    async injectRaw(content: Buffer) {
      const conn = await connect(options.url);
      try {
        const ch = await conn.createConfirmChannel();
        await new Promise<void>((resolve, reject) =>
          ch.sendToQueue(clusterQueueName(prefix, cluster), content, { persistent: true }, (err) => (err ? reject(err as Error) : resolve())),
        );
      } finally {
        await conn.close();
      }
    },
    async close() {
      await Promise.all(members.map((m) => m.close()));
    },
  };
}
