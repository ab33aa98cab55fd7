/** How one waiter waits in a {@link KeyedFifoMutex}. */
export interface MutexWaitOptions {
  /** `Infinity` waits until `signal`. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
  /** The error a waiter rejects with at its timeout. */
  readonly onTimeout: () => Error;
  /** The error a waiter rejects with when `signal` aborts. */
  readonly onAbort: (reason: unknown) => Error;
}

interface Waiter<T> {
  readonly make: () => T;
  readonly resolve: (owner: T) => void;
  readonly reject: (err: Error) => void;
  cleanup: () => void;
}

interface Entry<T> {
  holder: T;
  /** Made on the first waiter: most names are never contended. */
  waiters: Waiter<T>[] | undefined;
}

/**
 * An in-process fair mutex per name: the lock goes to waiters strictly in arrival order, handed
 * over directly on unlock (no barging). The owner object is made at the moment the lock is
 * granted, so its acquire time and token are the grant's. No I/O; every wait is bounded by its
 * timeout or its signal.
 */
export class KeyedFifoMutex<T> {
  private readonly entries = new Map<string, Entry<T>>();

  /** The current holder of `name`, if any. */
  holder(name: string): T | undefined {
    return this.entries.get(name)?.holder;
  }

  /** Number of waiters queued behind the holder of `name`. */
  queued(name: string): number {
    return this.entries.get(name)?.waiters?.length ?? 0;
  }

  /** True when nobody holds `name` (so nobody waits for it either). */
  isFree(name: string): boolean {
    return !this.entries.has(name);
  }

  /** Gives a free `name` to `owner` (check {@link isFree} first; the hot path makes no closure). */
  take(name: string, owner: T): void {
    if (this.entries.has(name)) throw new Error(`KeyedFifoMutex: ${name} is not free`);
    this.entries.set(name, { holder: owner, waiters: undefined });
  }

  /** Takes `name` if it is free (no holder, so no queue either); returns the owner or undefined. */
  tryLock(name: string, make: () => T): T | undefined {
    if (this.entries.has(name)) return undefined;
    const holder = make();
    this.take(name, holder);
    return holder;
  }

  /** Waits for `name` behind everyone who asked before. */
  lock(name: string, make: () => T, options: MutexWaitOptions): Promise<T> {
    const entry = this.entries.get(name);
    if (entry === undefined) return Promise.resolve(this.tryLock(name, make) as T);
    if (options.signal?.aborted) return Promise.reject(options.onAbort(options.signal.reason));
    if (options.timeoutMs <= 0) return Promise.reject(options.onTimeout());
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = { make, resolve, reject, cleanup: () => undefined };
      const leave = (err: Error): void => {
        const i = entry.waiters?.indexOf(waiter) ?? -1;
        if (i >= 0) entry.waiters?.splice(i, 1);
        waiter.cleanup();
        reject(err);
      };
      const timer = Number.isFinite(options.timeoutMs) ? setTimeout(() => leave(options.onTimeout()), options.timeoutMs) : undefined;
      const onAbort = (): void => leave(options.onAbort(options.signal?.reason));
      options.signal?.addEventListener('abort', onAbort, { once: true });
      waiter.cleanup = () => {
        if (timer !== undefined) clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
      };
      (entry.waiters ??= []).push(waiter);
    });
  }

  /** Gives `name` up if `owner` holds it, handing it to the next waiter. Returns false otherwise. */
  unlock(name: string, owner: T): boolean {
    const entry = this.entries.get(name);
    if (entry === undefined || entry.holder !== owner) return false;
    const next = entry.waiters?.shift();
    if (next === undefined) {
      this.entries.delete(name);
      return true;
    }
    next.cleanup();
    entry.holder = next.make();
    next.resolve(entry.holder);
    return true;
  }

  /** Rejects every waiter with `err` (holders keep their names until they unlock). */
  rejectAll(err: Error): void {
    for (const entry of this.entries.values()) {
      for (const waiter of entry.waiters?.splice(0) ?? []) {
        waiter.cleanup();
        waiter.reject(err);
      }
    }
  }

  /** Every current holder. */
  holders(): T[] {
    return [...this.entries.values()].map((e) => e.holder);
  }
}
