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
 * Each message version has its own cluster and host queues: version 1 the names above, version
 * N ≥ 2 `<prefix>.v<N>.volume.<cluster>[.<host>]`. A publisher sends to the queue of the version
 * it writes; a member consumes the queues of every version it reads (docs/upgrades.md).
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
 * The cluster queue of message version `version`. Version 1 keeps the first release's name
 * ({@link clusterQueueName}); a later one is `<prefix>.v<N>.volume.<cluster>`, a name no
 * version-1 queue can have (`v<N>` is a fixed part, cluster ids always contain `@`).
 */
export function clusterQueueOf(prefix: string, cluster: string, version: number): string {
  return version <= 1 ? clusterQueueName(prefix, cluster) : `${prefix}.v${version}.volume.${cluster}`;
}

/** The host queue of message version `version`: as {@link clusterQueueOf}, `<prefix>.v<N>.volume.<cluster>.<host>`. */
export function hostQueueOf(prefix: string, cluster: string, host: string, version: number): string {
  return version <= 1 ? hostQueueName(prefix, cluster, host) : `${prefix}.v${version}.volume.${cluster}.${host}`;
}

/** The topology of one member for the queues of message version `version` (exchanges unchanged). */
export function topologyForVersion(prefix: string, cluster: string, host: string, version: number): Topology {
  return { ...topologyFor(prefix, cluster, host), clusterQueue: clusterQueueOf(prefix, cluster, version), hostQueue: hostQueueOf(prefix, cluster, host, version) };
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
