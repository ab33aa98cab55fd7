import { setMaxListeners } from 'node:events';
import type { Etcd3, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse, IDuplexStream } from 'etcd3';
import { fromEtcdError } from '../etcd/errors.js';
import { memberFailed } from '../etcd/failover.js';
import { AbortedError, ClosedError, CoordinatorError } from '../errors.js';
import { type Clock, systemClock } from '../lifecycle/clock.js';
import type { Logger } from '../observability/logger.js';
import { LeaseDeadline, type LeaseState, type LeaseTiming, leaseTiming } from './lease-deadline.js';
import type { SessionMetrics } from './metrics.js';
import type { Session, SessionState, SessionStateChange } from './session.js';

/** What an {@link EtcdSession} needs. */
export interface EtcdSessionOptions {
  readonly client: Etcd3;
  /** The host id, `<host>@<backend>`; the incarnation is `<host>:<leaseHex>`. */
  readonly host: string;
  /** Whole seconds (etcd lease TTLs are); see `leaseTiming`. */
  readonly leaseTtlMs: number;
  readonly leaseMarginMs: number;
  /** Deadline of the grant and revoke calls; also bounds how long a keepalive may go unanswered. */
  readonly callTimeoutMs: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly metrics?: SessionMetrics;
  /** Aborts `open()` (the grant); a lease granted meanwhile is revoked. */
  readonly signal?: AbortSignal;
}

type KeepaliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

/** How soon a keepalive is sent again on a fresh stream after its stream failed. */
const RESEND_AFTER_STREAM_FAILURE_MS = 200;

/** One keepalive stream and the send times of its unanswered keepalives, oldest first. */
interface Channel {
  readonly stream: KeepaliveStream;
  readonly pending: number[];
  /** Set when the session stopped using it; its late answers are ignored. */
  dropped: boolean;
}

/**
 * The etcd session: one lease per worker incarnation, kept alive by hearth's own loop (not the
 * etcd3 package's `Lease`, whose `lost` fires about 2×TTL late, after etcd already expired it).
 *
 * A keepalive is written every TTL/3 on one bidirectional stream; etcd answers in order, so
 * each answer is matched with its send time. `safeUntil` = send time of the last acknowledged
 * keepalive + TTL − margin (see `LeaseDeadline`). States: `held` → `jeopardy` (a keepalive
 * failed or went unanswered for `answerTimeoutMs`) → `lost` at `safeUntil`, or at once when
 * etcd answers TTL 0. `state`, `safeUntil()` and the lock fences read the clock on every call,
 * so a blocked event loop makes a lease look lost, never held.
 *
 * Failure semantics:
 * - partition / etcd down: keepalives go unanswered → `jeopardy`, then `lost` at `safeUntil`,
 *   at least `leaseMarginMs` before etcd can expire the lease; `signal` aborts then.
 * - lease expired or revoked behind our back (TTL 0 answer): `lost` at once.
 * - `lost` is final. The lease is left alone: runs of this incarnation may still be settling,
 *   and its keys (its alive entry, its locks) must not vanish before they have. Whoever knows
 *   they settled calls `close()`, which revokes it (the incarnation supervisor, after the runs
 *   of the lost incarnation ended); otherwise etcd expires it. A new incarnation needs a new
 *   session.
 * - etcd restart: leases survive (etcd persists them and extends them on leader change), so a
 *   short restart is at most a `jeopardy`.
 * - `close()` revokes the lease (keys vanish at once); if etcd cannot be reached within
 *   `callTimeoutMs` it resolves anyway and the lease expires a TTL after its last keepalive.
 * - killed process: nothing revokes; etcd expires the lease one TTL after the last keepalive.
 */
export class EtcdSession implements Session {
  readonly distributed = true;
  readonly leaseHex: string;
  readonly incarnation: string;
  private readonly controller = new AbortController();
  private readonly stopper = new AbortController();
  private readonly listeners = new Set<(change: SessionStateChange) => void>();
  private readonly clock: Clock;
  private current: SessionState = 'held';
  private channel: Channel | undefined;
  private opening: Promise<Channel> | undefined;
  private closing: Promise<void> | undefined;
  private resendPending = false;
  /** Grows while streams keep failing (an election, a quorum loss), back to the minimum on an answer. */
  private resendDelayMs = RESEND_AFTER_STREAM_FAILURE_MS;

