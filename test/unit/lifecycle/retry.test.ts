import { describe, expect, it } from 'vitest';
import { AbortedError, BackendUnavailableError } from '../../../src/errors.js';
import { ManualClock } from '../../../src/lifecycle/clock.js';
import { Backoff, retry } from '../../../src/lifecycle/retry.js';

const flush = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

describe('Backoff', () => {
  it('doubles from the first wait up to the cap, without jitter when asked', () => {
    const b = new Backoff({ initialDelayMs: 100, maxDelayMs: 1_000, jitter: 'none' });
    expect([1, 2, 3, 4, 5, 6].map((n) => b.delayMs(n))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    expect(b.delayMs(10_000)).toBe(1_000); // no overflow to Infinity or NaN
  });

  it('full jitter: a uniformly random wait between 0 and the capped delay', () => {
    const draws = [0, 0.5, 1];
    const b = new Backoff({ initialDelayMs: 100, maxDelayMs: 300, random: () => draws.shift() ?? 1 });
    expect([b.delayMs(1), b.delayMs(2), b.delayMs(5)]).toEqual([0, 100, 300]);
  });

  it('constant() waits the same every time', () => {
    const b = Backoff.constant(250);
    expect([1, 2, 9].map((n) => b.delayMs(n))).toEqual([250, 250, 250]);
  });

  it('refuses a cap below the first wait', () => {
    expect(() => new Backoff({ initialDelayMs: 500, maxDelayMs: 100 })).toThrow(RangeError);
  });

  it('wait() sleeps on the clock and says false when aborted', async () => {
    const clock = new ManualClock();
    const b = Backoff.constant(100);
    const done = b.wait(1, clock);
    await clock.advance(100);
    expect(await done).toBe(true);
    const ctl = new AbortController();
    const cut = b.wait(1, clock, ctl.signal);
    ctl.abort();
    expect(await cut).toBe(false);
  });
});

describe('retry', () => {
  it('runs the action until it succeeds, waiting the backoff on the clock between failures', async () => {
    const clock = new ManualClock();
    const attempts: number[] = [];
    const retried: [number, number][] = [];
    const result = retry(
      async (attempt) => {
        attempts.push(attempt);
        if (attempt < 3) throw new BackendUnavailableError('etcd', 'down');
        return 'ok';
      },
      { backoff: new Backoff({ initialDelayMs: 100, maxDelayMs: 1_000, jitter: 'none' }), clock, onRetry: (_err, failures, delayMs) => retried.push([failures, delayMs]) },
    );
    await flush();
    expect(attempts).toEqual([1]);
    await clock.advance(100);
    await flush();
    expect(attempts).toEqual([1, 2]);
    await clock.advance(199);
    await flush();
    expect(attempts).toEqual([1, 2]);
    await clock.advance(1);
    expect(await result).toBe('ok');
    expect(attempts).toEqual([1, 2, 3]);
    expect(retried).toEqual([
      [1, 100],
      [2, 200],
    ]);
  });

  it('gives up after maxAttempts, and at once when shouldRetry says no, with the last error', async () => {
    const clock = new ManualClock();
    let n = 0;
    const bounded = retry(
      async () => {
        n++;
        throw new BackendUnavailableError('etcd', `down ${n}`);
      },
      { backoff: Backoff.constant(0), clock, maxAttempts: 3 },
    );
    await expect(bounded).rejects.toThrow('down 3');
    const refused = retry(
      async () => {
        throw new Error('not retryable');
      },
      { backoff: Backoff.constant(0), clock, shouldRetry: () => false },
    );
    await expect(refused).rejects.toThrow('not retryable');
  });

  it('never retries a TypeError (a bug, not an outage)', async () => {
    let n = 0;
    await expect(
      retry(
        async () => {
          n++;
          throw new TypeError('x is not a function');
        },
        { backoff: Backoff.constant(0), clock: new ManualClock() },
      ),
    ).rejects.toBeInstanceOf(TypeError);
    expect(n).toBe(1);
  });

  it('rejects with AbortedError when the signal aborts during a wait, and hands the signal to the action', async () => {
    const clock = new ManualClock();
    const ctl = new AbortController();
    const seen: (AbortSignal | undefined)[] = [];
    const running = retry(
      async (_attempt, signal) => {
        seen.push(signal);
        throw new BackendUnavailableError('etcd', 'down');
      },
      { backoff: Backoff.constant(1_000), clock, signal: ctl.signal, what: 'opening a session' },
    );
    await flush();
    ctl.abort();
    const err = await running.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect((err as Error).message).toContain('opening a session');
    expect(seen).toEqual([ctl.signal]);
  });
});
