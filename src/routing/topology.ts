/**
 * Pure routing rules: the names of hearth's exchanges and queues, and where a job goes.
 *
 * ```
 *  publish(job)              ┌──────────────────────────────┐  quorum, durable, consumed by
 *  ───────────► <prefix> ────┤ <prefix>.volume.<cluster>     ├─ every member (competing)
 *      (direct, durable)     └──────────────────────────────┘
 *                        └───┤ <prefix>.volume.<cluster>.<host> ├─ quorum, durable, one member
 *
 *  publishNotice(n) ──► <prefix>.notices.<cluster> (fanout) ──► one exclusive, auto-delete
 *                                     queue per live member: <prefix>.notices.<cluster>.<host>.<id>
 *
 *  poison / malformed ──► <prefix>.dead (fanout) ──► <prefix>.dead (quorum queue)
 *  (also the cluster and host queues' x-dead-letter-exchange)
 * ```
 *
 * Every name is the prefix or starts with `<prefix>.`, so a RabbitMQ user limited to
 * `^<prefix>(\..*)?$` can run hearth (docs/security.md). Routing keys on the direct exchange
 * are the queue names. Cluster and host ids carry `@`
 * (`ceph@rbd`, `node1@rbd`), which RabbitMQ allows in names.
 */

/** Every name the AMQP topology of one member uses. */
export interface Topology {
  /** Durable direct exchange every job is published to. */
  readonly exchange: string;
  /** The cluster's quorum queue (and its routing key). */
  readonly clusterQueue: string;
  /** This member's host queue for host-directed jobs (and its routing key). */
  readonly hostQueue: string;
  /** Fanout exchange for cluster-wide notices. */
  readonly noticeExchange: string;
  /** Dead-letter exchange (fanout) and, by the same name, the dead-letter queue. */
  readonly deadExchange: string;
  readonly deadQueue: string;
}

/** The names for `prefix`, `cluster` and `host`. */
export function topologyFor(prefix: string, cluster: string, host: string): Topology {
  return {
    exchange: prefix,
    clusterQueue: clusterQueueName(prefix, cluster),
    hostQueue: hostQueueName(prefix, cluster, host),
    noticeExchange: `${prefix}.notices.${cluster}`,
    deadExchange: `${prefix}.dead`,
    deadQueue: `${prefix}.dead`,
  };
}

/** `<prefix>.volume.<cluster>`: the queue (and routing key) of a cluster. */
export function clusterQueueName(prefix: string, cluster: string): string {
  return `${prefix}.volume.${cluster}`;
}

/** `<prefix>.volume.<cluster>.<host>`: the queue (and routing key) of one host. */
export function hostQueueName(prefix: string, cluster: string, host: string): string {
  return `${prefix}.volume.${cluster}.${host}`;
}

/**
 * `<prefix>.notices.<cluster>.<host>.<id>`: one member's exclusive notice queue; `id` tells
 * apart the subscriptions of one member.
 */
export function noticeQueueName(prefix: string, cluster: string, host: string, id: string): string {
  return `${prefix}.notices.${cluster}.${host}.${id}`;
}

/**
 * Arguments of the cluster and host queues. Quorum queues (replicated, durable) count
 * deliveries in `x-delivery-count`; `at-least-once` dead-lettering (RabbitMQ 3.10+) makes the
 * broker's own dead-lettering safe and requires `reject-publish` overflow. No `x-delivery-limit`
 * is set: the limit is enforced by the bus (`amqp.maxDeliveries`, with a reason header), and
 * queue arguments that never change keep redeclaration from failing after a config change. The
 * one that does (`x-quorum-initial-group-size`) is added only when a queue is created
 * (`amqp-declare.ts`).
 */
export function workQueueArguments(deadExchange: string): Record<string, string> {
  return {
    'x-queue-type': 'quorum',
    'x-dead-letter-exchange': deadExchange,
    'x-dead-letter-strategy': 'at-least-once',
    'x-overflow': 'reject-publish',
  };
}

/** Headers hearth sets on a message it dead-letters itself. */
export const DEAD_LETTER_HEADERS = {
  reason: 'x-hearth-dead-reason',
  detail: 'x-hearth-dead-detail',
  queue: 'x-hearth-dead-queue',
  by: 'x-hearth-dead-by',
  at: 'x-hearth-dead-at',
  deliveries: 'x-hearth-dead-deliveries',
} as const;
