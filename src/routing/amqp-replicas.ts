/**
 * Watches the replicas of hearth's quorum queues through RabbitMQ's management API
 * (`amqp.managementUrl`). RabbitMQ 3.10 does not give a quorum queue a new member when one is
 * lost for good (a node reset or replaced): the queue runs on with fewer replicas, and one more
 * loss takes its quorum. AMQP does not show it; the management API does. Every
 * `amqp.managementIntervalMs` this reads, per queue kind (the cluster queue, this worker's host
 * queue, the dead-letter queue), the members and the online members, exports them
 * (`hearth_amqp_queue_members`, `…_online_members`, `…_target_members`) and logs each change of
 * state: under-replicated (fewer members, or fewer online, than the target), quorum lost (at
 * most half of the members online), or whole again.
 *
 * The target is `amqp.quorumInitialGroupSize`, at most the cluster's node count (which needs the
 * management user's `monitoring` tag; without it the target is the configured size).
 */
import type { ManagementReader } from '../amqp/management.js';
import { BackendAccessError } from '../errors.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Logger } from '../observability/logger.js';
import type { QueueKind, ReplicaMetrics } from './metrics.js';
import { everyInterval } from '../lifecycle/every.js';

/** One queue to watch. */
export interface WatchedQueue {
  readonly kind: QueueKind;
  readonly name: string;
}

/** What the management API says about one quorum queue. */
export interface QueueReplicas {
  readonly members: readonly string[];
  readonly online: readonly string[];
  readonly leader: string;
}

/** A queue's replica state: `whole`, `under-replicated`, or `no-quorum` (at most half online). */
export type ReplicaState = 'whole' | 'under-replicated' | 'no-quorum';

/** The replicas in a management API queue object; undefined when it is no quorum queue. */
export function replicasOf(body: unknown): QueueReplicas | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const q = body as { type?: unknown; members?: unknown; online?: unknown; leader?: unknown };
  if (q.type !== 'quorum') return undefined;
  const names = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  return { members: names(q.members), online: names(q.online), leader: typeof q.leader === 'string' ? q.leader : '' };
}

/** Pure: the state of a queue with these replicas, for `target` members. */
export function replicaState(replicas: QueueReplicas, target: number): ReplicaState {
  const members = replicas.members.length;
  const online = replicas.online.filter((n) => replicas.members.includes(n)).length;
  if (members === 0 || online * 2 <= members) return 'no-quorum';
  return members < target || online < members ? 'under-replicated' : 'whole';
}

/** Dependencies of {@link QueueReplicaMonitor}. */
export interface QueueReplicaMonitorOptions {
  readonly reader: ManagementReader;
  readonly vhost: string;
  readonly queues: readonly WatchedQueue[];
  /** `amqp.quorumInitialGroupSize`. */
  readonly groupSize: number;
  readonly intervalMs: number;
  /** Bound of one poll. */
  readonly timeoutMs: number;
  readonly metrics: ReplicaMetrics;
  readonly logger: Logger;
  readonly clock: Clock;
}

/**
 * See the module doc.
 *
 * Failure semantics: a poll no node answers sets `hearth_amqp_management_up` 0 and removes the
 * queue gauges (old figures would look current); it is logged once, and again when the API
 * answers. It never touches the job bus, readiness, or the queues.
 */
export class QueueReplicaMonitor {
  private readonly stop = new AbortController();
  private running: Promise<void> | undefined;
  private readonly states = new Map<string, ReplicaState>();
  private reachable: boolean | undefined;
  private nodesReadable = true;

  constructor(private readonly options: QueueReplicaMonitorOptions) {}

  /** Polls now and then every interval, in the background, until {@link close}. Idempotent. */
  start(): void {
    this.running ??= this.loop();
  }

  /** Stops polling. Idempotent. */
  async close(): Promise<void> {
    this.stop.abort();
    await this.running;
  }

  /** One poll: reads every queue and updates the gauges. Never throws. */
  async poll(): Promise<void> {
    const { metrics, logger } = this.options;
    const signal = AbortSignal.any([this.stop.signal, AbortSignal.timeout(this.options.timeoutMs)]);
    try {
      const target = Math.min(this.options.groupSize, (await this.clusterNodes(signal)) ?? this.options.groupSize);
      for (const queue of this.options.queues) {
        const answer = await this.options.reader.get(`/api/queues/${encodeURIComponent(this.options.vhost)}/${encodeURIComponent(queue.name)}`, signal);
        const replicas = answer.status === 200 ? replicasOf(answer.body) : undefined;
        if (!replicas) {
          // Not declared yet (404), or not a quorum queue: nothing to count.
          this.forget(queue);
          continue;
        }
        metrics.queueMembers.set({ queue_kind: queue.kind }, replicas.members.length);
        metrics.queueOnlineMembers.set({ queue_kind: queue.kind }, replicas.online.filter((n) => replicas.members.includes(n)).length);
        metrics.queueTargetMembers.set({ queue_kind: queue.kind }, target);
        this.report(queue, replicas, target);
      }
      metrics.managementUp.set(1);
      if (this.reachable === false) logger.info('the RabbitMQ management API answers again');
      this.reachable = true;
    } catch (err) {
      if (this.stop.signal.aborted) return;
      metrics.managementUp.set(0);
      for (const queue of this.options.queues) this.forget(queue);
      if (this.reachable !== false) logger.warn({ err }, 'cannot read the quorum queues\' replicas from the RabbitMQ management API; retrying');
      this.reachable = false;
    }
  }

  private loop(): Promise<void> {
    return everyInterval(this.options.clock, this.options.intervalMs, this.stop.signal, () => this.poll(), { immediately: true });
  }

  /** Nodes in the RabbitMQ cluster (running or not), or undefined when the user may not list them. */
  private async clusterNodes(signal: AbortSignal): Promise<number | undefined> {
    if (!this.nodesReadable) return undefined;
    try {
      const answer = await this.options.reader.get('/api/nodes?columns=name', signal);
      return Array.isArray(answer.body) && answer.body.length > 0 ? answer.body.length : undefined;
    } catch (err) {
      if (!(err instanceof BackendAccessError)) throw err;
      this.nodesReadable = false;
      this.options.logger.info({ err }, 'the management user cannot list the RabbitMQ nodes; the replica target is amqp.quorumInitialGroupSize');
      return undefined;
    }
  }

  private report(queue: WatchedQueue, replicas: QueueReplicas, target: number): void {
    const state = replicaState(replicas, target);
    const before = this.states.get(queue.name) ?? 'whole';
    this.states.set(queue.name, state);
    if (state === before) return;
    const offline = replicas.members.filter((n) => !replicas.online.includes(n));
    const fields = { queue: queue.name, queueKind: queue.kind, members: replicas.members, online: replicas.online, offline, target, leader: replicas.leader };
    const { logger } = this.options;
    if (state === 'whole') logger.info(fields, 'the quorum queue has all its members online again');
    else if (state === 'no-quorum') logger.error(fields, 'the quorum queue has lost its quorum: it takes and delivers nothing until a majority of its members is back');
    else logger.warn(fields, 'the quorum queue is under-replicated: bring its nodes back, or add a member with `rabbitmq-queues grow <node> all`');
  }

  private forget(queue: WatchedQueue): void {
    const labels = { queue_kind: queue.kind };
    this.options.metrics.queueMembers.remove(labels);
    this.options.metrics.queueOnlineMembers.remove(labels);
    this.options.metrics.queueTargetMembers.remove(labels);
  }
}
