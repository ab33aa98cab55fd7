/**
 * The lock port: named, fair (FIFO), fenced mutual exclusion.
 *
 * Two adapters implement it with one contract (`test/contract/lock-service.contract.ts`):
 * `EtcdLockService` (cluster; the fair algorithm of etcd's Go `concurrency.Mutex` on the
 * worker's session lease) and `LocalLockService` (single node; an in-process FIFO mutex).
 *
 * Loss policy: a handle's `signal` aborts when the lock is *lost* (its session reached `lost`
 * or `closed`, at `safeUntil` — before etcd can expire the lease) or released. `jeopardy` (a
 * keepalive was missed; the lease may still be fine) does not abort: an AbortSignal cannot be
 * un-aborted, and aborting on every keepalive hiccup would kill volume operations for nothing.
 * Instead `state` reads `jeopardy` and `onStateChange` reports it, so work can refrain from
 * *starting* a new side effect while in jeopardy. The fence stays valid in jeopardy because
 * etcd itself checks the guard in every transaction.
 */
import { allOf, type Fence } from '../fence.js';
import { AbortedError, InvalidInputError } from '../errors.js';
import type { LockHolder } from './errors.js';

export { type LockHolder, LockLostError, LockTimeoutError, DataDirLockedError } from './errors.js';

/** `held` → `jeopardy` ⇄ `held` → `lost`; `released` after `release()`. `lost`/`released` are final. */
export type LockState = 'held' | 'jeopardy' | 'lost' | 'released';

/** A state change of a held lock. */
export interface LockStateChange {
  readonly state: LockState;
  readonly previous: LockState;
  /** Epoch ms. */
  readonly at: number;
}

/** One held lock. */
export interface LockHandle {
  /** The lock name, e.g. `3f2a…-delete_volume`. */
  readonly name: string;
  /** etcd: `<prefix>/locks/<name>/<leaseHex>`; single node: `locks/<name>`. */
  readonly key: string;
  /** Create revision of the lock key (etcd), a per-process counter on a single node; the fencing token. */
  readonly createRevision: string;
  /** A guard on the lock key's create revision (etcd) and `holds()` — false once lost or released. */
  readonly fence: Fence;
  /**
   * The same fence, asking the write that carries it to delete the lock key when it lands: the
   * write that ends the protected work releases the lock in its own round trip (etcd: its guard
   * says `releaseWithWrite`). Once that write has landed, call {@link releasedByWrite}; if it did
   * not land, {@link release} as usual.
   */
  readonly releasingFence: Fence;
  /** Aborts when the lock is lost (before etcd can expire the lease) or released. */
  readonly signal: AbortSignal;
  /** Current state; computed from the clock on every read, so a stalled event loop cannot hide a loss. */
  readonly state: LockState;
  /** Epoch ms when the lock was acquired. */
  readonly acquiredAt: number;
  /** Calls `listener` on every state change; returns a function that unsubscribes. */
  onStateChange(listener: (change: LockStateChange) => void): () => void;
  /** Gives the lock up. Idempotent; never throws for network trouble (see the adapter). */
  release(): Promise<void>;
  /**
   * The lock key went with a write that carried {@link releasingFence} and landed: the lock is
   * released without a request of its own. A later `release()` does nothing. Idempotent.
   */
  releasedByWrite(): void;
}

/** Options of an acquire. */
export interface AcquireOptions {
  /** How long to wait for the lock (all locks, for `withLock`); `Infinity` waits until `signal`. Default: the service's. */
  readonly timeoutMs?: number;
  /** Aborts the wait with an {@link AbortedError}. */
  readonly signal?: AbortSignal;
}

/** Contention is a value: either the lock, or who has it. */
export type TryAcquireResult =
  | { readonly ok: true; readonly handle: LockHandle }
  | { readonly ok: false; readonly holder: LockHolder | undefined };

/** What `withLock` hands its function. */
export interface LockContext {
  /** Aborts as soon as any of the locks is lost. */
  readonly signal: AbortSignal;
  /** The combined fence of all the locks; embed it in every write made under them. */
  readonly fence: Fence;
  /** The handles, in acquisition (sorted) order. */
  readonly handles: readonly LockHandle[];
  /** Every handle's {@link LockHandle.releasingFence}: for the write that ends the work. */
  readonly releasingFence: Fence;
  /** Call once the write that carried {@link releasingFence} landed: every lock is then released. */
  releasedByWrite(): void;
}

/** Locks taken together and held until {@link release}: what {@link tryLockAll} hands out. */
export interface HeldLocks extends LockContext {
  /** Releases every lock not released by a write, in reverse order. Idempotent. */
  release(): Promise<void>;
}

