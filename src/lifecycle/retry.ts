/**
 * One retry and timing policy for hearth. Every loop that waits after a failure takes a
 * {@link Backoff} — a long-lived, immutable policy object built once from configuration by the
 * composition root — and waits on the injected {@link Clock}, so tests drive time by hand and a
 * hot path allocates nothing per call. {@link retry} runs one action until it succeeds, on
 * p-retry's attempt accounting (abort, `shouldRetry`, a bug's TypeError is never retried) with
 * the backoff's waits taken on the clock.
 */
import pRetry, { AbortError } from 'p-retry';
import { AbortedError } from '../errors.js';
import type { Clock } from './clock.js';

/** How a {@link Backoff} spreads its waits. */
export type Jitter = 'full' | 'none';

/** What a {@link Backoff} is built from. */
export interface BackoffOptions {
  /** Wait after the first failure (before jitter). */
  readonly initialDelayMs: number;
  /** Cap of any wait. */
  readonly maxDelayMs: number;
  /** Growth per further failure. Default 2 (exponential); 1 makes a constant wait. */
  readonly factor?: number;
  /**
   * `full` (default): a uniformly random wait in [0, delay] — "full jitter", so members that
   * failed together do not retry together. `none`: exactly the delay.
   */
  readonly jitter?: Jitter;
  /** For tests; `Math.random` by default. */
  readonly random?: () => number;
}

/**
 * A retry schedule: the wait before the next attempt after `failures` consecutive failures.
 * Capped exponential growth with optional full jitter. Immutable; share one per concern.
 */
export class Backoff {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  private readonly factor: number;
  private readonly jitter: Jitter;
  private readonly random: () => number;

  constructor(options: BackoffOptions) {
    if (!(options.initialDelayMs >= 0) || !(options.maxDelayMs >= options.initialDelayMs)) {
      throw new RangeError(`backoff needs 0 <= initialDelayMs <= maxDelayMs, got ${options.initialDelayMs} and ${options.maxDelayMs}`);
    }
    this.initialDelayMs = options.initialDelayMs;
    this.maxDelayMs = options.maxDelayMs;
    this.factor = options.factor ?? 2;
    this.jitter = options.jitter ?? 'full';
    this.random = options.random ?? Math.random;
  }

  /** The same wait every time (no growth, no jitter). */
  static constant(delayMs: number): Backoff {
    return new Backoff({ initialDelayMs: delayMs, maxDelayMs: delayMs, factor: 1, jitter: 'none' });
  }

  /** The wait after `failures` (≥ 1) consecutive failures, in ms. */
  delayMs(failures: number): number {
    const exponent = Math.max(0, Math.min(failures - 1, 52));
    const base = Math.min(this.maxDelayMs, this.initialDelayMs * this.factor ** exponent);
    return this.jitter === 'full' ? Math.round(base * this.random()) : base;
  }

  /**
   * Sleeps on `clock` for the wait after `failures` failures. Resolves false (never rejects)
   * when `signal` aborts first, so a loop can write `if (!(await backoff.wait(…))) return;`.
   */
  async wait(failures: number, clock: Clock, signal?: AbortSignal): Promise<boolean> {
    const delayMs = this.delayMs(failures);
    try {
      if (delayMs > 0) await clock.sleep(delayMs, signal);
      return !signal?.aborted;
    } catch {
      return false;
    }
  }
}

/** How {@link retry} runs an action. */
export interface RetryOptions {
  readonly backoff: Backoff;
  readonly clock: Clock;
  /** Stops retrying: the pending wait ends and `retry` rejects with an {@link AbortedError}. */
  readonly signal?: AbortSignal;
  /** Attempts in all, the first included. Default: unbounded. */
  readonly maxAttempts?: number;
  /** False: give up at once and reject with this error. Default: retry everything. */
  readonly shouldRetry?: (err: unknown, failures: number) => boolean;
  /** Called after each failure that will be retried, with the wait before the next attempt. */
  readonly onRetry?: (err: unknown, failures: number, delayMs: number) => void;
  /** What the action is, for the AbortedError. */
  readonly what?: string;
}

/**
 * Runs `action` until it resolves, waiting `backoff` between failures on `clock`.
 *
 * @throws the action's last error once `maxAttempts` ran out or `shouldRetry` said no, and an
 *   {@link AbortedError} when `signal` aborts (the attempt in flight is told through its own
 *   signal argument; its outcome is dropped).
 */
export async function retry<T>(action: (attempt: number, signal: AbortSignal | undefined) => Promise<T>, options: RetryOptions): Promise<T> {
  const { backoff, clock, signal } = options;
  const what = options.what ?? 'retrying';
  let lastError: unknown;
  // p-retry decides whether to go on; the wait is taken at the start of the next attempt, on
  // the clock, so it happens only when there is one.
  const attemptOnce = async (attempt: number): Promise<T> => {
    if (attempt > 1) {
      const delayMs = backoff.delayMs(attempt - 1);
      options.onRetry?.(lastError, attempt - 1, delayMs);
      try {
        if (delayMs > 0) await clock.sleep(delayMs, signal);
      } catch (err) {
        throw new AbortError(new AbortedError(what, { cause: signal?.reason ?? err }));
      }
    }
    return action(attempt, signal);
  };
  try {
    return await pRetry(attemptOnce, {
      retries: options.maxAttempts === undefined ? Number.POSITIVE_INFINITY : Math.max(0, options.maxAttempts - 1),
      minTimeout: 0,
      maxTimeout: 0,
      ...(signal ? { signal } : {}),
      onFailedAttempt: ({ error }) => {
        lastError = error;
      },
      shouldRetry: ({ error, attemptNumber }) => options.shouldRetry?.(error, attemptNumber) ?? true,
    });
  } catch (err) {
    if (signal?.aborted && !(err instanceof AbortedError)) throw new AbortedError(what, { cause: signal.reason });
    throw err;
  }
}

/**
 * The retry policy of calls to etcd when nothing configures one (tests, tools): the defaults
 * of `retry.initialDelayMs` and `retry.maxDelayMs`.
 */
export const DEFAULT_ETCD_RETRY = new Backoff({ initialDelayMs: 100, maxDelayMs: 1_000 });
