/**
 * The JobBus on RabbitMQ (amqplib 2.x): the cluster mode adapter. Topology and names are in
 * `topology.ts`; the connection is `../amqp/connection.ts`; the contract is in `job-bus.ts`.
 */
import { randomUUID } from 'node:crypto';
import type { Channel, ConsumeMessage, Options } from 'amqplib';
import type { Registry } from 'prom-client';
import { AbortedError, BackendAccessError, BackendUnavailableError, ClosedError, describeError, NotFoundError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { AmqpConnection, type AmqpConnectionSettings, type AmqpSession } from '../amqp/connection.js';
import { sendConfirmed } from '../amqp/publish.js';
import { declareQuorumQueue } from './amqp-declare.js';
import { toDeadLetter } from './amqp-dead-letter.js';
import { AmqpSubscription } from './amqp-subscription.js';
import { JointSubscription } from './joint-subscription.js';
import { MessageVersions } from './message-versions.js';
import { sleep } from '../lifecycle/clock.js';
import type {
  BusIdentity,
  BusState,
  BusStateChange,
  ConsumeOptions,
  DeadLetter,
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
  correlationIdOf,
  type DeadLetterReason,
  decodeNotice,
  encodeJob,
  encodeNotice,
  type JobMessage,
  type Notice,
} from './job-message.js';
import { countDeadLetter, type RoutingMetrics, routingMetrics } from './metrics.js';
import { clusterQueueOf, DEAD_LETTER_HEADERS, hostQueueOf, noticeQueueName, type Topology, topologyFor, topologyForVersion, workQueueArguments } from './topology.js';

/** Settings of {@link AmqpJobBus}: the `amqp` config slice. */
export interface AmqpJobBusSettings extends AmqpConnectionSettings {
  readonly prefix: string;
  readonly prefetch: number;
  readonly publishTimeoutMs: number;
  readonly maxDeliveries: number;
  /** Replicas of a quorum queue when hearth creates it (`amqp.quorumInitialGroupSize`); default 3. */
  readonly quorumInitialGroupSize?: number;
}

const DEFAULT_GROUP_SIZE = 3;

/** Dependencies of {@link AmqpJobBus}. */
export interface AmqpJobBusOptions {
  readonly identity: BusIdentity;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Which message version to write to a cluster, which ones to read (default: this build's, writing its lowest). */
  readonly versions?: MessageVersions;
}

/** A cluster's queue of one message version, to declare before publishing to it. */
interface QueueOfVersion {
  readonly cluster: string;
  readonly version: number;
}

interface NoticeListener {
  readonly handler: (notice: Notice) => void | Promise<void>;
  channel?: Channel;
  /** The connection the channel belongs to. */
  session?: AmqpSession;
  cancelled: boolean;
}

/** See the module doc and {@link JobBus}. Failure semantics are on each method of the port. */
export class AmqpJobBus implements JobBus {
  readonly distributed = true;
  readonly identity: BusIdentity;
  private readonly topology: Topology;
  private readonly connection: AmqpConnection;
  private readonly metrics: RoutingMetrics;
  private readonly logger: Logger;
  private readonly versions: MessageVersions;
  private readonly subscriptions = new Set<AmqpSubscription>();
  private readonly noticeListeners = new Set<NoticeListener>();
  /** Queues declared on a connection for publishing (generation → `<cluster>#<version>`). */
  private readonly declared = new Map<number, Set<string>>();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly settings: AmqpJobBusSettings,
    deps: AmqpJobBusOptions,
  ) {
    this.identity = deps.identity;
    this.logger = deps.logger;
    this.metrics = routingMetrics(deps.registry);
    this.versions = deps.versions ?? new MessageVersions();
    this.topology = topologyFor(settings.prefix, deps.identity.cluster, deps.identity.host);
    this.connection = new AmqpConnection(settings, {
      logger: deps.logger,
      metrics: this.metrics,
      name: `hearth ${deps.identity.host}`,
      setup: (session) => this.setup(session),
    });
    // A consumer added between the end of a connection's setup and its going up is attached
    // here, so it does not wait for the next reconnection.
    this.connection.onStateChange((change) => {
      if (change.state === 'up') void this.attachLate();
    });
  }

  get state(): BusState {
    return this.connection.state;
  }

  get ready(): boolean {
    return this.connection.state === 'up';
  }

  /** Why the bus is not up ('' when it is). For readiness details; never holds a secret. */
  get notReadyReason(): string {
    return this.ready ? '' : `RabbitMQ ${this.state}${this.connection.error ? `: ${this.connection.error}` : ''}`;
  }

  onStateChange(listener: (change: BusStateChange) => void): () => void {
    return this.connection.onStateChange(listener);
  }

  async start(): Promise<void> {
    this.connection.start();
  }

  async waitUntilReady(options: { readonly signal?: AbortSignal; readonly timeoutMs?: number } = {}): Promise<void> {
    const timeout = AbortSignal.timeout(options.timeoutMs ?? this.settings.publishTimeoutMs);
    try {
      await this.connection.waitForSession(AbortSignal.any(options.signal ? [options.signal, timeout] : [timeout]));
    } catch (err) {
      throw this.translateWait(err, options.signal, 'RabbitMQ did not become ready');
    }
  }

  publish(input: JobInput, options?: PublishOptions): Promise<JobMessage>;
  publish(input: CleanupInput, options?: PublishOptions): Promise<CleanupMessage>;
  async publish(input: MessageInput, options: PublishOptions = {}): Promise<BusMessage> {
    this.assertOpen();
    const version = input.v ?? this.versions.writeVersion(input.cluster, options.host);
    const job = { ...input, v: version, publishedAt: input.publishedAt ?? Date.now() } as BusMessage;
    const content = encodeJob(job);
    // Each version has its own queues: a member only ever receives versions it reads.
    const routingKey = options.host
      ? hostQueueOf(this.settings.prefix, job.cluster, options.host, version)
      : clusterQueueOf(this.settings.prefix, job.cluster, version);
    const outcome = await this.send(
      this.topology.exchange,
      routingKey,
      content,
      { contentType: 'application/json', type: 'hearth.job', correlationId: correlationIdOf(job), appId: 'hearth' },
      options.signal,
      options.host ? undefined : { cluster: job.cluster, version },
    );
    if (outcome === 'returned') {
      throw options.host
        ? new NotFoundError('host queue', options.host, `no queue of message version ${version} for host ${options.host} in cluster ${job.cluster}: it has never consumed that version`)
        : new NotFoundError('cluster queue', job.cluster);
    }
    this.metrics.published.inc({ version: String(version) });
    return job;
  }

  async publishNotice(input: NoticeInput, options: { readonly signal?: AbortSignal } = {}): Promise<Notice> {
    this.assertOpen();
    const notice: Notice = { v: 1, type: input.type, cluster: this.identity.cluster, from: this.identity.host, data: input.data ?? {}, at: Date.now() };
    const content = encodeNotice(notice);
    await this.send(this.topology.noticeExchange, '', content, { contentType: 'application/json', type: 'hearth.notice' }, options.signal);
    return notice;
  }

  /** Consumes the queues of every message version this build reads, one subscription each. */
  async consume(handler: JobHandler, options: ConsumeOptions = {}): Promise<JobSubscription> {
    this.assertOpen();
    const { prefix } = this.settings;
    const parts = this.versions.readVersions().map(
      (version) =>
        new AmqpSubscription(
          {
            topology: topologyForVersion(prefix, this.identity.cluster, this.identity.host, version),
            cluster: this.identity.cluster,
            maxDeliveries: this.settings.maxDeliveries,
            attachTimeoutMs: this.settings.connectTimeoutMs,
            declare: (session, queue) => this.declareWorkQueue(session, queue),
            logger: this.logger,
            deadLetter: (session, msg, queue, reason, detail, deliveries) => this.deadLetter(session, msg, queue, reason, detail, deliveries),
            forget: (s) => this.subscriptions.delete(s),
          },
          handler,
          options.prefetch ?? this.settings.prefetch,
        ),
    );
    const subscription = new JointSubscription(parts);
    for (const part of parts) this.subscriptions.add(part);
    options.signal?.addEventListener('abort', () => void subscription.cancel(), { once: true });
    const session = this.connection.current();
    if (session) {
      try {
        for (const part of parts) await part.attach(session);
      } catch (err) {
        // Start over: the next connection attaches every subscription, this one included.
        this.logger.warn({ err }, 'could not attach a consumer; reconnecting');
        session.reset('a consumer could not be attached');
      }
    }
    return subscription;
  }

  async subscribeNotices(handler: (notice: Notice) => void | Promise<void>, options: { readonly signal?: AbortSignal } = {}): Promise<NoticeSubscription> {
    this.assertOpen();
    const listener: NoticeListener = { handler, cancelled: false };
    this.noticeListeners.add(listener);
    const cancel = async (): Promise<void> => {
      listener.cancelled = true;
      this.noticeListeners.delete(listener);
      await listener.channel?.close().catch(() => undefined);
    };
    options.signal?.addEventListener('abort', () => void cancel(), { once: true });
    const session = this.connection.current();
    if (session) {
      await this.attachNotices(session, listener).catch((err: unknown) => {
        this.logger.warn({ err }, 'could not attach a notice consumer; reconnecting');
        session.reset('a notice consumer could not be attached');
      });
    }
    return { cancel };
  }

  async listDeadLetters(options: { readonly limit?: number; readonly signal?: AbortSignal } = {}): Promise<DeadLetter[]> {
    this.assertOpen();
    const limit = Math.max(0, Math.min(options.limit ?? 100, 10_000));
    const session = await this.sessionWithin(options.signal);
    const ch = await session.model.createChannel();
    ch.on('error', () => undefined);
    try {
      const out: DeadLetter[] = [];
      while (out.length < limit) {
        const msg = await ch.get(this.topology.deadQueue, { noAck: false });
        if (!msg) break;
        out.push(toDeadLetter(msg));
      }
      return out;
    } finally {
      // Closing the channel returns every message it took: browsing removes nothing.
      await ch.close().catch(() => undefined);
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.subscriptions].map((s) => s.cancel()));
      for (const listener of this.noticeListeners) listener.cancelled = true;
      this.noticeListeners.clear();
      await this.connection.close();
    })();
    return this.closing;
  }

  private async attachLate(): Promise<void> {
    const session = this.connection.current();
    if (!session) return;
    try {
      for (const subscription of this.subscriptions) if (!subscription.attachedTo(session)) await subscription.attach(session);
      for (const listener of this.noticeListeners) if (listener.session !== session) await this.attachNotices(session, listener);
    } catch (err) {
      this.logger.warn({ err }, 'could not attach a consumer; reconnecting');
      session.reset('a consumer could not be attached');
    }
  }

  /** Declares the topology and re-attaches consumers on every new connection. */
  private async setup(session: AmqpSession): Promise<void> {
    const ch = session.confirm;
    const t = this.topology;
    await ch.assertExchange(t.exchange, 'direct', { durable: true });
    await ch.assertExchange(t.deadExchange, 'fanout', { durable: true });
    await this.declare(session, t.deadQueue, { 'x-queue-type': 'quorum' });
    await ch.bindQueue(t.deadQueue, t.deadExchange, '');
    await ch.assertExchange(t.noticeExchange, 'fanout', { durable: true });
    // This cluster's queue of every version it reads, so that nothing published to one is lost
    // before a consumer of that version attaches.
    for (const version of this.versions.readVersions()) {
      const queue = clusterQueueOf(this.settings.prefix, this.identity.cluster, version);
      await this.declareWorkQueue(session, queue);
      await ch.bindQueue(queue, t.exchange, queue);
    }
    this.declared.clear();
    for (const subscription of this.subscriptions) await subscription.attach(session);
    for (const listener of this.noticeListeners) await this.attachNotices(session, listener);
  }

  private async attachNotices(session: AmqpSession, listener: NoticeListener): Promise<void> {
    if (listener.cancelled) return;
    const ch = await session.model.createChannel();
    ch.on('error', () => undefined);
    // Named by hearth, not by the broker (amq.gen-…), so the user's permissions can stay
    // limited to hearth's prefix.
    const { queue } = await ch.assertQueue(noticeQueueName(this.settings.prefix, this.identity.cluster, this.identity.host, randomUUID()), {
      exclusive: true,
      autoDelete: true,
      durable: false,
    });
    await ch.bindQueue(queue, this.topology.noticeExchange, '');
    listener.channel = ch;
    listener.session = session;
    await ch.consume(
      queue,
      (msg: ConsumeMessage | null) => {
        const notice = msg ? decodeNotice(msg.content) : undefined;
        if (!notice || listener.cancelled) return;
        Promise.resolve()
          .then(() => listener.handler(notice))
          .catch((err: unknown) => this.logger.error({ err, type: notice.type }, 'notice handler threw'));
      },
      { noAck: true },
    );
  }

  /** Publishes within `amqp.publishTimeoutMs`, waiting for and retrying across reconnections. */
  private async send(
    exchange: string,
    routingKey: string,
    content: Buffer,
    properties: Record<string, unknown>,
    signal: AbortSignal | undefined,
    declare?: QueueOfVersion,
  ): Promise<'confirmed' | 'returned'> {
    // One controller and one timer per publish: AbortSignal.timeout/any cost more on this path.
    const stop = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      stop.abort(new Error('publish timeout'));
    }, this.settings.publishTimeoutMs);
    const forward = (): void => stop.abort(signal?.reason);
    signal?.addEventListener('abort', forward, { once: true });
    if (signal?.aborted) forward();
    try {
      for (;;) {
        try {
          const session = this.connection.current() ?? (await this.connection.waitForSession(stop.signal));
          if (declare && !this.declaredBySetup(declare)) await this.declareCluster(session, declare);
          return await sendConfirmed(session, exchange, routingKey, content, { ...properties, messageId: randomUUID() }, stop.signal);
        } catch (err) {
          if (err instanceof ClosedError || signal?.aborted) throw this.translateWait(err, signal, 'publish');
          let lastError = describeError(err);
          if (err instanceof AbortedError) lastError = this.ready ? 'the broker did not confirm in time' : this.notReadyReason;
          if (timedOut) {
            throw new BackendUnavailableError('amqp', `publish to ${routingKey} failed within ${this.settings.publishTimeoutMs} ms: ${lastError}`, { cause: err });
          }
          // Sent on a connection that then died, or refused: try again while time remains.
          await sleep(100, stop.signal).catch(() => undefined);
        }
      }
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', forward);
    }
  }

  /** True for this cluster's queues of the versions this build reads: `setup` declared them. */
  private declaredBySetup(q: QueueOfVersion): boolean {
    return q.cluster === this.identity.cluster && q.version >= this.versions.reads.min && q.version <= this.versions.reads.max;
  }

  /** Declares another cluster's queue (or another version's) before publishing to it (once per connection). */
  private async declareCluster(session: AmqpSession, q: QueueOfVersion): Promise<void> {
    const seen = this.declared.get(session.generation) ?? new Set<string>();
    const id = `${q.cluster}#${q.version}`;
    if (seen.has(id)) return;
    const queue = clusterQueueOf(this.settings.prefix, q.cluster, q.version);
    await this.declareWorkQueue(session, queue);
    await session.confirm.bindQueue(queue, this.topology.exchange, queue);
    seen.add(id);
    this.declared.set(session.generation, seen);
  }

  /** Declares a cluster or host queue (see amqp-declare.ts: an existing one keeps its declaration). */
  private declareWorkQueue(session: AmqpSession, queue: string): Promise<void> {
    return this.declare(session, queue, workQueueArguments(this.topology.deadExchange));
  }

  private async declare(session: AmqpSession, queue: string, args: Record<string, unknown>): Promise<void> {
    const outcome = await declareQuorumQueue(session.model, queue, args, this.settings.quorumInitialGroupSize ?? DEFAULT_GROUP_SIZE);
    if (outcome === 'kept') this.logger.debug({ queue }, 'the queue keeps the initial group size it was declared with');
  }

  /** Copies a message to the dead-letter exchange with hearth's reason headers. */
  private async deadLetter(session: AmqpSession, msg: ConsumeMessage, queue: string, reason: DeadLetterReason, detail: string, deliveries: number): Promise<void> {
    const headers = {
      ...(msg.properties.headers ?? {}),
      [DEAD_LETTER_HEADERS.reason]: reason,
      [DEAD_LETTER_HEADERS.detail]: detail,
      [DEAD_LETTER_HEADERS.queue]: queue,
      [DEAD_LETTER_HEADERS.by]: this.identity.host,
      [DEAD_LETTER_HEADERS.at]: Date.now(),
      [DEAD_LETTER_HEADERS.deliveries]: deliveries,
    };
    const properties: Options.Publish & { messageId: string } = { headers, messageId: randomUUID() };
    if (typeof msg.properties.contentType === 'string') properties.contentType = msg.properties.contentType;
    if (typeof msg.properties.correlationId === 'string') properties.correlationId = msg.properties.correlationId;
    const outcome = await sendConfirmed(session, this.topology.deadExchange, '', msg.content, properties, AbortSignal.timeout(this.settings.publishTimeoutMs));
    if (outcome === 'returned') throw new BackendUnavailableError('amqp', `dead-letter queue ${this.topology.deadQueue} is missing`);
    countDeadLetter(this.metrics, reason);
    this.logger.warn({ reason, detail, queue, deliveries, correlationId: msg.properties.correlationId as unknown }, 'dead-lettered a message');
  }

  private async sessionWithin(signal: AbortSignal | undefined): Promise<AmqpSession> {
    const deadline = AbortSignal.timeout(this.settings.publishTimeoutMs);
    try {
      return await this.connection.waitForSession(AbortSignal.any(signal ? [signal, deadline] : [deadline]));
    } catch (err) {
      throw this.translateWait(err, signal, 'RabbitMQ is not reachable');
    }
  }

  private translateWait(err: unknown, signal: AbortSignal | undefined, what: string): Error {
    if (err instanceof ClosedError) return err;
    if (signal?.aborted) return err instanceof AbortedError ? err : new AbortedError(what, { cause: err });
    if (err instanceof AbortedError) {
      // A refusal keeps its type, so that callers (and tests) can tell it from an outage.
      const failure = this.connection.failure;
      if (failure instanceof BackendAccessError) return new BackendAccessError('amqp', failure.reason, `${what}: ${failure.message}`, { cause: failure });
      return new BackendUnavailableError('amqp', `${what}: ${this.notReadyReason || 'timed out'}`, { cause: err });
    }
    return err instanceof Error ? err : new Error(String(err));
  }

  private assertOpen(): void {
    if (this.closing || this.connection.state === 'closed') throw new ClosedError('job bus');
  }
}
