/**
 * One consumer of the cluster queue and this member's host queue on RabbitMQ: vets each
 * message, runs the handler, and settles the message on the channel it came from.
 */
import type { Channel, ConsumeMessage } from 'amqplib';
import { AbortedError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { AmqpSession } from './amqp-connection.js';
import { deliveryCountOf } from './amqp-publish.js';
import { pause, runHandler, vet } from './dispatch.js';
import type { Disposition, JobHandler, JobSubscription } from './job-bus.js';
import type { DeadLetterReason } from './job-message.js';
import { type Topology, workQueueArguments } from './routes.js';

/** What a subscription needs from its bus. */
export interface SubscriptionContext {
  readonly topology: Topology;
  readonly cluster: string;
  readonly maxDeliveries: number;
  readonly logger: Logger;
  /** Copies the message to the dead-letter exchange with a reason; resolves once confirmed. */
  deadLetter(session: AmqpSession, msg: ConsumeMessage, queue: string, reason: DeadLetterReason, detail: string, deliveries: number): Promise<void>;
  /** Called once the subscription is cancelled, so the bus stops re-attaching it. */
  forget(subscription: AmqpSubscription): void;
}

type Via = 'cluster' | 'host';

/**
 * See the module doc and {@link JobSubscription}.
 *
 * Failure semantics: the channel belongs to one connection. When it is lost, the broker
 * requeues what this member held; handlers still running finish, but their dispositions are
 * dropped (their delivery signal aborted). `attach` is called again on the next connection.
 */
export class AmqpSubscription implements JobSubscription {
  private activeValue = true;
  private inFlightValue = 0;
  private channel: Channel | undefined;
  private consumerTags: string[] = [];
  private readonly cancelled = new AbortController();
  private readonly idleWaiters = new Set<() => void>();
  private cancelling: Promise<void> | undefined;

  constructor(
    private readonly ctx: SubscriptionContext,
    private readonly handler: JobHandler,
    private readonly prefetch: number,
  ) {}

  get active(): boolean {
    return this.activeValue;
  }

  get inFlight(): number {
    return this.inFlightValue;
  }

  /** Opens a channel on `session` and starts consuming both queues. */
  async attach(session: AmqpSession): Promise<void> {
    if (!this.activeValue) return;
    const { clusterQueue, hostQueue, exchange, deadExchange } = this.ctx.topology;
    const ch = await session.model.createChannel();
    ch.on('error', (err: Error) => this.ctx.logger.debug({ error: err.message }, 'consumer channel error'));
    ch.on('close', () => {
      // Closed by us after a cancel, or with its connection: nothing to do. Otherwise a channel
      // error killed it while the connection lives: start over so consumption resumes.
      if (this.channel === ch && this.activeValue) session.reset('a consumer channel closed');
    });
    // Quorum queues support only per-consumer prefetch, so this applies to each queue.
    await ch.prefetch(this.prefetch);
    await ch.assertQueue(hostQueue, { durable: true, arguments: workQueueArguments(deadExchange) });
    await ch.bindQueue(hostQueue, exchange, hostQueue);
    this.channel = ch;
    this.consumerTags = [];
    for (const [queue, via] of [
      [clusterQueue, 'cluster'],
      [hostQueue, 'host'],
    ] as const) {
      const { consumerTag } = await ch.consume(queue, (msg) => this.onMessage(ch, session, queue, via, msg), { noAck: false });
      this.consumerTags.push(consumerTag);
    }
    if (!this.activeValue) {
      // Cancelled while attaching: undo.
      await Promise.all(this.consumerTags.map((tag) => ch.cancel(tag).catch(() => undefined)));
      this.closeIfIdle();
    }
  }

  async cancel(): Promise<void> {
    if (this.cancelling) return this.cancelling;
    this.activeValue = false;
    this.cancelled.abort();
    this.ctx.forget(this);
    this.cancelling = (async () => {
      const ch = this.channel;
      if (!ch) return;
      // Closing the channel would return the deliveries in flight; cancel only stops new ones.
      // The channel closes once the last delivery in flight is settled.
      await Promise.all(this.consumerTags.map((tag) => ch.cancel(tag).catch(() => undefined)));
      this.closeIfIdle();
    })();
    return this.cancelling;
  }

  idle(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    if (this.inFlightValue === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const signal = options.signal;
      const onAbort = (): void => {
        this.idleWaiters.delete(done);
        reject(new AbortedError('waiting for deliveries in flight', { cause: signal?.reason }));
      };
      const done = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      if (signal?.aborted) return onAbort();
      this.idleWaiters.add(done);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private onMessage(ch: Channel, session: AmqpSession, queue: string, via: Via, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // The broker cancelled the consumer (its queue was deleted): redeclare by reconnecting.
      if (this.activeValue) session.reset(`the broker cancelled the consumer of ${queue}`);
      return;
    }
    void this.handle(ch, session, queue, via, msg);
  }

  private async handle(ch: Channel, session: AmqpSession, queue: string, via: Via, msg: ConsumeMessage): Promise<void> {
    this.inFlightValue++;
    const deliveryCount = deliveryCountOf(msg.properties.headers);
    try {
      if (!this.activeValue) {
        // Arrived between cancel() and the broker's cancel-ok: hand it straight back.
        this.settle(ch, session, () => ch.nack(msg, false, true));
        return;
      }
      const verdict = vet(msg.content, deliveryCount, { cluster: this.ctx.cluster, maxDeliveries: this.ctx.maxDeliveries });
      const disposition: Disposition =
        verdict.action === 'dead-letter'
          ? { type: 'dead-letter', reason: verdict.reason, detail: verdict.detail }
          : await runHandler(
              this.handler,
              { job: verdict.job, via, deliveryCount, redelivered: msg.fields.redelivered, signal: session.signal },
              this.ctx.logger,
            );
      await this.apply(ch, session, queue, msg, disposition, deliveryCount);
    } catch (err) {
      // Only the dead-letter publish can fail here; the message stays and comes back.
      this.ctx.logger.error({ err, queue }, 'could not settle a delivery; it will be redelivered');
      this.settle(ch, session, () => ch.nack(msg, false, true));
    } finally {
      this.inFlightValue--;
      if (this.inFlightValue === 0) {
        for (const wake of [...this.idleWaiters]) wake();
        this.idleWaiters.clear();
        this.closeIfIdle();
      }
    }
  }

  private async apply(ch: Channel, session: AmqpSession, queue: string, msg: ConsumeMessage, d: Disposition, deliveries: number): Promise<void> {
    switch (d.type) {
      case 'ack':
        return this.settle(ch, session, () => ch.ack(msg));
      case 'drop':
        this.ctx.logger.debug({ reason: d.reason, queue }, 'dropped a duplicate job');
        return this.settle(ch, session, () => ch.ack(msg));
      case 'dead-letter':
        if (!this.usable(ch, session)) return;
        await this.ctx.deadLetter(session, msg, queue, d.reason ?? 'rejected', d.detail, deliveries);
        return this.settle(ch, session, () => ch.ack(msg));
      case 'requeue':
        return this.settle(ch, session, () => ch.nack(msg, false, true));
      case 'retry-later':
        // Cut short by cancel (drain: let another member have it) or a lost connection.
        await pause(d.delayMs, this.cancelled.signal, session.signal);
        return this.settle(ch, session, () => ch.nack(msg, false, true));
    }
  }

  private usable(ch: Channel, session: AmqpSession): boolean {
    return !session.signal.aborted && this.channel === ch;
  }

  /** Runs an ack or nack if the channel it belongs to is still ours and open. */
  private settle(ch: Channel, session: AmqpSession, action: () => void): void {
    if (!this.usable(ch, session)) {
      this.ctx.logger.debug('delivery lost with its connection; the broker redelivers it');
      return;
    }
    try {
      action();
    } catch (err) {
      this.ctx.logger.debug({ err }, 'could not settle a delivery; the broker redelivers it');
    }
  }

  private closeIfIdle(): void {
    if (this.activeValue || this.inFlightValue > 0 || !this.channel) return;
    const ch = this.channel;
    this.channel = undefined;
    void ch.close().catch(() => undefined);
  }
}
