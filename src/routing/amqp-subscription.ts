/**
 * One consumer of the cluster queue and this member's host queue on RabbitMQ: vets each
 * message, runs the handler, and settles the message on the channel it came from.
 *
 * Each queue has its own channel (a "lane"). Right after a broker restart RabbitMQ 3.10 was
 * seen to block a `basic.consume` on a quorum queue that was still recovering, and with it the
 * whole channel — including deliveries it had already taken from another queue, which then
 * stayed unacknowledged and out of reach. One channel per queue keeps that from trapping
 * cluster work, and the host lane attaches in the background so it cannot hold up readiness.
 */
import type { Channel, ConsumeMessage } from 'amqplib';
import type { Logger } from '../observability/logger.js';
import type { AmqpSession } from '../amqp/connection.js';
import { IdleWaiters } from '../concurrency/idle-waiters.js';
import { deliveryCountOf } from '../amqp/publish.js';
import { sleep, systemClock } from '../lifecycle/clock.js';
import { withDeadline } from '../lifecycle/deadline.js';
import { Backoff } from '../lifecycle/retry.js';
import { runHandler, vet } from './dispatch.js';
import type { Disposition, JobHandler, JobSubscription } from './job-bus.js';
import type { DeadLetterReason } from './job-message.js';
import type { Topology } from './topology.js';

/** What a subscription needs from its bus. */
export interface SubscriptionContext {
  readonly topology: Topology;
  readonly cluster: string;
  readonly maxDeliveries: number;
  /** Bound on attaching one lane (`amqp.connectTimeoutMs`). */
  readonly attachTimeoutMs: number;
  /** Declares a work queue (this host's) on the connection, before its lane consumes. */
  declare(session: AmqpSession, queue: string): Promise<void>;
  readonly logger: Logger;
  /** Copies the message to the dead-letter exchange with a reason; resolves once confirmed. */
  deadLetter(session: AmqpSession, msg: ConsumeMessage, queue: string, reason: DeadLetterReason, detail: string, deliveries: number): Promise<void>;
  /** Called once the subscription is cancelled, so the bus stops re-attaching it. */
  forget(subscription: AmqpSubscription): void;
}

type Via = 'cluster' | 'host';

/** Waits between attempts to consume the host queue (it attaches in the background). */
const HOST_LANE_RETRY = new Backoff({ initialDelayMs: 2_000, maxDelayMs: 30_000, jitter: 'none' });

/** One queue consumed on its own channel of one connection. */
interface Lane {
  readonly queue: string;
  readonly via: Via;
  readonly channel: Channel;
  readonly session: AmqpSession;
  consumerTag?: string;
}

/**
 * See the module doc and {@link JobSubscription}.
 *
 * Failure semantics: lanes belong to one connection. When it is lost, the broker requeues what
 * this member held; handlers still running finish, but their dispositions are dropped (their
 * delivery signal aborted). `attach` is called again on the next connection.
 */
export class AmqpSubscription implements JobSubscription {
  private activeValue = true;
  private inFlightValue = 0;
  private lanes: Lane[] = [];
  private readonly cancelled = new AbortController();
  private readonly idleWaiters = new IdleWaiters();
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

  /** True once the cluster lane consumes on `session`. */
  attachedTo(session: AmqpSession): boolean {
    return this.lanes.some((l) => l.session === session && l.via === 'cluster' && l.consumerTag !== undefined);
  }

  /**
   * Declares this host's queue, starts consuming the cluster queue (awaited), and starts the
   * host lane in the background (retried while the connection lives).
   */
  async attach(session: AmqpSession): Promise<void> {
    if (!this.activeValue || session.signal.aborted) return;
    const { clusterQueue, hostQueue, exchange } = this.ctx.topology;
    // Lanes of earlier connections are dead; a late attach of a dead one must not touch ours.
    this.lanes = this.lanes.filter((l) => l.session === session);
    const cluster = await this.openLane(session, clusterQueue, 'cluster', async (ch) => {
      await this.ctx.declare(session, hostQueue);
      await ch.bindQueue(hostQueue, exchange, hostQueue);
    });
    if (!cluster) return;
    void this.attachHostLane(session);
  }

  async cancel(): Promise<void> {
    if (this.cancelling) return this.cancelling;
    this.activeValue = false;
    this.cancelled.abort();
    this.ctx.forget(this);
    this.cancelling = (async () => {
      // Closing the channels would return the deliveries in flight; cancel only stops new ones.
      // The channels close once the last delivery in flight is settled.
      await Promise.all(this.lanes.map((lane) => this.stopLane(lane)));
      this.closeIfIdle();
    })();
    return this.cancelling;
  }

  idle(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    return this.idleWaiters.wait(this.inFlightValue === 0, options.signal);
  }


  private async attachHostLane(session: AmqpSession): Promise<void> {
    const { hostQueue } = this.ctx.topology;
    for (let attempt = 1; this.activeValue && !session.signal.aborted; attempt++) {
      try {
        await this.openLane(session, hostQueue, 'host');
        return;
      } catch (err) {
        this.ctx.logger.warn({ queue: hostQueue, attempt, err }, 'cannot consume the host queue yet; retrying');
        await HOST_LANE_RETRY.wait(attempt, systemClock, AbortSignal.any([session.signal, this.cancelled.signal]));
      }
    }
  }

