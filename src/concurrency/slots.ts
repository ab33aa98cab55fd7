import { AbortedError } from '../errors.js';

/**
 * A counting semaphore with FIFO, abortable waits: at most `size` holders at once. The volume
 * manager takes a slot before claiming, so claimed ops never wait for room to run (the broker's
 * prefetch bounds only unacknowledged jobs, and jobs are acknowledged right after the claim).
 */
export class Slots {
  private used = 0;
  private readonly waiters: { grant: () => void }[] = [];

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`slots must be a positive integer, got ${size}`);
  }

  /** Slots held now. */
  get inUse(): number {
    return this.used;
  }

  /** A slot at once, if one is free and nobody waits for one; undefined otherwise. */
  tryAcquire(): (() => void) | undefined {
    if (this.used >= this.size || this.waiters.length > 0) return undefined;
    this.used++;
    return this.releaser();
  }

  /**
   * Resolves with a release function once a slot is free.
   *
   * @throws AbortedError when `signal` aborts first (no slot is held then).
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(new AbortedError('waiting for a slot', { cause: signal.reason }));
    if (this.used < this.size && this.waiters.length === 0) {
      this.used++;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          this.used++;
          resolve(this.releaser());
        },
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new AbortedError('waiting for a slot', { cause: signal?.reason }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used--;
      this.waiters.shift()?.grant();
    };
  }
}
