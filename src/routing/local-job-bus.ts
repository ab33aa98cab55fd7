/**
 * The JobBus in process: the single-node default. Same contract as the RabbitMQ bus
 * (`job-bus.ts`), over a {@link LocalBroker} shared by every bus of the process.
 *
 * Failure semantics: there is no broker to lose, so the bus is `up` until `close()`. Jobs live
 * in memory only: a process that exits loses its queued jobs, but their op records stay in the
 * state store, and the sweeper re-publishes them after a restart.
 */
import type { Registry } from 'prom-client';
import { AbortedError, ClosedError, NotFoundError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { sleep } from '../lifecycle/clock.js';
import { runHandler, vet } from './dispatch.js';
import { IdleWaiters } from '../concurrency/idle-waiters.js';
import type {
  BusIdentity,
  BusState,
  BusStateChange,
  ConsumeOptions,
  DeadLetter,
  Disposition,
  JobBus,
  JobHandler,
  JobInput,
  CleanupInput,
  MessageInput,
  JobSubscription,
  NoticeInput,
  NoticeSubscription,
  PublishOptions,
} from './job-bus.js';
import {
  type BusMessage,
  type CleanupMessage,
  type DeadLetterReason,
  decodeNotice,
  encodeJob,
  encodeNotice,
  type JobMessage,
  type Notice,
} from './job-message.js';
import type { LocalBroker, LocalConsumer, LocalMessage, LocalQueue } from './local-broker.js';
import { MessageVersions } from './message-versions.js';
import { countDeadLetter, type RoutingMetrics, routingMetrics } from './metrics.js';
import { clusterQueueName, hostQueueName, type Topology, topologyFor } from './topology.js';

/** Settings of {@link LocalJobBus} (from the `amqp` config slice, which names the queues). */
export interface LocalJobBusSettings {
  readonly prefix: string;
  readonly prefetch: number;
  readonly maxDeliveries: number;
}

/** Dependencies of {@link LocalJobBus}. */
export interface LocalJobBusOptions {
  readonly broker: LocalBroker;
  readonly identity: BusIdentity;
  readonly logger: Logger;
  readonly registry: Registry;
  /**
   * Which message version to write (default: this build's lowest). One process reads every
   * version it writes, so the in-process queues are not split by version.
   */
  readonly versions?: MessageVersions;
}

/** See the module doc. */
export class LocalJobBus implements JobBus {
  readonly distributed = false;
  readonly identity: BusIdentity;
  private readonly topology: Topology;
  private readonly broker: LocalBroker;
  private readonly logger: Logger;
  private readonly metrics: RoutingMetrics;
  private readonly versions: MessageVersions;
  private readonly subscriptions = new Set<LocalSubscription>();
  private readonly listeners = new Set<(change: BusStateChange) => void>();
  private closed = false;

  constructor(
    private readonly settings: LocalJobBusSettings,
    deps: LocalJobBusOptions,
  ) {
    this.identity = deps.identity;
    this.broker = deps.broker;
    this.logger = deps.logger;
    this.metrics = routingMetrics(deps.registry);
    this.versions = deps.versions ?? new MessageVersions();
    this.topology = topologyFor(settings.prefix, deps.identity.cluster, deps.identity.host);
    this.broker.queue(this.topology.clusterQueue, true);
  }

  get state(): BusState {
    return this.closed ? 'closed' : 'up';
  }

  get ready(): boolean {
    return !this.closed;
  }

  get notReadyReason(): string {
    return this.ready ? '' : `job bus ${this.state}`;
  }

  onStateChange(listener: (change: BusStateChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async start(): Promise<void> {
    this.assertOpen();
  }

  async waitUntilReady(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    this.assertOpen();
    if (options.signal?.aborted) throw new AbortedError('waiting for the job bus', { cause: options.signal.reason });
  }

  publish(input: JobInput, options?: PublishOptions): Promise<JobMessage>;
  publish(input: CleanupInput, options?: PublishOptions): Promise<CleanupMessage>;
  async publish(input: MessageInput, options: PublishOptions = {}): Promise<BusMessage> {
    this.assertOpen();
    if (options.signal?.aborted) throw new AbortedError('publish', { cause: options.signal.reason });
    const version = input.v ?? this.versions.writeVersion(input.cluster, options.host);
    const job = { ...input, v: version, publishedAt: input.publishedAt ?? Date.now() } as BusMessage;
    const content = encodeJob(job);
    if (options.host) {
      const queue = this.broker.queue(hostQueueName(this.settings.prefix, job.cluster, options.host), false);
      if (!queue) throw new NotFoundError('host queue', options.host, `no queue for host ${options.host} in cluster ${job.cluster}: it has never consumed`);
      queue.enqueue(content);
    } else {
      (this.broker.queue(clusterQueueName(this.settings.prefix, job.cluster), true) as LocalQueue).enqueue(content);
    }
    this.metrics.published.inc({ version: String(version) });
    return job;
  }

  async publishNotice(input: NoticeInput, options: { readonly signal?: AbortSignal } = {}): Promise<Notice> {
    this.assertOpen();
    if (options.signal?.aborted) throw new AbortedError('publish', { cause: options.signal.reason });
    const notice: Notice = { v: 1, type: input.type, cluster: this.identity.cluster, from: this.identity.host, data: input.data ?? {}, at: Date.now() };
    // Encode and decode so a notice is exactly what RabbitMQ would carry.
    this.broker.broadcast(decodeNotice(encodeNotice(notice)) as Notice);
    return notice;
  }

  async consume(handler: JobHandler, options: ConsumeOptions = {}): Promise<JobSubscription> {
    this.assertOpen();
    const subscription = new LocalSubscription(this, handler, options.prefetch ?? this.settings.prefetch);
    this.subscriptions.add(subscription);
    subscription.attach(this.broker.queue(this.topology.clusterQueue, true) as LocalQueue, 'cluster');
    subscription.attach(this.broker.queue(this.topology.hostQueue, true) as LocalQueue, 'host');
    options.signal?.addEventListener('abort', () => void subscription.cancel(), { once: true });
    return subscription;
  }

  async subscribeNotices(handler: (notice: Notice) => void | Promise<void>, options: { readonly signal?: AbortSignal } = {}): Promise<NoticeSubscription> {
    this.assertOpen();
    const off = this.broker.listen(this.identity.cluster, (notice) => {
      Promise.resolve()
        .then(() => handler(notice))
        .catch((err: unknown) => this.logger.error({ err, type: notice.type }, 'notice handler threw'));
    });
    const cancel = async (): Promise<void> => void off();
    options.signal?.addEventListener('abort', () => void cancel(), { once: true });
    return { cancel };
  }

  async listDeadLetters(options: { readonly limit?: number } = {}): Promise<DeadLetter[]> {
    this.assertOpen();
    return this.broker.deadLetters(Math.max(0, Math.min(options.limit ?? 100, 10_000)));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Like a closed AMQP connection: stop consuming and hand back what was not settled.
    for (const subscription of this.subscriptions) subscription.lose();
    this.subscriptions.clear();
    this.closed = true;
    const change: BusStateChange = { state: 'closed', previous: 'up', at: Date.now() };
    for (const listener of this.listeners) listener(change);
  }

  /** @internal used by {@link LocalSubscription}. */
  vetLimits(): { cluster: string; maxDeliveries: number } {
    return { cluster: this.identity.cluster, maxDeliveries: this.settings.maxDeliveries };
  }

  /** @internal used by {@link LocalSubscription}. */
  get log(): Logger {
    return this.logger;
  }

  /** @internal used by {@link LocalSubscription}. */
  deadLetter(message: LocalMessage, queue: string, reason: DeadLetterReason, detail: string, deliveries: number): void {
    this.broker.addDeadLetter({ reason, detail, queue, by: this.identity.host, at: Date.now(), deliveries, body: message.content.subarray(0, 1024).toString('utf8') });
    countDeadLetter(this.metrics, reason);
    this.logger.warn({ reason, detail, queue, deliveries }, 'dead-lettered a message');
  }

  /** @internal */
  forget(subscription: LocalSubscription): void {
    this.subscriptions.delete(subscription);
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError('job bus');
  }
}

interface InFlight {
  readonly queue: LocalQueue;
  readonly consumer: LocalConsumer;
  readonly message: LocalMessage;
  readonly lost: AbortController;
  settled: boolean;
}

/** A consumer of the cluster and host queues on the local broker. */
class LocalSubscription implements JobSubscription {
  private activeValue = true;
  private readonly consumers: { queue: LocalQueue; consumer: LocalConsumer }[] = [];
  private readonly inFlightSet = new Set<InFlight>();
  private readonly cancelled = new AbortController();
  private readonly idleWaiters = new IdleWaiters();

  constructor(
    private readonly bus: LocalJobBus,
    private readonly handler: JobHandler,
    private readonly prefetch: number,
  ) {}

  get active(): boolean {
    return this.activeValue;
  }

  get inFlight(): number {
    return this.inFlightSet.size;
  }

  attach(queue: LocalQueue, via: 'cluster' | 'host'): void {
    const consumer: LocalConsumer = { prefetch: this.prefetch, unacked: 0, deliver: (m) => void this.handle(queue, consumer, via, m) };
    this.consumers.push({ queue, consumer });
    queue.addConsumer(consumer);
  }

  async cancel(): Promise<void> {
    if (!this.activeValue) return;
    this.activeValue = false;
    this.cancelled.abort();
    for (const { queue, consumer } of this.consumers) queue.removeConsumer(consumer);
    this.bus.forget(this);
  }

  /** The bus closed: deliveries not settled go back to their queue, as on a lost connection. */
  lose(): void {
    void this.cancel();
    for (const entry of this.inFlightSet) {
      if (entry.settled) continue;
      entry.settled = true;
      entry.lost.abort(new ClosedError('job bus'));
      entry.queue.requeue(entry.consumer, entry.message);
    }
  }

  idle(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    return this.idleWaiters.wait(this.inFlightSet.size === 0, options.signal);
  }


  private async handle(queue: LocalQueue, consumer: LocalConsumer, via: 'cluster' | 'host', message: LocalMessage): Promise<void> {
    const entry: InFlight = { queue, consumer, message, lost: new AbortController(), settled: false };
    this.inFlightSet.add(entry);
    const deliveryCount = message.returns + 1;
    try {
      if (!this.activeValue) return this.settle(entry, { type: 'requeue' }, deliveryCount);
      const verdict = vet(message.content, deliveryCount, this.bus.vetLimits());
      const disposition: Disposition =
        verdict.action === 'dead-letter'
          ? { type: 'dead-letter', reason: verdict.reason, detail: verdict.detail }
          : await runHandler(this.handler, { job: verdict.job, via, deliveryCount, redelivered: message.returns > 0, signal: entry.lost.signal }, this.bus.log);
      if (disposition.type === 'retry-later') await sleep(disposition.delayMs, AbortSignal.any([this.cancelled.signal, entry.lost.signal])).catch(() => undefined);
      this.settle(entry, disposition, deliveryCount);
    } finally {
      this.inFlightSet.delete(entry);
      if (this.inFlightSet.size === 0) {
        this.idleWaiters.wake();
      }
    }
  }

  private settle(entry: InFlight, d: Disposition, deliveries: number): void {
    if (entry.settled) return; // Handed back when the bus closed.
    entry.settled = true;
    switch (d.type) {
      case 'ack':
      case 'drop':
        return entry.queue.settle(entry.consumer);
      case 'dead-letter':
        this.bus.deadLetter(entry.message, entry.queue.name, d.reason ?? 'rejected', d.detail, deliveries);
        return entry.queue.settle(entry.consumer);
      case 'requeue':
      case 'retry-later':
        return entry.queue.requeue(entry.consumer, entry.message);
    }
  }
}