  /** Opens a channel, consumes `queue` on it, and records the lane. Undefined if cancelled meanwhile. */
  private async openLane(session: AmqpSession, queue: string, via: Via, before?: (ch: Channel) => Promise<void>): Promise<Lane | undefined> {
    const ch = await session.model.createChannel();
    const lane: Lane = { queue, via, channel: ch, session };
    ch.on('error', (err: Error) => this.ctx.logger.debug({ err, queue }, 'consumer channel error'));
    ch.on('close', () => {
      // Closed by us (cancel, a timed-out attach) or with its connection: nothing to do.
      // Otherwise a channel error killed it while the connection lives: start over.
      if (this.lanes.includes(lane) && this.activeValue) session.reset(`the consumer channel of ${queue} closed`);
    });
    if (session.signal.aborted) {
      // The connection went while attaching; the next one attaches again.
      void ch.close().catch(() => undefined);
      return undefined;
    }
    // Registered before consuming: with a backlog, deliveries arrive right behind consume-ok,
    // and their acks must find the lane (a skipped ack would jam the prefetch window).
    this.lanes.push(lane);
    try {
      await withDeadline(
        (async () => {
          if (before) await before(ch);
          // Quorum queues support only per-consumer prefetch: this is per lane.
          await ch.prefetch(this.prefetch);
          const { consumerTag } = await ch.consume(queue, (msg) => this.onMessage(lane, msg), { noAck: false });
          lane.consumerTag = consumerTag;
        })(),
        this.ctx.attachTimeoutMs,
        `consuming ${queue}`,
      );
    } catch (err) {
      this.lanes = this.lanes.filter((l) => l !== lane);
      void ch.close().catch(() => undefined);
      throw err;
    }
    if (!this.activeValue) {
      // Cancelled while attaching: undo.
      await this.stopLane(lane);
      this.closeIfIdle();
      return undefined;
    }
    return lane;
  }

  private async stopLane(lane: Lane): Promise<void> {
    if (!lane.consumerTag || lane.session.signal.aborted) return;
    // Bounded: on a silent (partitioned) connection the cancel would never be answered.
    await withDeadline(lane.channel.cancel(lane.consumerTag), this.ctx.attachTimeoutMs, `cancelling the consumer of ${lane.queue}`).catch(() => undefined);
  }

  private onMessage(lane: Lane, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // The broker cancelled the consumer (its queue was deleted): redeclare by reconnecting.
      if (this.activeValue) lane.session.reset(`the broker cancelled the consumer of ${lane.queue}`);
      return;
    }
    void this.handle(lane, msg);
  }

  private async handle(lane: Lane, msg: ConsumeMessage): Promise<void> {
    this.inFlightValue++;
    const deliveryCount = deliveryCountOf(msg.properties.headers);
    try {
      if (!this.activeValue) {
        // Arrived between cancel() and the broker's cancel-ok: hand it straight back.
        this.settle(lane, () => lane.channel.nack(msg, false, true));
        return;
      }
      const verdict = vet(msg.content, deliveryCount, { cluster: this.ctx.cluster, maxDeliveries: this.ctx.maxDeliveries });
      const disposition: Disposition =
        verdict.action === 'dead-letter'
          ? { type: 'dead-letter', reason: verdict.reason, detail: verdict.detail }
          : await runHandler(
              this.handler,
              { job: verdict.job, via: lane.via, deliveryCount, redelivered: msg.fields.redelivered, signal: lane.session.signal },
              this.ctx.logger,
            );
      await this.apply(lane, msg, disposition, deliveryCount);
    } catch (err) {
      // Only the dead-letter publish can fail here; the message stays and comes back.
      this.ctx.logger.error({ err, queue: lane.queue }, 'could not settle a delivery; it will be redelivered');
      this.settle(lane, () => lane.channel.nack(msg, false, true));
    } finally {
      this.inFlightValue--;
      if (this.inFlightValue === 0) {
        this.idleWaiters.wake();
        this.closeIfIdle();
      }
    }
  }

  private async apply(lane: Lane, msg: ConsumeMessage, d: Disposition, deliveries: number): Promise<void> {
    const ch = lane.channel;
    switch (d.type) {
      case 'ack':
        return this.settle(lane, () => ch.ack(msg));
      case 'drop':
        this.ctx.logger.debug({ reason: d.reason, queue: lane.queue }, 'dropped a duplicate job');
        return this.settle(lane, () => ch.ack(msg));
      case 'dead-letter':
        if (!this.usable(lane)) return;
        await this.ctx.deadLetter(lane.session, msg, lane.queue, d.reason ?? 'rejected', d.detail, deliveries);
        return this.settle(lane, () => ch.ack(msg));
      case 'requeue':
        return this.settle(lane, () => ch.nack(msg, false, true));
      case 'retry-later':
        // Cut short by cancel (drain: let another member have it) or a lost connection.
        await sleep(d.delayMs, AbortSignal.any([this.cancelled.signal, lane.session.signal])).catch(() => undefined);
        return this.settle(lane, () => ch.nack(msg, false, true));
    }
  }

  private usable(lane: Lane): boolean {
    return !lane.session.signal.aborted && this.lanes.includes(lane);
  }

  /** Runs an ack or nack if the lane it belongs to is still ours and open. */
  private settle(lane: Lane, action: () => void): void {
    if (!this.usable(lane)) {
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
    if (this.activeValue || this.inFlightValue > 0 || this.lanes.length === 0) return;
    const lanes = this.lanes;
    this.lanes = [];
    for (const lane of lanes) void lane.channel.close().catch(() => undefined);
  }
}
