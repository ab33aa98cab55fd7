// The small concurrency primitives concerns share (src/concurrency/): each on its own, with no
// I/O and no timers but the ones it owns.
import { describe, expect, it } from 'vitest';
import { AbortedError } from '../../../src/errors.js';
import { EventQueue } from '../../../src/concurrency/event-queue.js';
import { KeyedFifoMutex } from '../../../src/concurrency/keyed-fifo-mutex.js';
import { anySignal } from '../../../src/concurrency/signals.js';
import { Slots } from '../../../src/concurrency/slots.js';

describe('Slots', () => {
  it('grants at most size holders, in arrival order, and a release is idempotent', async () => {
    const slots = new Slots(2);
    const a = await slots.acquire();
    const b = await slots.acquire();
    expect(slots.inUse).toBe(2);
    const order: string[] = [];
    const c = slots.acquire().then((release) => (order.push('c'), release));
    const d = slots.acquire().then((release) => (order.push('d'), release));
    a();
    a(); // a second call frees nothing more
    const releaseC = await c;
    expect(slots.inUse).toBe(2);
    b();
    const releaseD = await d;
    expect(order).toEqual(['c', 'd']);
    releaseC();
    releaseD();
    expect(slots.inUse).toBe(0);
  });

  it('a waiter whose signal aborts leaves the queue holding nothing; an aborted signal fails at once', async () => {
    const slots = new Slots(1);
    const held = await slots.acquire();
    const ctl = new AbortController();
    const waiting = slots.acquire(ctl.signal);
    ctl.abort();
    await expect(waiting).rejects.toBeInstanceOf(AbortedError);
    await expect(slots.acquire(ctl.signal)).rejects.toBeInstanceOf(AbortedError);
    held();
    expect(slots.inUse).toBe(0);
    const next = await slots.acquire();
    expect(slots.inUse).toBe(1);
    next();
  });

  it('refuses a size that is not a positive integer', () => {
    expect(() => new Slots(0)).toThrow(RangeError);
    expect(() => new Slots(1.5)).toThrow(RangeError);
  });
});

describe('EventQueue', () => {
  it('delivers pushed items in order to one consumer, then ends after end()', async () => {
    const queue = new EventQueue<number>();
    queue.push(1);
    queue.push(2);
    const seen: number[] = [];
    const consuming = (async () => {
      for await (const n of queue) seen.push(n);
    })();
    queue.push(3);
    queue.end();
    queue.push(4); // ignored after the end
    await consuming;
    expect(seen).toEqual([1, 2, 3]);
    expect(queue.closed).toBe(true);
  });

  it('ends when its signal aborts, and fail() rejects the iteration after the queued items', async () => {
    const ctl = new AbortController();
    const aborted = new EventQueue<number>(ctl.signal);
    const iterating = (async () => {
      const out: number[] = [];
      for await (const n of aborted) out.push(n);
      return out;
    })();
    ctl.abort();
    expect(await iterating).toEqual([]);
    const failing = new EventQueue<number>();
    failing.push(7);
    failing.fail(new Error('watch broke'));
    const out: number[] = [];
    await expect(
      (async () => {
        for await (const n of failing) out.push(n);
      })(),
    ).rejects.toThrow('watch broke');
    expect(out).toEqual([7]);
  });
});

describe('KeyedFifoMutex', () => {
  it('hands the name over directly to the oldest waiter (no barging) and keeps names apart', async () => {
    const mutex = new KeyedFifoMutex<{ id: number }>();
    const first = mutex.tryLock('n', () => ({ id: 0 }))!;
    expect(mutex.tryLock('other', () => ({ id: 9 }))).toEqual({ id: 9 });
    const options = { timeoutMs: Infinity, onTimeout: () => new Error('t'), onAbort: () => new Error('a') };
    const w1 = mutex.lock('n', () => ({ id: 1 }), options);
    const w2 = mutex.lock('n', () => ({ id: 2 }), options);
    expect(mutex.queued('n')).toBe(2);
    mutex.unlock('n', first);
    // A newcomer cannot jump the queue: the name already belongs to waiter 1.
    expect(mutex.tryLock('n', () => ({ id: 3 }))).toBeUndefined();
    const h1 = await w1;
    expect(h1.id).toBe(1);
    expect(mutex.unlock('n', first)).toBe(false); // not the holder any more
    mutex.unlock('n', h1);
    expect((await w2).id).toBe(2);
  });

  it('times out and rejects all waiters with the given errors', async () => {
    const mutex = new KeyedFifoMutex<object>();
    mutex.tryLock('n', () => ({}));
    const timedOut = mutex.lock('n', () => ({}), { timeoutMs: 10, onTimeout: () => new Error('timeout'), onAbort: () => new Error('abort') });
    await expect(timedOut).rejects.toThrow('timeout');
    expect(mutex.queued('n')).toBe(0);
    const waiting = mutex.lock('n', () => ({}), { timeoutMs: Infinity, onTimeout: () => new Error('t'), onAbort: () => new Error('a') });
    mutex.rejectAll(new Error('closed'));
    await expect(waiting).rejects.toThrow('closed');
  });
});

describe('anySignal', () => {
  it('aborts with the first reason and unhooks from long-lived sources on dispose', () => {
    const long = new AbortController();
    const short = new AbortController();
    const { signal, dispose } = anySignal([long.signal, short.signal]);
    short.abort('short');
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe('short');
    const second = anySignal([long.signal]);
    second.dispose();
    long.abort('late');
    expect(second.signal.aborted).toBe(false);
    dispose();
  });
});

