import { Counter, Gauge, type Registry } from 'prom-client';
import { DEAD_LETTER_REASONS, type DeadLetterReason } from './job-message.js';

/** The routing concern's instruments (names as in docs/metrics.md). */
export interface RoutingMetrics {
  /** 1 while connected to RabbitMQ. */
  readonly amqpConnectionUp: Gauge;
  /** Successful reconnections (the first connection does not count). */
  readonly amqpReconnects: Counter;
  /** 1 for the RabbitMQ node (`host:port` of `amqp.url`) the connection is on. */
  readonly amqpNodeConnected: Gauge<'node'>;
  /** Connection attempts by node and result. */
  readonly amqpConnectionAttempts: Counter<'node' | 'result'>;
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
    amqpNodeConnected: new Gauge({
      name: 'hearth_amqp_node_connected',
      help: '1 for the RabbitMQ node (host:port of amqp.url) this process is connected to, 0 for the others.',
      labelNames: ['node'] as const,
      registers: [registry],
    }),
    amqpConnectionAttempts: new Counter({
      name: 'hearth_amqp_connection_attempts_total',
      help: 'Connection attempts to each RabbitMQ node, by result (ok, failed, refused).',
      labelNames: ['node', 'result'] as const,
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

/** Kinds of hearth's quorum queues: the `queue_kind` label (never a queue's name). */
export type QueueKind = 'cluster' | 'host' | 'dead';

/** The replica instruments of the management API poll (only when `amqp.managementUrl` is set). */
export interface ReplicaMetrics {
  /** Members (replicas) of each quorum queue. */
  readonly queueMembers: Gauge<'queue_kind'>;
  /** Members whose replica is running. */
  readonly queueOnlineMembers: Gauge<'queue_kind'>;
  /** Members each queue should have: amqp.quorumInitialGroupSize, at most the cluster's nodes. */
  readonly queueTargetMembers: Gauge<'queue_kind'>;
  /** 1 while the last poll of the management API got an answer. */
  readonly managementUp: Gauge;
}

const replicasByRegistry = new WeakMap<Registry, ReplicaMetrics>();

/** The replica instruments on `registry` (shared, as {@link routingMetrics}). */
export function replicaMetrics(registry: Registry): ReplicaMetrics {
  const existing = replicasByRegistry.get(registry);
  if (existing) return existing;
  const gauge = (name: string, help: string): Gauge<'queue_kind'> => new Gauge({ name, help, labelNames: ['queue_kind'] as const, registers: [registry] });
  const metrics: ReplicaMetrics = {
    queueMembers: gauge('hearth_amqp_queue_members', 'Members (replicas) of each of hearth\'s quorum queues, by kind (cluster, host, dead), from the management API.'),
    queueOnlineMembers: gauge('hearth_amqp_queue_online_members', 'Members of each quorum queue whose replica is running, by kind.'),
    queueTargetMembers: gauge('hearth_amqp_queue_target_members', 'Members each quorum queue should have: amqp.quorumInitialGroupSize, at most the nodes of the RabbitMQ cluster.'),
    managementUp: new Gauge({ name: 'hearth_amqp_management_up', help: '1 while the last poll of the RabbitMQ management API (amqp.managementUrl) got an answer.', registers: [registry] }),
  };
  replicasByRegistry.set(registry, metrics);
  return metrics;
}