/** See the module doc. */
export interface LockService {
  /** True when the locks exclude other hosts (etcd); false for node-local locks. */
  readonly distributed: boolean;
  /** Waits for the lock, FIFO. Rejects with `LockTimeoutError`, `AbortedError`, `LockLostError`, `BackendUnavailableError`. */
  acquire(name: string, options?: AcquireOptions): Promise<LockHandle>;
  /** Takes the lock only if nobody holds or waits for it. */
  tryAcquire(name: string): Promise<TryAcquireResult>;
  /**
   * Takes every name (sorted, de-duplicated, one at a time, so two callers never deadlock),
   * runs `fn` and releases them all on every path, in reverse order.
   */
  withLock<T>(names: string | readonly string[], fn: (ctx: LockContext) => Promise<T>, options?: AcquireOptions): Promise<T>;
  /** Rejects waiters, releases held locks; further calls fail with `ClosedError`. Idempotent. */
  close(): Promise<void>;
}

/** Longest lock name accepted; etcd keys can be long, but names are labels of real resources. */
export const MAX_LOCK_NAME_LENGTH = 256;
const NAME_PATTERN = /^[A-Za-z0-9._:@-]+$/;

/**
 * Checks a lock name: letters, digits, `.`, `_`, `:`, `@`, `-`. No `/`: a name with a slash
 * would nest under another name's etcd prefix (`locks/a/` would also cover `locks/a/b/…`).
 */
export function validateLockName(name: string): void {
  if (name.length === 0 || name.length > MAX_LOCK_NAME_LENGTH || !NAME_PATTERN.test(name)) {
    throw new InvalidInputError(
      `invalid lock name ${JSON.stringify(name.slice(0, 80))}: use 1–${MAX_LOCK_NAME_LENGTH} letters, digits, ".", "_", ":", "@" or "-"`,
    );
  }
}

/** Sorted, de-duplicated names; every name validated. */
export function lockOrder(names: string | readonly string[]): string[] {
  const list = typeof names === 'string' ? [names] : [...names];
  for (const name of list) validateLockName(name);
  return [...new Set(list)].sort();
}

/**
 * `withLock` for any adapter: sorted acquisition under one deadline, `fn` gets the combined
 * signal and fence, every handle is released in reverse order whatever happens.
 */
export async function runWithLocks<T>(
  service: Pick<LockService, 'acquire'>,
  names: string | readonly string[],
  fn: (ctx: LockContext) => Promise<T>,
  options: AcquireOptions & { readonly defaultTimeoutMs: number; readonly now: () => number },
): Promise<T> {
  const ordered = lockOrder(names);
  const timeoutMs = options.timeoutMs ?? options.defaultTimeoutMs;
  const deadline = options.now() + timeoutMs;
  const handles: LockHandle[] = [];
  try {
    for (const name of ordered) {
      const remaining = Number.isFinite(timeoutMs) ? Math.max(0, deadline - options.now()) : Infinity;
      handles.push(await service.acquire(name, { timeoutMs: remaining, ...(options.signal ? { signal: options.signal } : {}) }));
    }
    return await fn(contextOf(handles));
  } finally {
    for (const handle of handles.reverse()) await handle.release();
  }
}

/** The {@link LockContext} of handles held together (`signal` is made when first asked for). */
export function contextOf(handles: readonly LockHandle[]): LockContext;
export function contextOf(handles: readonly LockHandle[], release: () => Promise<void>): HeldLocks;
export function contextOf(handles: readonly LockHandle[], release?: () => Promise<void>): LockContext | HeldLocks {
  const only = handles.length === 1 ? (handles[0] as LockHandle) : undefined;
  return {
    ...(release ? { release } : {}),
    get signal() {
      return only ? only.signal : AbortSignal.any(handles.map((h) => h.signal));
    },
    fence: only ? only.fence : allOf(...handles.map((h) => h.fence)),
    releasingFence: only ? only.releasingFence : allOf(...handles.map((h) => h.releasingFence)),
    releasedByWrite: () => {
      for (const h of handles) h.releasedByWrite();
    },
    handles,
  };
}

/**
 * Takes every name (sorted, de-duplicated) only if each is free right now — nobody holds or
 * waits for it — and never waits: the locks, or undefined (then nothing is held). What a worker
 * tries before it claims an op, so that the claim itself is made under the locks.
 *
 * Failure semantics: what `tryAcquire` throws; locks already taken are released first.
 */
export async function tryLockAll(service: Pick<LockService, 'tryAcquire'>, names: string | readonly string[]): Promise<HeldLocks | undefined> {
  const ordered = lockOrder(names);
  const handles: LockHandle[] = [];
  const releaseAll = async (): Promise<void> => {
    for (const handle of [...handles].reverse()) await handle.release();
  };
  try {
    for (const name of ordered) {
      const taken = await service.tryAcquire(name);
      if (!taken.ok) {
        await releaseAll();
        return undefined;
      }
      handles.push(taken.handle);
    }
  } catch (err) {
    await releaseAll();
    throw err;
  }
  let releasing: Promise<void> | undefined;
  return contextOf(handles, () => (releasing ??= releaseAll()));
}

/** Rejects at once when `signal` is already aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new AbortedError(what, { cause: signal.reason });
}
