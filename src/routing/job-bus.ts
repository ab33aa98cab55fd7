/**
 * The JobBus port: how an operation, once recorded, reaches some member of its cluster.
 *
 * Delivery is at least once; execution is exactly once per operation because a worker
 * *claims* the op record (one state-store transaction) before it acknowledges the job. How the
 * volume manager uses it:
 *
 * 1. Record, then publish. The API writes the op record (`ops/<type>/<id>`, owner none), then
 *    calls {@link JobBus.publish}. If publish fails (or the API dies in between), the record
 *    stays, and a sweeper re-publishes recorded-but-unclaimed ops. Publishing twice is harmless.
 * 2. Claim, then ack. The handler given to {@link JobBus.consume} claims the op; when the claim
 *    succeeds it returns `ack` (and runs the work after, or before, as it likes — the message
 *    is not needed once the claim is durable).
 * 3. Drop duplicates. A job whose op is gone, already finished, owned by a live worker, or
 *    whose `opId` no longer matches the record, is answered with `drop`.
 * 4. Hand back on drain. On SIGTERM the manager cancels its subscription and answers every job
 *    it has not claimed yet with `requeue`; the broker gives those to another member.
 * 5. Dead-letter poison. A job the manager can never run is answered with `dead-letter` and a
 *    detail. Malformed messages and jobs delivered more than `amqp.maxDeliveries` times never
 *    reach the handler: the bus dead-letters them itself, with a reason.
 *
 * Two adapters share one contract (`test/contract/job-bus.contract.ts`): `AmqpJobBus`
 * (RabbitMQ, cluster mode) and `LocalJobBus` (in-process, the single-node default).
 */
import type { HealthCheck } from '../ops/health.js';
import type { BusMessage, CleanupMessage, DeadLetterReason, JobMessage, Notice } from './job-message.js';

export type { BusMessage, CleanupMessage, DeadLetterReason, JobKind, JobMessage, Notice, ResourceType } from './job-message.js';

/**
 * Connection state of a bus. `connecting`: never connected yet; `up`: takes and sends work;
 * `down`: lost the broker, reconnecting (takes no work; publishes wait, bounded); `closed`:
 * after `close()`, final. The in-process bus is `up` until closed.
 */
export type BusState = 'connecting' | 'up' | 'down' | 'closed';

/** A change of {@link BusState}. */
export interface BusStateChange {
  readonly state: BusState;
  readonly previous: BusState;
  /** Epoch ms. */
  readonly at: number;
  /** Why the bus went down or failed to connect (credentials never included). */
  readonly error?: string;
}

/** Who a bus belongs to. */
export interface BusIdentity {
  /** Cluster id `<name>@<backend>`: whose queue this member consumes. */
  readonly cluster: string;
  /** Host id `<host>@<backend>`: the host queue this member consumes. */
  readonly host: string;
}

/**
 * What the publisher supplies; the bus fills in `publishedAt` when absent, and `v` — the
 * highest version every live process of the cluster reads (`MessageVersions`) — unless the
 * caller names one.
 */
export type JobInput = Omit<JobMessage, 'v' | 'publishedAt'> & { readonly v?: number; readonly publishedAt?: number };

/** A cleanup request as the sender supplies it; the bus fills in `v` and `publishedAt` as for a job. */
export type CleanupInput = Omit<CleanupMessage, 'v' | 'publishedAt'> & { readonly v?: number; readonly publishedAt?: number };

/** Anything {@link JobBus.publish} sends. */
export type MessageInput = JobInput | CleanupInput;

/** Options of {@link JobBus.publish}. */
export interface PublishOptions {
  readonly signal?: AbortSignal;
  /** Send to this host's queue (`<host>@<backend>`) instead of the cluster queue. */
  readonly host?: string;
}

/** A notice as the sender supplies it; the bus adds version, cluster, sender and time. */
export interface NoticeInput {
  readonly type: string;
  readonly data?: Record<string, unknown>;
}

/**
 * What the handler decided about one delivery:
 * - `ack`: done with the message (the op is claimed, or finished);
 * - `drop`: a duplicate or stale job; acknowledged without work (`reason` is logged);
 * - `dead-letter`: poison; moved to the dead-letter queue with `reason` and `detail`;
 * - `requeue`: hand it back now (drain); another member (or this one) gets it again;
 * - `retry-later`: hand it back after `delayMs` (capped at a minute), e.g. the state store was
 *   briefly unreachable. Every hand-back counts as a delivery toward `amqp.maxDeliveries`.
 */
