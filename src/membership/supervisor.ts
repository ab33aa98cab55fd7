import { AlreadyAliveError, ClosedError, messageOf } from '../errors.js';
import type { OwnerRef } from '../identity.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Logger } from '../observability/logger.js';
import { isLive, type Session } from '../session/session.js';
import { EventQueue } from '../concurrency/event-queue.js';
import type { JoinRequest, Member, Membership } from './membership.js';
import type { MembershipMetrics } from './metrics.js';

/** Why an incarnation began or ended. */
export type IncarnationReason = 'start' | 'session-lost' | 'evicted' | 'left';

/**
 * What the app hears about its own incarnations. After `incarnation-started` with a
 * `previous`, the work that `previous` owned is an orphan of this host: run its startup
 * cleanup before taking new work.
 */
export type IncarnationEvent =
  | {
      readonly type: 'incarnation-started';
      readonly owner: OwnerRef;
      /** The incarnation of this process that ended just before (none at the first start). */
      readonly previous: OwnerRef | undefined;
      /** The new session; lock services must move to it. */
      readonly session: Session;
      readonly reason: Exclude<IncarnationReason, 'left'>;
    }
  | { readonly type: 'incarnation-ended'; readonly owner: OwnerRef; readonly reason: Exclude<IncarnationReason, 'start'> };

/**
 * Where the supervisor gets its sessions, one per incarnation: `next()` resolves with the live
 * session, or waits for the next one once the current is lost or closed. The session module's
 * `SessionSource` fits.
 */
export interface SessionProvider {
  next(signal?: AbortSignal): Promise<Session>;
}

/** What a {@link MemberSupervisor} needs. */
export interface SupervisorOptions {
  readonly membership: Membership;
  readonly join: Omit<JoinRequest, 'session'>;
  /** The worker's sessions; the supervisor never closes them except to end an evicted incarnation. */
  readonly sessions: SessionProvider;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: MembershipMetrics;
  readonly reportIntervalMs: number;
  /** How long a join waits for an earlier incarnation's alive entry to expire (lease TTL + margin). */
  readonly previousIncarnationWaitMs: number;
  /** Pause between attempts to rejoin after the session was lost. */
  readonly retryDelayMs: number;
}

interface Current {
  readonly member: Member;
  readonly session: Session;
}

/**
 * Keeps this worker a member: joins on the current session, refreshes the heartbeat every
 * `reportIntervalMs`, and when the session is lost (or the alive entry was taken away) ends
 * that incarnation and rejoins on the next session as a new incarnation, telling subscribers
 * both. `close()` leaves (deletes the alive entry, so peers see the member go at once); the
 * owner of the sessions then revokes the lease.
 *
 * Failure semantics: a partition first puts the session in jeopardy (the member stays joined;
 * heartbeats fail and are counted), then `lost` before etcd can expire the lease: the
 * incarnation ends, and rejoining is retried every `retryDelayMs` until etcd answers again.
 * At start, a host whose previous run has not expired yet waits up to
 * `previousIncarnationWaitMs` for its alive entry to vanish, then fails with `ALREADY_ALIVE`.
 */
