import { AlreadyAliveError, ClosedError } from '../errors.js';
import type { ProcessIdentity } from '../identity.js';
import { EventQueue } from '../concurrency/event-queue.js';
import type { Clock } from '../lifecycle/clock.js';
import { type Backoff, DEFAULT_ETCD_RETRY, retry } from '../lifecycle/retry.js';
import type { LockService } from '../locks/lock-service.js';
import type { JoinRequest, Member, Membership } from '../membership/membership.js';
import type { MembershipMetrics } from '../membership/metrics.js';
import type { Logger } from '../observability/logger.js';
import { isLive, type Session } from '../session/session.js';
import type { EndReason, Incarnation, IncarnationEvent, Incarnations, StartReason } from './incarnation.js';

/** What an {@link IncarnationSupervisor} is built from. */
export interface IncarnationSupervisorOptions {
  /** Opens one session (one lease per incarnation): an etcd session, or the process's local one. */
  readonly openSession: (signal: AbortSignal) => Promise<Session>;
  /** The lock service on `session`; it dies with the session. */
  readonly lockServiceFor: (session: Session) => LockService;
  readonly membership: Membership;
  readonly join: Omit<JoinRequest, 'session'>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: MembershipMetrics;
  /** How often the alive entry's heartbeat time is refreshed. */
  readonly reportIntervalMs: number;
  /** How long a join waits for an earlier incarnation's alive entry to expire (lease TTL + margin). */
  readonly previousIncarnationWaitMs: number;
  /** Waits between failed session opens and rejoins (`retry.*`). */
  readonly retry?: Backoff;
  /**
   * Resolves once no run of `incarnation` is in flight in this process (the worker's runner
   * knows). Absent: the process runs nothing (an API-only process), so it is always settled.
   */
  readonly settled?: (incarnation: string, signal: AbortSignal) => Promise<void>;
  /** How long an incarnation that ended may take to settle before it is left to an outside fence. Default 30 s. */
  readonly settleTimeoutMs?: number;
  /** This process, recorded with every incarnation for its fence. */
  readonly process?: ProcessIdentity;
}

/**
 * Owns this process's incarnations end to end: opens a session, joins the cluster on it, puts a
 * lock service on it, keeps the heartbeat fresh — and when the session is lost (or the alive
 * entry was taken away) ends that incarnation and starts the next one on a new session, telling
 * subscribers both with one event type. `close()` releases the locks, leaves (peers see the
 * member go at once) and revokes the session, in that order.
 *
 * Failure semantics: a partition first puts the session in jeopardy (the member stays joined;
 * heartbeats fail and are counted), then `lost` before etcd can expire the lease: the
 * incarnation ends, and opening a session and rejoining are retried with `retry` until etcd
 * answers again. At start, a host whose previous run has not expired yet waits up to
 * `previousIncarnationWaitMs` for its alive entry to vanish, then fails with `ALREADY_ALIVE`.
 */
