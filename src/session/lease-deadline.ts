import { InvalidInputError } from '../errors.js';

/** The timing of one session lease, derived from configuration by {@link leaseTiming}. */
export interface LeaseTiming {
  /** Lease TTL; etcd TTLs are whole seconds, so this is a multiple of 1000. */
  readonly ttlMs: number;
  /** `lost` is declared this long before etcd could expire the lease. */
  readonly marginMs: number;
  /** A keepalive is sent every TTL/3 (as etcd's Go client does). */
  readonly keepaliveIntervalMs: number;
  /** A keepalive unanswered for this long counts as missed (jeopardy): min(call timeout, interval/2). */
  readonly answerTimeoutMs: number;
}

/**
 * Derives and checks the lease timing.
 *
 * etcd lease TTLs are whole seconds: `leaseTtlMs` must be a multiple of 1000 (the config rules
 * reject anything else, rather than rounding in a direction someone will not expect). The
 * margin must leave room for at least one more keepalive after a missed one:
 * `marginMs ≤ TTL/3`, so `safeUntil − send ≥ 2·TTL/3 > interval + answerTimeout`.
 */
export function leaseTiming(options: { leaseTtlMs: number; leaseMarginMs: number; callTimeoutMs: number }): LeaseTiming {
  const { leaseTtlMs, leaseMarginMs, callTimeoutMs } = options;
  if (!Number.isInteger(leaseTtlMs) || leaseTtlMs < 1_000 || leaseTtlMs % 1_000 !== 0) {
    throw new InvalidInputError(`leaseTtlMs must be a whole number of seconds (etcd lease TTLs are), got ${leaseTtlMs}`);
  }
  if (!(leaseMarginMs > 0) || leaseMarginMs * 3 > leaseTtlMs) {
    throw new InvalidInputError(`leaseMarginMs must be positive and at most a third of leaseTtlMs, got ${leaseMarginMs}`);
  }
  const keepaliveIntervalMs = Math.floor(leaseTtlMs / 3);
  return {
    ttlMs: leaseTtlMs,
    marginMs: leaseMarginMs,
    keepaliveIntervalMs,
    answerTimeoutMs: Math.max(1, Math.min(callTimeoutMs, Math.floor(keepaliveIntervalMs / 2))),
  };
}

/** The states the lease itself can be in (a session adds `closed`). */
export type LeaseState = 'held' | 'jeopardy' | 'lost';

/**
 * The pure core of a session lease: when it is safe, in jeopardy, or lost. No I/O, no timers;
 * every method takes the current time.
 *
 * - `safeUntil` = send time of the last acknowledged keepalive + TTL − margin. etcd expires a
 *   lease no earlier than TTL after the last keepalive it *received*, which is after we sent
 *   it, so `lost` always comes at least `marginMs` before etcd can expire the lease.
 * - `jeopardy` when a keepalive failed or went unanswered, or when the next acknowledgement is
 *   overdue by the clock (a stalled event loop sent nothing): start no new side effect.
 * - `lost` at `safeUntil`, or at once when etcd answers TTL 0 (the lease is gone). Final: a
 *   late acknowledgement does not revive it.
 */
export class LeaseDeadline {
  private current: LeaseState = 'held';
  private safeUntilMs: number;
  private lastAckSentAt: number;

  constructor(
    private readonly timing: LeaseTiming,
    grantSentAt: number,
    grantedTtlSeconds: number,
  ) {
    this.lastAckSentAt = grantSentAt;
    this.safeUntilMs = grantSentAt + this.effectiveTtlMs(grantedTtlSeconds) - timing.marginMs;
  }

  get state(): LeaseState {
    return this.current;
  }

  /** Epoch ms before which etcd cannot have expired the lease (see the class doc). */
  get safeUntil(): number {
    return this.safeUntilMs;
  }

  /** When an acknowledgement newer than the last one is overdue. */
  get overdueAt(): number {
    return this.lastAckSentAt + this.timing.keepaliveIntervalMs + this.timing.answerTimeoutMs;
  }

  /** Re-reads the clock: `lost` at `safeUntil`, `jeopardy` once an acknowledgement is overdue. */
  evaluate(now: number): LeaseState {
    if (this.current === 'lost') return this.current;
    if (now >= this.safeUntilMs) this.current = 'lost';
    else if (now >= this.overdueAt) this.current = 'jeopardy';
    return this.current;
  }

  /** etcd acknowledged the keepalive sent at `sentAt`; `ttlSeconds` is what it answered. */
  acknowledged(sentAt: number, ttlSeconds: number, now: number): LeaseState {
    if (this.evaluate(now) === 'lost') return this.current;
    if (!(ttlSeconds > 0)) return this.expired();
    if (sentAt > this.lastAckSentAt) this.lastAckSentAt = sentAt;
    this.safeUntilMs = Math.max(this.safeUntilMs, sentAt + this.effectiveTtlMs(ttlSeconds) - this.timing.marginMs);
    this.current = 'held';
    return this.evaluate(now);
  }

  /** A keepalive failed or went unanswered. */
  missed(now: number): LeaseState {
    if (this.evaluate(now) === 'held') this.current = 'jeopardy';
    return this.current;
  }

  /** etcd says the lease is gone. */
  expired(): LeaseState {
    this.current = 'lost';
    return this.current;
  }

  /** Never trust a TTL longer than the one asked for; a shorter one (server clamp) wins. */
  private effectiveTtlMs(ttlSeconds: number): number {
    return Math.min(this.timing.ttlMs, ttlSeconds * 1_000);
  }
}
