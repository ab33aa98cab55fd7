import { AbortedError } from '../errors.js';

/**
 * Callers waiting until a subscription has no delivery in flight: `wait()` resolves at the next
 * `wake()` (the owner calls it when the count drops to zero) or rejects when its signal aborts.
 * Shared by the AMQP and in-process subscriptions so both drain the same way.
 */
export class IdleWaiters {
  private readonly waiters = new Set<() => void>();

  /** Resolves at once when `idle`; else at the next `wake()`; rejects with `AbortedError` on abort. */
  wait(idle: boolean, signal: AbortSignal | undefined): Promise<void> {
    if (idle) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.waiters.delete(done);
        reject(new AbortedError('waiting for deliveries in flight', { cause: signal?.reason }));
      };
      const done = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      if (signal?.aborted) return onAbort();
      this.waiters.add(done);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The subscription went idle: every waiter resolves. */
  wake(): void {
    const waiting = [...this.waiters];
    this.waiters.clear();
    for (const done of waiting) done();
  }
}
