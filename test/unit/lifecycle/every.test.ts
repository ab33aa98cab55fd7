import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/lifecycle/clock.js';
import { everyInterval } from '../../../src/lifecycle/every.js';

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('everyInterval', () => {
  it('runs a round after each interval, goes on after a failing one, and stops when aborted', async () => {
    const clock = new ManualClock(0);
    const stop = new AbortController();
    const rounds: number[] = [];
    const errors: unknown[] = [];
    const loop = everyInterval(
      clock,
      1_000,
      stop.signal,
      async () => {
        rounds.push(clock.now());
        if (rounds.length === 2) throw new Error('second round fails');
      },
      { onError: (err) => errors.push(err) },
    );
    await settle();
    expect(rounds).toEqual([]);
    for (let i = 0; i < 3; i++) {
      await clock.advance(1_000);
      await settle();
    }
    expect(rounds).toEqual([1_000, 2_000, 3_000]);
    expect(errors).toHaveLength(1);
    stop.abort();
    await loop;
    await clock.advance(5_000);
    expect(rounds).toHaveLength(3);
  });

  it('with immediately, runs the first round at once', async () => {
    const clock = new ManualClock(0);
    const stop = new AbortController();
    let count = 0;
    const loop = everyInterval(clock, 1_000, stop.signal, async () => void count++, { immediately: true });
    await settle();
    expect(count).toBe(1);
    stop.abort();
    await loop;
  });
});
