import { Counter, Gauge, type Registry } from 'prom-client';
import { DEAD_LETTER_REASONS, type DeadLetterReason } from './job-message.js';

/** The routing concern's instruments (names as in docs/metrics.md). */
export interface RoutingMetrics {
  /** 1 while connected to RabbitMQ. */
  readonly amqpConnectionUp: Gauge;
  /** Successful reconnections (the first connection does not count). */
  readonly amqpReconnects: Counter;
  /** Messages moved to the dead-letter queue, by bounded reason. */
  readonly deadLettered: Counter<'reason'>;
  /** Jobs and cleanup requests published and confirmed, by message version. */
  readonly published: Counter<'version'>;
}

const byRegistry = new WeakMap<Registry, RoutingMetrics>();

/**
 * The routing instruments registered on `registry`; several buses on one registry (tests,
 * several members in one process) share them.
 */
export function routingMetrics(registry: Registry): RoutingMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const metrics: RoutingMetrics = {
    amqpConnectionUp: new Gauge({
      name: 'hearth_amqp_connection_up',
      help: '1 while connected to RabbitMQ.',
      registers: [registry],
    }),
    amqpReconnects: new Counter({
      name: 'hearth_amqp_reconnects_total',
      help: 'Reconnections to RabbitMQ after a lost connection.',
      registers: [registry],
    }),
    deadLettered: new Counter({
      name: 'hearth_messages_dead_lettered_total',
      help: 'Messages sent to the dead-letter queue, by reason.',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    published: new Counter({
      name: 'hearth_messages_published_total',
      help: 'Jobs and cleanup requests this process published (confirmed by the broker), by message version.',
      labelNames: ['version'] as const,
      registers: [registry],
    }),
  };
  // Show every reason from the start, so rate() works from the first dead letter.
  for (const reason of DEAD_LETTER_REASONS) metrics.deadLettered.inc({ reason }, 0);
  byRegistry.set(registry, metrics);
  return metrics;
}

/** Counts one dead-lettered message. */
export function countDeadLetter(metrics: RoutingMetrics, reason: DeadLetterReason): void {
  metrics.deadLettered.inc({ reason });
}
