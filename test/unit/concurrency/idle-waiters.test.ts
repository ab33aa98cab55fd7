import { describe, expect, it } from 'vitest';
import { AbortedError } from '../../../src/errors.js';
import { IdleWaiters } from '../../../src/concurrency/idle-waiters.js';

describe('IdleWaiters', () => {
  it('resolves at once when idle, else at the next wake, every waiter once', async () => {
    const waiters = new IdleWaiters();
    await expect(waiters.wait(true, undefined)).resolves.toBeUndefined();
    const order: string[] = [];
    const a = waiters.wait(false, undefined).then(() => order.push('a'));
    const b = waiters.wait(false, undefined).then(() => order.push('b'));
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([]);
    waiters.wake();
    await Promise.all([a, b]);
    expect(order.sort()).toEqual(['a', 'b']);
    waiters.wake(); // nobody left: nothing happens
  });

  it('rejects with AbortedError when the signal aborts, before or while waiting, and forgets the waiter', async () => {
    const waiters = new IdleWaiters();
    await expect(waiters.wait(false, AbortSignal.abort(new Error('gone')))).rejects.toBeInstanceOf(AbortedError);
    const stop = new AbortController();
    const pending = waiters.wait(false, stop.signal);
    stop.abort(new Error('shutdown'));
    await expect(pending).rejects.toThrow(/waiting for deliveries in flight/);
    waiters.wake();
  });
});
