import { ClosedError, AbortedError } from '../errors.js';
import type { Fence } from '../fence.js';
import { LockLostError, LockTimeoutError, type LockHolder } from './errors.js';
import { KeyedFifoMutex } from '../concurrency/keyed-fifo-mutex.js';
import {
  type AcquireOptions,
  type LockContext,
  type LockHandle,
  type LockService,
  type LockState,
  type LockStateChange,
  runWithLocks,
  type TryAcquireResult,
  validateLockName,
} from './lock-service.js';
import { type HeldLock, lockTypeOf, type LockMetrics } from './metrics.js';

/** Options of {@link LocalLockService}. */
export interface LocalLockServiceOptions {
  /** Shared lock instruments; none when absent (tests, benchmarks). */
  readonly metrics?: LockMetrics;
  /** Timeout of an acquire that names none; default 60 s. */
  readonly defaultTimeoutMs?: number;
  /** This process's incarnation, reported as the holder of contended locks. */
  readonly incarnation?: string;
}

const RESOLVED = Promise.resolve();

/**
 * The single-node lock service: an in-process fair (FIFO) mutex per name with the same
 * contract as the etcd lock service, `distributed: false`. Two daemons never share one data
 * directory (see `DataDirLock`), so in-process exclusion is exclusion for the whole store.
 *
 * Fencing tokens are a per-process counter; the fence has no etcd guards and holds while the
 * handle is held (checked by the SQLite adapter in the same tick as the write).
 *
 * Failure semantics: no network, so no jeopardy. A handle is lost only when the service is
 * closed while it is held; the process dying releases everything with it.
 */
export class LocalLockService implements LockService {
  readonly distributed = false;
  private readonly mutex = new KeyedFifoMutex<LocalLockHandle>();
  private readonly defaultTimeoutMs: number;
  private revision = 0;
  private closed = false;

  constructor(private readonly options: LocalLockServiceOptions = {}) {
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 60_000;
  }

  acquire(name: string, options: AcquireOptions = {}): Promise<LockHandle> {
    const refused = this.refuse(name);
    if (refused) return Promise.reject(refused);
    const started = Date.now();
    const type = lockTypeOf(name);
    if (this.mutex.isFree(name)) {
      const handle = this.grant(name, type, started);
      this.mutex.take(name, handle);
      this.options.metrics?.waited(type, 'acquired', 0);
      return Promise.resolve(handle);
    }
    const make = (): LocalLockHandle => this.grant(name, type, Date.now());
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    return this.mutex
      .lock(name, make, {
        timeoutMs,
        signal: options.signal,
        onTimeout: () => new LockTimeoutError(name, timeoutMs, this.holderOf(name)),
        onAbort: (reason) => new AbortedError(`acquire of lock ${name}`, { cause: reason }),
      })
      .then(
        (handle) => {
          this.options.metrics?.waited(type, 'acquired', Date.now() - started);
          return handle;
        },
        (err: unknown) => {
          const result = err instanceof LockTimeoutError ? 'timeout' : err instanceof AbortedError ? 'aborted' : 'error';
          this.options.metrics?.waited(type, result, Date.now() - started);
          throw err;
        },
      );
  }

  tryAcquire(name: string): Promise<TryAcquireResult> {
    const refused = this.refuse(name);
    if (refused) return Promise.reject(refused);
    const type = lockTypeOf(name);
    const handle = this.mutex.tryLock(name, () => this.grant(name, type, Date.now()));
    if (handle === undefined) return Promise.resolve({ ok: false, holder: this.holderOf(name) });
    this.options.metrics?.waited(type, 'acquired', 0);
    return Promise.resolve({ ok: true, handle });
  }

  withLock<T>(names: string | readonly string[], fn: (ctx: LockContext) => Promise<T>, options: AcquireOptions = {}): Promise<T> {
    return runWithLocks(this, names, fn, { ...options, defaultTimeoutMs: this.defaultTimeoutMs, now: Date.now });
  }

