import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { CheckResult } from '../ops/health.js';
import { AmqpJobBus } from './amqp-job-bus.js';
import type { BusIdentity, JobBus } from './job-bus.js';
import { LocalBroker } from './local-broker.js';
import { LocalJobBus } from './local-job-bus.js';

/** What {@link createJobBus} needs besides the configuration. */
export interface JobBusOptions {
  readonly identity: BusIdentity;
  readonly logger: Logger;
  readonly registry: Registry;
  /** The process's in-process broker (single-node mode); one is created when absent. */
  readonly localBroker?: LocalBroker;
}

/**
 * Builds the job bus the configuration asks for: RabbitMQ when `amqp.url` is set, otherwise
 * the in-process bus. Call `start()` on it, and register {@link jobBusReadiness} with `/readyz`.
 */
export function createJobBus(config: Pick<Config, 'amqp'>, options: JobBusOptions): JobBus {
  const logger = options.logger.child({ component: 'job-bus' });
  if (config.amqp.url !== '') {
    return new AmqpJobBus(config.amqp, { identity: options.identity, logger, registry: options.registry });
  }
  return new LocalJobBus(config.amqp, {
    broker: options.localBroker ?? new LocalBroker(),
    identity: options.identity,
    logger,
    registry: options.registry,
  });
}

/** A `/readyz` check: ready while the bus is up (a worker that cannot reach RabbitMQ takes no work). */
export function jobBusReadiness(bus: JobBus): () => CheckResult {
  return () => {
    if (bus.ready) return { ok: true };
    const reason = bus instanceof AmqpJobBus ? bus.notReadyReason : `job bus ${bus.state}`;
    return { ok: false, detail: reason };
  };
}
