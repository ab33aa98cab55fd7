import { AbortedError, ClosedError } from '../errors.js';
import { type Clock, systemClock } from '../lifecycle/clock.js';
import type { Logger } from '../observability/logger.js';
import { LocalSession } from './local-session.js';
import { isLive, type Session } from './session.js';

/**
 * Where a worker gets its current session. A session that reached `lost` is final, so a
 * worker lives through a series of sessions, one per incarnation; this hands them out.
 */
export interface SessionSource {
  /** The session in use now, if one is live. */
  current(): Session | undefined;
  /** Resolves with a live session, waiting for the next one if none is live. */
  next(signal?: AbortSignal): Promise<Session>;
  /** Calls `listener` with every new session (a new incarnation); returns an unsubscribe function. */
  onSession(listener: (session: Session) => void): () => void;
  /**
   * Shutdown has begun: make no new session. The current one stays until `close()`; one lost
   * meanwhile is not replaced, so a stopping worker never comes back as a new incarnation.
   * Idempotent.
   */
  retire(): void;
  /** Stops making sessions and closes (revokes) the current one. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link SessionSupervisor}. */
export interface SessionSupervisorOptions {
  /** Opens one session (e.g. `(signal) => EtcdSession.open({ ...deps, signal })`). */
  readonly open: (signal: AbortSignal) => Promise<Session>;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** First retry delay after a failed open; doubles up to `maxBackoffMs`, with full jitter. Default 200 ms. */
  readonly initialBackoffMs?: number;
  /** Default 10 s. */
  readonly maxBackoffMs?: number;
  /** For tests; `Math.random` by default. */
  readonly random?: () => number;
}

/**
 * Keeps one live session: opens it, and when it is lost opens the next one (a new
 * incarnation), retrying failed opens with jittered exponential back-off. Everything that
 * rode on the lost session (lock service, alive key) must be rebuilt on the new one:
 * subscribe with `onSession`.
 *
 * Failure semantics: while etcd is unreachable `current()` is undefined and `next()` waits
 * (bounded by its signal); opens are retried every ≤ `maxBackoffMs`. `close()` stops the loop
 * and revokes the current lease.
 */
export class SessionSupervisor implements SessionSource {
  private readonly stopper = new AbortController();
  /** Aborted by `close()` or `retire()`: no new session after that. */
  private readonly retirer = new AbortController();
  private readonly halt = AbortSignal.any([this.stopper.signal, this.retirer.signal]);
  private readonly listeners = new Set<(session: Session) => void>();
  private readonly waiters = new Set<{ resolve: (s: Session) => void; reject: (e: Error) => void }>();
  private readonly clock: Clock;
  private active: Session | undefined;
  private running: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: SessionSupervisorOptions) {
    this.clock = options.clock ?? systemClock;
  }

  /** Starts the loop (idempotent); the first session follows as soon as etcd answers. */
  start(): void {
    if (this.closing) throw new ClosedError('session supervisor');
    this.running ??= this.run();
  }

  current(): Session | undefined {
    return this.active && isLive(this.active.state) ? this.active : undefined;
  }

  next(signal?: AbortSignal): Promise<Session> {
    const live = this.current();
    if (live) return Promise.resolve(live);
    if (this.halt.aborted) return Promise.reject(new ClosedError('session supervisor'));
    if (signal?.aborted) return Promise.reject(new AbortedError('waiting for a session', { cause: signal.reason }));
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.waiters.delete(waiter);
        reject(new AbortedError('waiting for a session', { cause: signal?.reason }));
      };
      const waiter = {
        resolve: (s: Session) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(s);
        },
        reject: (e: Error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(waiter);
    });
  }

  onSession(listener: (session: Session) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  retire(): void {
    if (this.retirer.signal.aborted) return;
    this.retirer.abort();
    for (const waiter of this.waiters) waiter.reject(new ClosedError('session supervisor'));
    this.waiters.clear();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopper.abort();
      this.retire();
      await this.running;
      await this.active?.close();
    })();
    return this.closing;
  }

  private async run(): Promise<void> {
    const initial = this.options.initialBackoffMs ?? 200;
    const max = this.options.maxBackoffMs ?? 10_000;
    const random = this.options.random ?? Math.random;
    let backoff = initial;
    while (!this.halt.aborted) {
      let session: Session;
      try {
        session = await this.options.open(this.halt);
      } catch (err) {
        if (this.halt.aborted) return;
        const delay = Math.round(backoff * random());
        this.options.logger?.warn({ err, retryInMs: delay }, 'could not open a session; retrying');
        backoff = Math.min(max, backoff * 2);
        if (!(await this.pause(delay))) return;
        continue;
      }
      backoff = initial;
      if (this.halt.aborted) {
        // Opened while retiring: nobody will use it, so it is revoked at once.
        await session.close().catch(() => undefined);
        return;
      }
      this.publish(session);
      await this.ended(session);
      if (this.halt.aborted) return;
      this.active = undefined;
      this.options.logger?.warn({ incarnation: session.incarnation }, 'session ended; opening a new incarnation');
      if (!(await this.pause(Math.round(initial * random())))) return;
    }
  }

  private publish(session: Session): void {
    this.active = session;
    for (const listener of this.listeners) {
      try {
        listener(session);
      } catch (err) {
        this.options.logger?.error({ err }, 'session listener threw');
      }
    }
    for (const waiter of this.waiters) waiter.resolve(session);
    this.waiters.clear();
  }

  /** Resolves when `session` is lost or closed, or the supervisor stops. */
  private ended(session: Session): Promise<void> {
    return new Promise((resolve) => {
      if (session.signal.aborted || this.stopper.signal.aborted) return resolve();
      const done = (): void => {
        session.signal.removeEventListener('abort', done);
        this.stopper.signal.removeEventListener('abort', done);
        resolve();
      };
      session.signal.addEventListener('abort', done, { once: true });
      this.stopper.signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Sleeps on the clock; false when the supervisor stopped meanwhile. */
  private async pause(ms: number): Promise<boolean> {
    try {
      await this.clock.sleep(ms, this.halt);
      return true;
    } catch {
      return false;
    }
  }
}

/** A source with one session that never changes (single node: a `LocalSession`). */
export function staticSessionSource(session: Session = new LocalSession('localhost')): SessionSource {
  return {
    current: () => (isLive(session.state) ? session : undefined),
    next: () => (isLive(session.state) ? Promise.resolve(session) : Promise.reject(new ClosedError('session'))),
    onSession: (listener) => {
      listener(session);
      return () => undefined;
    },
    retire: () => undefined,
    close: () => session.close(),
  };
}
