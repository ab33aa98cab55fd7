/**
 * The volume manager: what a worker does with a job delivery — load the op, claim it, and
 * only then acknowledge the message; the run goes on after the ack.
 */
import { isRetryable } from '../errors.js';
import type { OwnerRef } from '../identity.js';
import type { Clock } from '../lifecycle/clock.js';
import { type Backoff, DEFAULT_ETCD_RETRY, retry } from '../lifecycle/retry.js';
import type { Logger } from '../observability/logger.js';
import { type Disposition, dispositions, type JobDelivery } from '../routing/job-bus.js';
import type { OpRecord } from '../state/records.js';
import type { StateStore, StoredOp } from '../state/state-store.js';
import { tryLockAll } from '../locks/lock-service.js';
import type { Incarnation, Incarnations } from '../incarnation/incarnation.js';
import type { OpClaimer } from './op-claim.js';
import type { OperationRunner, OpOutcome, RunOptions } from './operation-runner.js';
import { decideJob, isManagedKind, lockNamesFor } from './plan.js';
import { Slots } from '../concurrency/slots.js';
import { anySignal } from '../concurrency/signals.js';

/** How soon a job whose dead owner is not fenced yet comes back. */
const FENCE_RETRY_MS = 10_000;
/** How long a job waits, holding its delivery (and a prefetch slot), for the fence of its op's dead owner before it is retried later. */
const JOB_FENCE_WAIT_MS = 30_000;

/** What a {@link VolumeManager} needs. */
export interface VolumeManagerOptions {
  readonly store: Pick<StateStore, 'getOp' | 'opOfStored'>;
  readonly claimer: Pick<OpClaimer, 'claimOp'>;
  readonly runner: Pick<OperationRunner, 'run'>;
  readonly incarnations: Incarnations;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Operations run at once; deliveries beyond wait (unacknowledged) for a slot. */
  readonly maxConcurrentOps: number;
  /** Reads of an op tried in place before answering `retry-later`. Default 3. */
  readonly readAttempts?: number;
  /** Waits between those reads (`retry.*`); its cap is the `retry-later` delay. */
  readonly retry?: Backoff;
  /**
   * Asks for the fence of a dead owner and waits for it (bounded by `signal`); true once its end
   * is on record. Absent: a takeover that awaits a fence is retried later.
   */
  readonly awaitFence?: (owner: OwnerRef, cluster: string, signal: AbortSignal) => Promise<boolean>;
  /** False while the backend cannot take work: deliveries are requeued for another member. Absent: always true. */
  readonly canTake?: () => boolean;
}

/** What became of the runs still going when a drain began. */
export interface DrainSummary {
  /** Ended on their own within the grace period. */
  readonly finished: number;
  /** Aborted after the grace period and handed back (or fenced, if the lease went meanwhile). */
  readonly stopped: number;
}

/**
 * Handles job deliveries (claim-then-ack) and runs what it claimed, at most
 * `maxConcurrentOps` at a time. See `docs/worker.md`.
 *
 * For each job: wait for a free slot (holding the message), read the op, then (`decideJob`):
 * gone, replaced or finished → `drop`; owned by a live worker → `drop`; owned by a dead
 * incarnation → claim with the proof it is dead; queued → claim; only after a successful claim
 * `ack`, and the run starts. Poison (a kind it cannot run, another cluster's op, a kind that
 * disagrees with the op) → `dead-letter` with a reason. While draining or between incarnations
 * → `requeue`.
 *
 * Failure semantics: the state store unreachable → the read is retried in place
 * (`readAttempts` times, with the `retry` waits), then `retry-later`; meanwhile a lost session pauses
 * consumption altogether (the worker), so an etcd outage does not cycle jobs toward the
 * delivery limit. A claim whose outcome is unknown → `retry-later`; the redelivery finds the op
 * owned by this incarnation and resumes it (or drops it when another member won). Any other
 * error → thrown, which the bus logs and treats as `retry-later`: a job that keeps failing is
 * dead-lettered after `amqp.maxDeliveries` deliveries. The delivery's connection lost → the
 * disposition is ignored and the broker redelivers; a claim made meanwhile stays valid.
 */
export class VolumeManager {
  private readonly slots: Slots;
  /** Ops being claimed or run by this process, by opId. */
  private readonly busy = new Map<string, Promise<OpOutcome> | undefined>();
  private readonly taking = new AbortController();
  private readonly handBack = new AbortController();

  private readonly retry: Backoff;

  constructor(private readonly options: VolumeManagerOptions) {
    this.slots = new Slots(options.maxConcurrentOps);
    this.retry = options.retry ?? DEFAULT_ETCD_RETRY;
  }