  /** Every lock held now, with its holder's acquisition time and revision (the lock table). */
  held(): { readonly name: string; readonly createRevision: string; readonly acquiredAt: number; readonly waiters: number }[] {
    return this.mutex.holders().map((h) => ({ name: h.name, createRevision: h.createRevision, acquiredAt: h.acquiredAt, waiters: this.mutex.queued(h.name) }));
  }

  /** This process's incarnation, if it was given one. */
  get incarnation(): string | undefined {
    return this.options.incarnation;
  }

  /** Holders plus waiters of `name` (diagnostics, tests). */
  queueLength(name: string): number {
    return this.mutex.holder(name) === undefined ? 0 : 1 + this.mutex.queued(name);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.mutex.rejectAll(new ClosedError('lock service'));
    for (const handle of this.mutex.holders()) handle.end('lost');
  }

  /** Why a call on `name` cannot be made now, if it cannot (closed service, bad name). */
  private refuse(name: string): Error | undefined {
    if (this.closed) return new ClosedError('lock service');
    try {
      validateLockName(name);
      return undefined;
    } catch (err) {
      return err as Error;
    }
  }

  private grant(name: string, type: string, now: number): LocalLockHandle {
    return new LocalLockHandle(this, name, String(++this.revision), now, this.options.metrics?.acquired(type, now));
  }

  private holderOf(name: string): LockHolder {
    const holder = this.mutex.holder(name);
    return {
      ...(holder ? { key: holder.key } : {}),
      ...(this.options.incarnation === undefined ? {} : { incarnation: this.options.incarnation }),
    };
  }

  /** @internal Called by a handle when it ends. */
  ended(handle: LocalLockHandle, lost: boolean): void {
    if (handle.held) this.options.metrics?.ended(handle.held, Date.now(), lost);
    this.mutex.unlock(handle.name, handle);
  }
}

/** A lock held in-process. Signal, fence and listeners are made lazily: most holders never ask. */
class LocalLockHandle implements LockHandle {
  readonly key: string;
  private current: LockState = 'held';
  private controller: AbortController | undefined;
  private listeners: Set<(change: LockStateChange) => void> | undefined;
  private fenceValue: Fence | undefined;

  constructor(
    private readonly service: LocalLockService,
    readonly name: string,
    readonly createRevision: string,
    readonly acquiredAt: number,
    /** Its entry in the lock metrics, if any. */
    readonly held: HeldLock | undefined,
  ) {
    this.key = `locks/${name}`;
  }

  get state(): LockState {
    return this.current;
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.current !== 'held') this.controller.abort(this.reason());
    }
    return this.controller.signal;
  }

  get fence(): Fence {
    this.fenceValue ??= {
      guards: [],
      holds: () => this.current === 'held',
      description: `lock ${this.name} #${this.createRevision} (local)`,
    };
    return this.fenceValue;
  }

  /** No key to delete in-process: the write cannot take the lock with it, `release()` does it. */
  get releasingFence(): Fence {
    return this.fence;
  }

  onStateChange(listener: (change: LockStateChange) => void): () => void {
    (this.listeners ??= new Set()).add(listener);
    return () => this.listeners?.delete(listener);
  }

  release(): Promise<void> {
    this.end('released');
    return RESOLVED;
  }

  releasedByWrite(): void {
    this.end('released');
  }

  /** Moves to a final state once, aborts the signal and tells the service. */
  end(state: 'released' | 'lost'): void {
    if (this.current !== 'held') return;
    const previous = this.current;
    this.current = state;
    // Errors capture a stack: make the abort reason only for a signal someone asked for.
    this.controller?.abort(this.reason());
    this.service.ended(this, state === 'lost');
    if (this.listeners) {
      const change = { state, previous, at: Date.now() };
      for (const listener of this.listeners) listener(change);
    }
  }

  private reason(): Error {
    return this.current === 'lost'
      ? new LockLostError(this.name, `lock ${this.name} lost: the lock service was closed`)
      : new AbortedError(`lock ${this.name}: released`);
  }
}