export class IncarnationSupervisor implements Incarnations {
  private live: Incarnation | undefined;
  private readonly listeners = new Set<(event: IncarnationEvent) => void>();
  private readonly stopper = new AbortController();
  /** Aborted by `retire()` or `close()`: an incarnation that ends is not followed by another. */
  private readonly retirer = new AbortController();
  private readonly halt = AbortSignal.any([this.stopper.signal, this.retirer.signal]);
  private readonly backoff: Backoff;
  private loop: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: IncarnationSupervisorOptions) {
    this.backoff = options.retry ?? DEFAULT_ETCD_RETRY;
  }

  current(): Incarnation | undefined {
    return this.live?.member.joined ? this.live : undefined;
  }

  /** True while an incarnation is live (for `/readyz`). */
  get joined(): boolean {
    return this.current() !== undefined;
  }

  subscribe(listener: (event: IncarnationEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Incarnation events as an async iterable, until `signal` aborts. */
  events(signal: AbortSignal): AsyncIterable<IncarnationEvent> {
    const queue = new EventQueue<IncarnationEvent>(signal);
    const off = this.subscribe((e) => queue.push(e));
    signal.addEventListener('abort', off, { once: true });
    return queue;
  }

  /**
   * Starts the first incarnation (waiting for a session as long as etcd does not answer), then
   * keeps one live in the background.
   *
   * @throws AbortedError when `signal` aborts first; AlreadyAliveError when an earlier run of
   *   this host stays alive past `previousIncarnationWaitMs`; the join's error otherwise.
   */
  async start(signal?: AbortSignal): Promise<Incarnation> {
    if (this.closing) throw new ClosedError('incarnation supervisor');
    const stop = signal ? AbortSignal.any([signal, this.halt]) : this.halt;
    const first = await this.begin(stop);
    this.live = first;
    this.emit({ type: 'started', incarnation: first, previous: undefined, reason: 'start' });
    this.loop = this.run();
    return first;
  }

  /**
   * Shutdown has begun: keep the current incarnation (heartbeats go on until `close()`), but if
   * it ends, do not start another — a stopping worker must not show peers a join and a leave.
   * Idempotent.
   */
  retire(): void {
    this.retirer.abort();
  }

  /**
   * Releases whatever the current incarnation's locks hold, leaves (peers see the member go at
   * once) and revokes the session (its keys vanish now, not a TTL later). When no run of it is
   * in flight any more (the worker drained first), the leave is clean: it records the
   * incarnation's end in the same write, so nobody needs to fence it. Idempotent.
   *
   * Failure semantics: if etcd cannot be reached the alive entry and lock keys stay until the
   * lease expires, within one TTL, and no end is recorded (peers will fence it); errors are
   * logged, not thrown, so shutdown goes on.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopper.abort();
      this.retirer.abort();
      await this.loop;
      const inc = this.live;
      this.live = undefined;
      if (!inc) return;
      const clean = await this.settledWithin(inc, 1_000);
      await inc.locks.close().catch((err: unknown) => this.options.logger.warn({ err }, 'releasing the locks failed; they go with the lease'));
      try {
        await inc.member.leave({ clean });
        this.options.logger.info({ owner: inc.member.owner }, 'left the cluster');
      } catch (err) {
        this.options.logger.warn({ err }, 'could not delete the alive key; it goes with the lease');
      }
      this.emit({ type: 'ended', owner: inc.member.owner, reason: 'left' });
      await inc.session.close().catch((err: unknown) => this.options.logger.warn({ err }, 'could not revoke the session lease; it expires within one TTL'));
    })();
    return this.closing;
  }

  /** Opens a session (retrying while etcd does not answer), joins on it, and puts locks on it. */
  private async begin(signal: AbortSignal): Promise<Incarnation> {
    return this.beginAfter(undefined, signal);
  }

  /**
   * Opens a session and — when `previous` is an incarnation of this process that ended and
   * whose runs settled — fences `previous` itself (its end recorded as `self`, by the new
   * incarnation), releases its locks and revokes its lease, so peers need not wait a TTL and
   * nobody fences a process that lives on. Then joins on the new session.
   */
  private async beginAfter(previous: Incarnation | undefined, signal: AbortSignal): Promise<Incarnation> {
    const session = await retry((_, s) => this.options.openSession(s ?? signal), {
      backoff: this.backoff,
      clock: this.options.clock,
      signal,
      what: 'opening a session',
      onRetry: (err, failures, delayMs) => {
        if (failures === 1 || failures % 10 === 0) this.options.logger.warn({ err, failures, retryInMs: delayMs }, 'could not open a session; retrying');
      },
    });
    try {
      if (previous) await this.selfFence(previous, session.incarnation);
      const member = await this.joinWaiting(session, signal);
      this.options.logger.info({ owner: member.owner, cluster: member.cluster }, 'joined the cluster');
      return { member, session, locks: this.options.lockServiceFor(session) };
    } catch (err) {
      // Nobody will use this session: revoke it at once rather than let it expire.
      await session.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Records `previous` fenced by this process (`by`: the incarnation recording it — the next one,
   * or `previous` itself when shutdown began), then lets its locks and lease go.
   */
  private async selfFence(previous: Incarnation, by: string): Promise<void> {
    const owner = previous.member.owner;
    const result = await this.options.membership.recordEnd({
      incarnation: owner.incarnation,
      host: owner.host,
      how: 'self',
      by,
      atMs: this.options.clock.now(),
      detail: 'a later incarnation of the same process saw every run of it settle',
    });
    if (result.ok) this.options.logger.info({ previous: owner.incarnation, by, how: result.end.how }, 'earlier incarnation of this process fenced by itself');
    await previous.locks.close().catch((err: unknown) => this.options.logger.warn({ err }, 'releasing the locks of the earlier incarnation failed; they go with its lease'));
    await previous.session.close().catch(() => undefined);
  }

  /** Joins on `session`; on ALREADY_ALIVE waits for the previous run of this host to expire. */
  private async joinWaiting(session: Session, signal: AbortSignal): Promise<Member> {
    const deadline = this.options.clock.now() + this.options.previousIncarnationWaitMs;
    for (;;) {
      try {
        return await this.options.membership.join({ ...this.options.join, session, ...(this.options.process ? { process: this.options.process } : {}) }, signal);
      } catch (err) {
        const left = deadline - this.options.clock.now();
        if (!(err instanceof AlreadyAliveError) || left <= 0) throw err;
        this.options.logger.warn({ holder: err.holder, waitMs: left }, 'an earlier incarnation of this host is still alive; waiting for it to expire');
        if (!(await this.waitGone(err.host, left, signal))) throw err;
      }
    }
  }

  /** Resolves true once `host` has no alive entry, false after `timeoutMs`. Watches; never polls. */
  private async waitGone(host: string, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    const timer = new AbortController();
    const both = AbortSignal.any([signal, timer.signal]);
    this.options.clock.sleep(timeoutMs, both).then(
      () => timer.abort(),
      () => undefined,
    );
    try {
      for await (const e of this.options.membership.watch(both)) {
        if (e.type === 'members-synced' && !e.members.some((m) => m.host === host)) return true;
        if (e.type === 'member-left' && e.member.host === host) return true;
      }
      return false;
    } finally {
      timer.abort();
    }
  }

  private async run(): Promise<void> {
    while (!this.stopper.signal.aborted && this.live) {
      const ended = this.live;
      await this.heartbeats(ended);
      if (this.stopper.signal.aborted) return;
      const reason: Exclude<EndReason, 'left'> = isLive(ended.session.state) ? 'evicted' : 'session-lost';
      this.options.logger.warn({ owner: ended.member.owner, reason, session: ended.session.state }, 'this incarnation ended; rejoining as a new one');
      this.live = undefined;
      this.emit({ type: 'ended', owner: ended.member.owner, reason });
      const settled = await this.settle(ended);
      if (this.halt.aborted) {
        // Shutdown began: no next incarnation, but an ended one whose runs settled is fenced and let go here.
        if (settled && !this.stopper.signal.aborted) {
          await this.selfFence(ended, ended.member.owner.incarnation).catch((err: unknown) =>
            this.options.logger.warn({ err, owner: ended.member.owner }, 'could not record the end of this incarnation; its lease expires and peers fence it'),
          );
        }
        return;
      }
      const next = await this.rejoin(settled ? ended : undefined);
      if (!next) return;
      this.live = next;
      this.emit({ type: 'started', incarnation: next, previous: ended.member.owner, reason });
    }
  }

  /**
   * Waits for the runs of an incarnation that ended to settle (they were told to stop when it
   * ended). Until they have, its locks and lease stay: peers must not take over work a run of
   * it may still be doing. True when they settled in time; false leaves it to a fence from outside.
   */
  private async settle(inc: Incarnation): Promise<boolean> {
    if (!this.options.settled) return true;
    // Not cut short by retirement: a draining worker's runs settle too, and then it can fence itself.
    const timeout = AbortSignal.any([this.stopper.signal, this.timer(this.options.settleTimeoutMs ?? 30_000)]);
    try {
      await this.options.settled(inc.member.owner.incarnation, timeout);
      return true;
    } catch {
      this.options.logger.error({ owner: inc.member.owner }, 'runs of the ended incarnation did not settle in time: leaving its locks and lease to expire, for a fence from outside');
      return false;
    }
  }

  /** True when no run of `inc` is in flight, or none is left within `ms`. */
  private async settledWithin(inc: Incarnation, ms: number): Promise<boolean> {
    if (!this.options.settled) return true;
    try {
      await this.options.settled(inc.member.owner.incarnation, AbortSignal.timeout(ms));
      return true;
    } catch {
      return false;
    }
  }

  /** A signal that aborts after `ms` on the clock. */
  private timer(ms: number): AbortSignal {
    const controller = new AbortController();
    this.options.clock.sleep(ms, this.stopper.signal).then(
      () => controller.abort(new Error(`${ms} ms passed`)),
      () => undefined,
    );
    return controller.signal;
  }

  /** Heartbeats every report interval until the member is no longer joined or we stop. */
  private async heartbeats(inc: Incarnation): Promise<void> {
    const { member, session } = inc;
    const signal = AbortSignal.any([member.signal, session.signal, this.stopper.signal]);
    while (!signal.aborted) {
      try {
        await this.options.clock.sleep(this.options.reportIntervalMs, signal);
      } catch {
        return;
      }
      // The session's state reads its own clock: a loss is seen here even if no event fired.
      if (!isLive(session.state)) return;
      try {
        const result = await member.heartbeat();
        this.options.metrics.renewal(result.ok, result.ok ? result.atMs : undefined);
        this.options.logger.trace({ result }, 'heartbeat');
      } catch (err) {
        this.options.metrics.renewal(false);
        this.options.logger.warn({ err }, 'heartbeat failed; liveness rides on the lease, retrying next interval');
      }
    }
  }

  /** Starts the next incarnation (fencing `previous` first, when given), retrying until it succeeds or shutdown begins. */
  private async rejoin(previous: Incarnation | undefined): Promise<Incarnation | undefined> {
    try {
      return await retry(() => this.beginAfter(previous, this.halt), {
        backoff: this.backoff,
        clock: this.options.clock,
        signal: this.halt,
        what: 'rejoining',
        onRetry: (err) => this.options.logger.warn({ err }, 'rejoin failed; retrying'),
      });
    } catch {
      return undefined; // halted: shutdown began
    }
  }

  private emit(event: IncarnationEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.options.logger.error({ err, event: event.type }, 'incarnation listener failed');
      }
    }
  }
}

export type { StartReason };