export type Disposition =
  | { readonly type: 'ack' }
  | { readonly type: 'drop'; readonly reason?: string }
  | { readonly type: 'dead-letter'; readonly reason?: DeadLetterReason; readonly detail: string }
  | { readonly type: 'requeue' }
  | { readonly type: 'retry-later'; readonly delayMs: number };

/** Builders for {@link Disposition}s. */
export const dispositions = {
  ack: (): Disposition => ({ type: 'ack' }),
  drop: (reason?: string): Disposition => (reason === undefined ? { type: 'drop' } : { type: 'drop', reason }),
  deadLetter: (detail: string, reason: DeadLetterReason = 'rejected'): Disposition => ({ type: 'dead-letter', reason, detail }),
  requeue: (): Disposition => ({ type: 'requeue' }),
  retryLater: (delayMs: number): Disposition => ({ type: 'retry-later', delayMs }),
} as const;

/**
 * One delivery of a message to a handler. The bus delivers every {@link BusMessage}; a handler
 * for one kind (the worker's dispatcher narrows them) takes `JobDelivery<ThatMessage>`.
 */
export interface JobDelivery<M extends BusMessage = JobMessage> {
  readonly job: M;
  /** Which queue it came from: the cluster's (shared) or this host's. */
  readonly via: 'cluster' | 'host';
  /** How many times it has been delivered, this time included (1 on the first delivery). */
  readonly deliveryCount: number;
  /** True when the broker delivered it before (to this or another member). */
  readonly redelivered: boolean;
  /**
   * Aborts when this delivery can no longer be settled (the connection was lost or the bus
   * closed): the broker gives the job to someone again, so whatever the handler returns is
   * ignored. A claim already made stays valid; the redelivery then finds it and drops.
   */
  readonly signal: AbortSignal;
}

/**
 * Handles one job and says what to do with the message. It should not throw; if it does, the
 * error is logged and the job is retried later (counting toward `amqp.maxDeliveries`).
 * Up to `prefetch` handlers per queue run at once; a handler that never returns holds a slot.
 */
export type JobHandler = (delivery: JobDelivery<BusMessage>) => Promise<Disposition>;

/** The delivery as a job's, or undefined when it carries another kind of message. */
export function asJobDelivery(delivery: JobDelivery<BusMessage>): JobDelivery | undefined {
  return delivery.job.kind === 'cleanup' ? undefined : (delivery as JobDelivery);
}

/** The delivery as a cleanup request's, or undefined when it carries a job. */
export function asCleanupDelivery(delivery: JobDelivery<BusMessage>): JobDelivery<CleanupMessage> | undefined {
  return delivery.job.kind === 'cleanup' ? (delivery as JobDelivery<CleanupMessage>) : undefined;
}

/** Options of {@link JobBus.consume}. */
export interface ConsumeOptions {
  /** Aborting it cancels the subscription (like `cancel()`). */
  readonly signal?: AbortSignal;
  /** Unacknowledged jobs per queue; defaults to `amqp.prefetch`. */
  readonly prefetch?: number;
}

/** A running consumer of the cluster queue and this member's host queue. */
export interface JobSubscription {
  /** True until `cancel()` (or its signal). */
  readonly active: boolean;
  /** Deliveries handed to the handler and not settled yet. */
  readonly inFlight: number;
  /**
   * Stops new deliveries without closing the connection (drain). Deliveries in flight can still
   * be settled; each `requeue` hands one back. Idempotent.
   */
  cancel(): Promise<void>;
  /** Resolves when no delivery is in flight (use after `cancel()` to wait for the drain). */
  idle(options?: { readonly signal?: AbortSignal }): Promise<void>;
}

/** A subscription to cluster-wide notices. */
export interface NoticeSubscription {
  cancel(): Promise<void>;
}

/** A message in the dead-letter queue, as `listDeadLetters` shows it. */
export interface DeadLetter {
  /** hearth's reason, or the broker's own (`x-first-death-reason`) for messages it moved. */
  readonly reason: DeadLetterReason | `broker:${string}`;
  readonly detail: string;
  /** The queue it was taken from. */
  readonly queue: string;
  /** Host id of the member that dead-lettered it ('' when the broker did). */
  readonly by: string;
  /** Epoch ms. */
  readonly at: number;
  /** Deliveries it had when dead-lettered. */
  readonly deliveries: number;
  /** The original body as text (up to 1 KiB), however malformed. */
  readonly body: string;
}