export class MemberSupervisor {
  private current: Current | undefined;
  private readonly listeners = new Set<(event: IncarnationEvent) => void>();
  private readonly stop = new AbortController();
  /** Aborted by `retire()` or `close()`: an incarnation that ends is not followed by another. */
  private readonly retirer = new AbortController();
  private loop: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: SupervisorOptions) {}

  /** The live member, if joined. */
  get member(): Member | undefined {
    return this.current?.member.joined ? this.current.member : undefined;
  }

  /** The session of the current incarnation. */
  get session(): Session | undefined {
    return this.current?.session;
  }

  get joined(): boolean {
    return this.member !== undefined;
  }

  /** Calls `listener` on every incarnation event; returns a function that unsubscribes. */
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

  /** Joins for the first time, then keeps the membership up in the background. */
  async start(signal?: AbortSignal): Promise<Member> {
    if (this.closing) throw new ClosedError('membership supervisor');
    const stop = signal ? AbortSignal.any([signal, this.stop.signal]) : this.stop.signal;
    this.current = await this.joinNew(stop);
    this.emit({ type: 'incarnation-started', owner: this.current.member.owner, previous: undefined, session: this.current.session, reason: 'start' });
    this.loop = this.run();
    return this.current.member;
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

  /** Joins on the next live session; on ALREADY_ALIVE waits for the previous run to expire. */
  private async joinNew(signal: AbortSignal): Promise<Current> {
    const session = await this.options.sessions.next(signal);
    const member = await this.joinWaiting(session, signal);
    this.options.logger.info({ owner: member.owner, cluster: member.cluster }, 'joined the cluster');
    return { member, session };
  }

  private async joinWaiting(session: Session, signal: AbortSignal): Promise<Member> {
    const deadline = this.options.clock.now() + this.options.previousIncarnationWaitMs;
    for (;;) {
      try {
        return await this.options.membership.join({ ...this.options.join, session }, signal);
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
    this.options.clock.sleep(timeoutMs, both).then(() => timer.abort(), () => undefined);
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
    while (!this.stop.signal.aborted && this.current) {
      const { member, session } = this.current;
      await this.heartbeats(member, session);
      if (this.stop.signal.aborted) return;
      const reason = isLive(session.state) ? 'evicted' : 'session-lost';
      this.options.logger.warn({ owner: member.owner, reason, session: session.state }, 'this incarnation ended; rejoining as a new one');
      this.emit({ type: 'incarnation-ended', owner: member.owner, reason });
      await member.leave().catch(() => undefined);
      // An evicted incarnation is over even though its lease lives: end the lease too, so its
      // locks go with it and the next join is a new incarnation on a new session.
      if (reason === 'evicted') await session.close().catch(() => undefined);
      const next = await this.rejoin();
      if (!next) {
        this.current = undefined; // ended and left above: close() has nothing more to leave
        return;
      }
      this.current = next;
      this.emit({ type: 'incarnation-started', owner: next.member.owner, previous: member.owner, session: next.session, reason });
    }
  }

  /** Heartbeats every report interval until the member is no longer joined or we stop. */
  private async heartbeats(member: Member, session: Session): Promise<void> {
    const signal = AbortSignal.any([member.signal, session.signal, this.stop.signal]);
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
        this.options.logger.warn({ err: messageOf(err) }, 'heartbeat failed; liveness rides on the lease, retrying next interval');
      }
    }
  }

  private async rejoin(): Promise<Current | undefined> {
    const halt = AbortSignal.any([this.stop.signal, this.retirer.signal]);
    while (!halt.aborted) {
      try {
        return await this.joinNew(halt);
      } catch (err) {
        if (halt.aborted) return undefined;
        this.options.logger.warn({ err: messageOf(err) }, 'rejoin failed; retrying');
        await this.options.clock.sleep(this.options.retryDelayMs, halt).catch(() => undefined);
      }
    }
    return undefined;
  }

  /**
   * Shutdown has begun: keep the current incarnation (heartbeats go on until `close()`), but if
   * it ends, do not rejoin as a new one — a stopping worker must not show peers a join and a
   * leave. Idempotent.
   */
  retire(): void {
    this.retirer.abort();
  }

  /**
   * Leaves: deletes the alive entry, so peers see the member go at once. The session is left
   * to its owner, which revokes it next (shutdown order: membership left, then the lease
   * revoked). Idempotent.
   *
   * Failure semantics: if etcd cannot be reached the alive entry stays until the lease is
   * revoked or expires, within one TTL; the error is logged, not thrown, so shutdown goes on.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop.abort();
      await this.loop;
      const current = this.current;
      if (!current) return;
      try {
        await current.member.leave();
      } catch (err) {
        this.options.logger.warn({ err: messageOf(err) }, 'could not delete the alive key; it goes with the lease');
      }
      this.options.logger.info({ owner: current.member.owner }, 'left the cluster');
      this.emit({ type: 'incarnation-ended', owner: current.member.owner, reason: 'left' });
    })();
    return this.closing;
  }
}