  private constructor(
    private readonly options: EtcdSessionOptions,
    readonly timing: LeaseTiming,
    readonly leaseId: string,
    private readonly deadline: LeaseDeadline,
  ) {
    this.clock = options.clock ?? systemClock;
    this.leaseHex = BigInt(leaseId).toString(16);
    this.incarnation = `${options.host}:${this.leaseHex}`;
    // Every pending timer (the tick, the watchdog, an answer timeout per keepalive in flight, a
    // resend) listens on it until it fires; a handful at once is normal, not a leak.
    setMaxListeners(32, this.stopper.signal);
  }

  /**
   * Grants a lease and starts keeping it alive. Fails with a retryable
   * `BackendUnavailableError` when etcd does not answer within `callTimeoutMs`.
   */
  static async open(options: EtcdSessionOptions): Promise<EtcdSession> {
    const timing = leaseTiming(options);
    const clock = options.clock ?? systemClock;
    if (options.signal?.aborted) throw new AbortedError('session open', { cause: options.signal.reason });
    const sentAt = clock.now();
    let granted: { ID: string; TTL: string };
    try {
      granted = await options.client.leaseClient.leaseGrant(
        { TTL: timing.ttlMs / 1_000 },
        { deadline: Date.now() + options.callTimeoutMs },
      );
    } catch (err) {
      throw fromEtcdError(err, 'granting the session lease');
    }
    const session = new EtcdSession(options, timing, granted.ID, new LeaseDeadline(timing, sentAt, Number(granted.TTL)));
    if (options.signal?.aborted) {
      await session.close();
      throw new AbortedError('session open', { cause: options.signal.reason });
    }
    session.start();
    return session;
  }

  get state(): SessionState {
    this.refresh();
    return this.current;
  }

  get signal(): AbortSignal {
    this.refresh();
    return this.controller.signal;
  }

  safeUntil(): number {
    this.refresh();
    return this.current === 'held' || this.current === 'jeopardy' ? this.deadline.safeUntil : 0;
  }