/** See the module doc. */
export interface JobBus {
  /** True for RabbitMQ (shared by all members), false for the in-process bus. */
  readonly distributed: boolean;
  readonly identity: BusIdentity;
  readonly state: BusState;
  /** `state === 'up'`: feed this to `/readyz`. */
  readonly ready: boolean;
  /** Why the bus is not up ('' when it is), for readiness details; never holds a secret. */
  readonly notReadyReason: string;
  /** Calls `listener` on every state change; returns an unsubscribe function. */
  onStateChange(listener: (change: BusStateChange) => void): () => void;
  /**
   * Starts connecting in the background and returns at once; the bus is not ready until the
   * broker answers. Idempotent.
   */
  start(): Promise<void>;
  /**
   * Resolves when the bus is `up`.
   *
   * @throws BackendUnavailableError after `timeoutMs`; AbortedError on `signal`; ClosedError.
   */
  waitUntilReady(options?: { readonly signal?: AbortSignal; readonly timeoutMs?: number }): Promise<void>;
  /**
   * Publishes a job to its cluster's queue (or a host's queue) and resolves with the message as
   * sent, once the broker confirmed it (persisted in a quorum queue).
   *
   * Failure semantics: while the broker is away the call waits for a reconnection; if the
   * connection drops after sending, it sends again on the next connection (a duplicate is
   * harmless: the claim drops it). After `amqp.publishTimeoutMs` in all it fails with a
   * retryable BackendUnavailableError — the job may or may not have been enqueued, never
   * silently lost: the op record remains and the sweeper re-publishes it.
   *
   * @throws InvalidInputError for a job that fails the schema (nothing sent);
   *   NotFoundError when no queue exists for `options.host`; BackendUnavailableError;
   *   AbortedError on `signal`; ClosedError after `close()`.
   */
  publish(job: JobInput, options?: PublishOptions): Promise<JobMessage>;
  /** Publishes a cleanup request to its cluster's queue, exactly as a job (same failure semantics). */
  publish(request: CleanupInput, options?: PublishOptions): Promise<CleanupMessage>;
  /**
   * Sends a notice to every member of this cluster that is connected now (fanout). A
   * force-delete uses it to reach the live owner of an operation and ask it to abort its run.
   *
   * Failure semantics: best effort, like Cinder's fanout — a member that is down or
   * reconnecting misses it. The send itself is confirmed and bounded like `publish`.
   */
  publishNotice(notice: NoticeInput, options?: { readonly signal?: AbortSignal }): Promise<Notice>;
  /**
   * Consumes the cluster queue (competing with the other members) and this host's queue, with
   * manual acknowledgement and `prefetch` unacknowledged jobs per queue. Resolves once the
   * consumer is registered; when the bus is not up it resolves at once and the consumer starts
   * with the next connection.
   *
   * Failure semantics: when the connection drops, the deliveries in flight are returned by the
   * broker (their `signal` aborts) and go to other members; consumption resumes by itself after
   * reconnecting. Malformed, misrouted and over-delivered messages are dead-lettered without
   * calling the handler.
   */
  consume(handler: JobHandler, options?: ConsumeOptions): Promise<JobSubscription>;
  /** Receives this cluster's notices while subscribed (re-subscribed after reconnecting). */
  subscribeNotices(handler: (notice: Notice) => void | Promise<void>, options?: { readonly signal?: AbortSignal }): Promise<NoticeSubscription>;
  /**
   * Shows up to `limit` (default 100) messages of the dead-letter queue without removing them.
   *
   * @throws BackendUnavailableError when the broker cannot be reached within the publish timeout.
   */
  listDeadLetters(options?: { readonly limit?: number; readonly signal?: AbortSignal }): Promise<DeadLetter[]>;
  /**
   * Cancels every subscription and closes the connection; deliveries not settled go back to
   * the queue. Pending publishes fail with ClosedError. Idempotent.
   */
  close(): Promise<void>;
}

/** The `/readyz` check of a job bus: ready while it is up (a worker that cannot reach RabbitMQ takes no work). */
export function jobBusReadiness(bus: Pick<JobBus, 'ready' | 'notReadyReason'>): HealthCheck {
  return () => (bus.ready ? { ok: true } : { ok: false, detail: bus.notReadyReason });
}