  /** Operations claimed or running in this process. */
  get inFlight(): number {
    return this.busy.size;
  }

  /** The bus handler for `job` messages. */
  readonly handle = async (delivery: JobDelivery): Promise<Disposition> => {
    const inc = this.options.incarnations.current();
    if (this.taking.signal.aborted || !inc || this.options.canTake?.() === false) return dispositions.requeue();
    // A free slot needs no signal; only a wait for one does.
    let release = this.slots.tryAcquire();
    if (release === undefined) {
      const { signal, dispose } = anySignal([delivery.signal, this.taking.signal, inc.member.signal]);
      try {
        release = await this.slots.acquire(signal);
      } catch {
        return dispositions.requeue();
      } finally {
        dispose();
      }
    }
    let started = false;
    try {
      const disposition = await this.decide(delivery, inc, () => {
        started = true;
        return release;
      });
      return disposition;
    } catch (err) {
      if (!isRetryable(err)) throw err;
      this.options.logger.warn({ opId: delivery.job.opId, err }, 'the state store failed; retrying the job later');
      return dispositions.retryLater(this.retry.maxDelayMs);
    } finally {
      if (!started) release();
    }
  };

  private async decide(delivery: JobDelivery, inc: Incarnation, takeSlot: () => () => void): Promise<Disposition> {
    const { job } = delivery;
    // Made when something is logged: most deliveries log nothing at the default level.
    let child: Logger | undefined;
    const log = (): Logger =>
      (child ??= this.options.logger.child({ opId: job.opId, kind: job.kind, resource: `${job.type}:${job.id}`, deliveryCount: delivery.deliveryCount }));
    if (job.op !== undefined) {
      const fast = await this.claimAsCarried(job.op as StoredOp, delivery, inc, takeSlot, log);
      if (fast) return fast;
    }
    const op = await this.readOp(job.type, job.id, AbortSignal.any([delivery.signal, inc.member.signal]));
    if (op === 'unavailable') return dispositions.retryLater(this.retry.maxDelayMs);
    const self = { incarnation: inc.member.owner.incarnation, cluster: inc.member.cluster };
    const decision = decideJob(job, op, self, this.busy.has(job.opId));
    switch (decision.type) {
      case 'drop':
        log().debug({ reason: decision.reason }, 'job dropped');
        return dispositions.drop(decision.reason);
      case 'dead-letter':
        log().warn({ detail: decision.detail }, 'job dead-lettered: it can never run here');
        return dispositions.deadLetter(decision.detail, decision.reason);
      case 'resume':
        log().info('resuming an op this incarnation claimed earlier');
        this.start(op as OpRecord, takeSlot());
        return dispositions.ack();
      case 'claim':
        return this.claim(op as OpRecord, inc, decision.ownerDead, takeSlot, log);
    }
  }

  /**
   * The fast path of a queued op whose job carried it as stored: take its locks if they are free
   * (`tryLockAll`, no wait), then claim it under them, comparing against the carried op instead
   * of reading it first, and reading the resource in the same write — so the run needs no lock
   * request and no re-read. Undefined (nothing held, nothing claimed) sends the delivery down the
   * ordinary path, which reads the op: the carried op is not this store's or not a plain queued
   * op, the locks are busy, or the claim found the op changed (the ordinary path then decides on
   * what the op really is).
   */
  private async claimAsCarried(stored: StoredOp, delivery: JobDelivery, inc: Incarnation, takeSlot: () => () => void, log: () => Logger): Promise<Disposition | undefined> {
    const { job } = delivery;
    const op = this.options.store.opOfStored(stored);
    if (!op || op.id !== job.id || op.type !== job.type || !isManagedKind(op.kind)) return undefined;
    const self = { incarnation: inc.member.owner.incarnation, cluster: inc.member.cluster };
    const decision = decideJob(job, op, self, this.busy.has(job.opId));
    if (decision.type !== 'claim' || decision.ownerDead) return undefined;
    const volumeId = typeof op.params.volumeId === 'string' ? op.params.volumeId : undefined;
    if (op.kind === 'create_snapshot' && volumeId === undefined) return undefined;
    this.busy.set(op.opId, undefined);
    let claimed = false;
    try {
      const locks = await tryLockAll(inc.locks, lockNamesFor(op.kind, op.id, volumeId));
      if (!locks) return undefined;
      try {
        const result = await this.options.claimer.claimOp(op, inc.member, { assume: stored, locks: locks.fence, withRecord: true });
        if (result.ok) {
          claimed = true;
          this.start(result.op, takeSlot(), { locks, ...(result.record === undefined ? {} : { record: result.record }) });
          return dispositions.ack();
        }
        if (result.reason === 'fenced') {
          log().warn({ err: result.error }, 'this incarnation is no longer alive; handing the job back');
          return dispositions.requeue();
        }
        return undefined;
      } finally {
        if (!claimed) await locks.release();
      }
    } finally {
      if (!claimed) this.busy.delete(op.opId);
    }
  }