  onStateChange(listener: (change: SessionStateChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.move('closed');
      await this.revoke();
    })();
    return this.closing;
  }

  private start(): void {
    this.options.metrics?.state('held');
    this.options.logger?.info({ incarnation: this.incarnation, leaseTtlMs: this.timing.ttlMs }, 'session lease granted');
    this.after(this.deadline.safeUntil - this.clock.now(), () => this.watchdog());
    this.after(this.timing.keepaliveIntervalMs, () => this.tick());
  }

  /** Sends one keepalive every interval while the session lives. */
  private tick(): void {
    if (!this.live()) return;
    void this.send();
    this.after(this.timing.keepaliveIntervalMs, () => this.tick());
  }

  /** Fires at `safeUntil` (and again whenever acknowledgements pushed it further). */
  private watchdog(): void {
    if (!this.live()) return;
    this.after(Math.max(1, this.deadline.safeUntil - this.clock.now()), () => this.watchdog());
  }

  private async send(): Promise<void> {
    let channel: Channel;
    try {
      channel = await this.open();
    } catch (err) {
      this.missed('could not open the keepalive stream', err);
      return;
    }
    if (!this.live()) return;
    const sentAt = this.clock.now();
    channel.pending.push(sentAt);
    channel.stream.write({ ID: this.leaseId });
    this.after(this.timing.answerTimeoutMs, () => {
      if (!channel.pending.includes(sentAt) || !this.live()) return;
      this.missed('a keepalive went unanswered');
      // Its member may be frozen or cut off while etcd is fine: one more interval of waiting on it
      // would outlast the safe window (the next keepalive's answer timeout ends past safeUntil),
      // so the keepalive goes again at once on a fresh stream, to another member.
      if (this.channel === channel) {
        memberFailed(this.options.client, channel.stream);
        this.drop(channel);
        this.resendSoon();
      }
    });
  }

  private open(): Promise<Channel> {
    if (this.channel) return Promise.resolve(this.channel);
    this.opening ??= this.options.client.leaseClient.leaseKeepAlive().then(
      (stream) => {
        this.opening = undefined;
        const channel: Channel = { stream, pending: [], dropped: false };
        stream.on('data', (res: ILeaseKeepAliveResponse) => this.answered(channel, res));
        stream.on('error', (err: Error) => this.broken(channel, err));
        stream.on('end', () => this.broken(channel, new Error('keepalive stream ended')));
        if (!this.live()) stream.end();
        else this.channel = channel;
        return channel;
      },
      (err: unknown) => {
        this.opening = undefined;
        throw err;
      },
    );
    return this.opening;
  }

  private answered(channel: Channel, res: ILeaseKeepAliveResponse): void {
    const sentAt = channel.pending.shift();
    if (sentAt === undefined || channel.dropped || this.closing) return;
    const now = this.clock.now();
    this.resendDelayMs = RESEND_AFTER_STREAM_FAILURE_MS;
    this.options.metrics?.keepaliveAnswered(now - sentAt);
    this.apply(this.deadline.acknowledged(sentAt, Number(res.TTL), now));
  }

  private broken(channel: Channel, err: Error): void {
    if (this.channel !== channel || channel.dropped) return;
    this.channel = undefined;
    // Its member died or lost its leader: the next stream goes to another member, and at once —
    // waiting for the next tick (TTL/3) could leave one more failure to eat the safe window.
    memberFailed(this.options.client, channel.stream);
    this.missed('the keepalive stream failed', err);
    this.resendSoon();
  }

  /** One keepalive on a fresh stream shortly (at most one pending), after a stream failed. */
  private resendSoon(): void {
    if (this.resendPending || !this.live()) return;
    this.resendPending = true;
    const delayMs = this.resendDelayMs;
    this.resendDelayMs = Math.min(delayMs * 2, this.timing.keepaliveIntervalMs);
    this.after(delayMs, () => {
      this.resendPending = false;
      if (this.live()) void this.send();
    });
  }

  private drop(channel: Channel): void {
    if (this.channel === channel) this.channel = undefined;
    channel.dropped = true;
    channel.stream.end();
  }

  private missed(why: string, err?: unknown): void {
    if (!this.live()) return;
    this.options.metrics?.keepaliveFailed();
    this.options.logger?.debug({ incarnation: this.incarnation, err, safeUntil: this.deadline.safeUntil }, why);
    this.apply(this.deadline.missed(this.clock.now()));
  }

  /** Re-reads the clock (a stalled loop must not make a lost lease look held). */
  private refresh(): void {
    if (this.current === 'held' || this.current === 'jeopardy') this.apply(this.deadline.evaluate(this.clock.now()));
  }

  private live(): boolean {
    this.refresh();
    return this.current === 'held' || this.current === 'jeopardy';
  }

  private apply(state: LeaseState): void {
    if (this.current === 'held' || this.current === 'jeopardy') this.move(state);
  }

  private move(next: SessionState): void {
    const previous = this.current;
    if (previous === next || previous === 'closed' || (previous === 'lost' && next !== 'closed')) return;
    this.current = next;
    const at = this.clock.now();
    if (next === 'lost' || next === 'closed') this.stop(next);
    this.options.metrics?.state(next);
    this.log(next, previous);
    for (const listener of this.listeners) {
      try {
        listener({ state: next, previous, at });
      } catch (err) {
        this.options.logger?.error({ err }, 'session state listener threw');
      }
    }
  }

  private stop(state: 'lost' | 'closed'): void {
    this.stopper.abort();
    if (this.channel) this.drop(this.channel);
    const reason =
      state === 'lost'
        ? new CoordinatorError('LOCK_LOST', `session ${this.incarnation} lost its lease (no keepalive acknowledged in time)`)
        : new ClosedError(`session ${this.incarnation}`);
    this.controller.abort(reason);
  }

  private async revoke(): Promise<void> {
    try {
      await this.options.client.leaseClient.leaseRevoke({ ID: this.leaseId }, { deadline: Date.now() + this.options.callTimeoutMs });
    } catch (err) {
      this.options.logger?.warn(
        { incarnation: this.incarnation, err: fromEtcdError(err, 'revoking the session lease') },
        'could not revoke the session lease; its keys vanish when etcd expires it',
      );
    }
  }

  private log(next: SessionState, previous: SessionState): void {
    const fields = { incarnation: this.incarnation, previous, safeUntil: this.deadline.safeUntil };
    if (next === 'jeopardy') this.options.logger?.warn(fields, 'session lease in jeopardy: a keepalive was missed');
    else if (next === 'lost') this.options.logger?.error(fields, 'session lease lost');
    else if (next === 'held') this.options.logger?.info(fields, 'session lease held again');
    else this.options.logger?.info(fields, 'session closed');
  }

  /** Runs `fn` after `ms` on the injected clock, unless the session stopped. */
  private after(ms: number, fn: () => void): void {
    this.clock.sleep(Math.max(0, ms), this.stopper.signal).then(fn, () => undefined);
  }
}