  private async claim(op: OpRecord, inc: Incarnation, ownerDead: boolean, takeSlot: () => () => void, log: () => Logger): Promise<Disposition> {
    // Marked busy before the claim is sent: a duplicate delivered meanwhile must not resume it.
    this.busy.set(op.opId, undefined);
    let claimed = false;
    try {
      let result = await this.options.claimer.claimOp(op, inc.member, { ownerDead });
      if (!result.ok && result.reason === 'awaiting-fence' && op.owner && (await this.options.awaitFence?.(op.owner, op.cluster, AbortSignal.any([inc.member.signal, AbortSignal.timeout(JOB_FENCE_WAIT_MS)])))) {
        result = await this.options.claimer.claimOp(op, inc.member, { ownerDead });
      }
      if (result.ok) {
        claimed = true;
        if (ownerDead) log().warn({ previousOwner: op.owner?.incarnation }, 'took over the op of a dead incarnation');
        this.start(result.op, takeSlot());
        return dispositions.ack();
      }
      if (result.reason === 'conflict') {
        log().debug({ failed: result.failed }, 'job dropped: the op changed before the claim (another member took it)');
        return dispositions.drop(`claim lost on ${result.failed.field}`);
      }
      if (result.reason === 'owner-alive') {
        log().debug({ owner: op.owner?.incarnation }, 'job dropped: the op is owned by a live worker');
        return dispositions.drop('owned by a live worker');
      }
      if (result.reason === 'awaiting-fence') {
        log().info({ owner: op.owner?.incarnation }, 'the dead owner of this op is not fenced yet; the job comes back later');
        return dispositions.retryLater(FENCE_RETRY_MS);
      }
      log().warn({ err: result.error }, 'this incarnation is no longer alive; handing the job back');
      return dispositions.requeue();
    } finally {
      if (!claimed) this.busy.delete(op.opId);
    }
  }

  /** Runs a claimed op in the background; the slot is released when it ends. */
  private start(op: OpRecord, release: () => void, held?: RunOptions['held']): void {
    const run = this.options.runner
      .run(op, { signal: this.handBack.signal, reason: 'job', ...(held ? { held } : {}) })
      .catch((err: unknown): OpOutcome => {
        this.options.logger.error({ err, opId: op.opId }, 'an operation run failed');
        return { result: 'error' };
      })
      .finally(() => {
        this.busy.delete(op.opId);
        release();
      });
    this.busy.set(op.opId, run);
  }

  /** Reads the op, retrying transient failures in place; `unavailable` when they persist. */
  private async readOp(type: OpRecord['type'], id: string, signal: AbortSignal): Promise<OpRecord | undefined | 'unavailable'> {
    try {
      return await retry(() => this.options.store.getOp({ type, id }), {
        backoff: this.retry,
        clock: this.options.clock,
        signal,
        maxAttempts: this.options.readAttempts ?? 3,
        shouldRetry: isRetryable,
        onRetry: (err, failures) => this.options.logger.debug({ err, failures }, 'reading the op failed; retrying'),
        what: 'reading the op',
      });
    } catch (err) {
      if (isRetryable(err) || signal.aborted) return 'unavailable';
      throw err;
    }
  }

  /** Stops taking jobs: deliveries waiting for a slot, and every later one, are requeued. */
  stopTaking(): void {
    this.taking.abort();
  }

  /**
   * Waits up to `graceMs` for the runs in progress to end, then aborts the rest, which hand
   * their ops back, and waits for those too. Call {@link stopTaking} first.
   */
  async drain(graceMs: number): Promise<DrainSummary> {
    const runs = (): Promise<unknown>[] => [...this.busy.values()].filter((p): p is Promise<OpOutcome> => p !== undefined);
    const before = runs().length;
    const timer = new AbortController();
    const grace = this.options.clock.sleep(graceMs, timer.signal).catch(() => undefined);
    await Promise.race([Promise.allSettled(runs()), grace]);
    timer.abort();
    const left = runs();
    if (left.length > 0) {
      this.options.logger.warn({ operations: left.length, graceMs }, 'operations still running after the grace period; handing them back');
      this.handBack.abort(new Error('drain: handing operations back'));
      await Promise.allSettled(left);
    }
    return { finished: before - left.length, stopped: left.length };
  }
}
