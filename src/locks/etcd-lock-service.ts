import type { Etcd3, ITxnRequest, ITxnResponse, Watcher } from 'etcd3';
import { fromEtcdError } from '../etcd/errors.js';
import type { KeyLayout } from '../etcd/keys.js';
import { AbortedError, BackendUnavailableError, ClosedError } from '../errors.js';
import { sleep } from '../lifecycle/clock.js';
import { type Backoff, DEFAULT_ETCD_RETRY } from '../lifecycle/retry.js';
import { allOf, type Fence } from '../fence.js';
import type { Logger } from '../observability/logger.js';
import { isLive, type Session, type SessionStateChange } from '../session/session.js';
import { describeHolder, type LockHolder, LockLostError, LockTimeoutError } from './errors.js';
import { EtcdLockHandle } from './etcd-lock-handle.js';
import { type Enqueued, enqueueRequest, handOffMarkRequest, holderOf, holderOfQueued, LockKeys, parseEnqueue, parseHandOffMark, parseRecheck, recheckRequest, releaseRequest } from './etcd-lock-ops.js';
import { waitForDelete } from './etcd-lock-wait.js';
import { anySignal } from '../concurrency/signals.js';
import { untilAborted } from '../lifecycle/deadline.js';
import { KeyedFifoMutex } from '../concurrency/keyed-fifo-mutex.js';
import {
  type AcquireOptions,
  type LockContext,
  type LockHandle,
  type LockService,
  runWithLocks,
  type TryAcquireResult,
  validateLockName,
} from './lock-service.js';
import { lockTypeOf, type LockMetrics, type WaitResult } from './metrics.js';

/** What an {@link EtcdLockService} needs. */
export interface EtcdLockServiceOptions {
  /** From `createEtcdClient` (deadlines, no blind retries). */
  readonly client: Etcd3;
  readonly keys: KeyLayout;
  /** The incarnation's session; every lock key rides on its lease. Not closed by this service. */
  readonly session: Session;
  /** Deadline of each etcd call. */
  readonly callTimeoutMs: number;
  readonly metrics?: LockMetrics;
  readonly logger?: Logger;
  /** Waits between retries of a queue read or key delete etcd did not answer (`retry.*`). */
  readonly retry?: Backoff;
  /**
   * Called before a waiter takes over from an owner it saw hold the lock, with that owner:
   * resolves once the hand-off is safe — with nothing when the owner released it while alive,
   * or with the fence of its end record when it is dead (fenced, or it left cleanly): the waiter
   * then marks its key in a transaction that holds only while that record exists (the hand-off
   * mark). Absent: every hand-off is taken at once.
   */
  readonly handOff?: (previousOwner: LockHolder, signal: AbortSignal) => Promise<Fence | undefined>;
  /** Timeout of an acquire that names none; default 60 s. */
  readonly defaultTimeoutMs?: number;
}

/** The in-process slot of one name: at most one acquirer per name per session talks to etcd. */
interface Slot {
  readonly name: string;
}

/**
 * The cluster lock service: the fair algorithm of etcd's Go `concurrency.Mutex` on the npm
 * etcd3 primitives, on one session lease (no lease per lock).
 *
 * - acquire: one txn puts `<prefix>/locks/<name>/<leaseHex>` if absent and reads the owner
 *   (lowest create revision) and my predecessor (the key created last before mine). Owner →
 *   done (uncontended acquire + release = 2 round trips). Otherwise watch the predecessor, and
 *   only it, for its DELETE (`waitForDelete`; FIFO, one waiter woken per deletion, no
 *   polling); when that predecessor was the owner, its deletion makes the lock mine at once
 *   (the hand-off costs the holder's release and one watch event); otherwise read the queue
 *   once (linearizable): no key left below mine → mine (after checking that my own key still
 *   exists, etcd-io/etcd#11456); else watch the new predecessor. A watch that disconnects is never trusted to resume: the waiter re-reads.
 * - Within this process one acquirer per name at a time goes to etcd (an in-process FIFO in
 *   front): two callers on one session would otherwise share one key and both "hold" it
 *   (etcd-io/etcd#11360).
 * - release: one txn deletes my key if its create revision is still mine — or, with the
 *   handle's `releasingFence`, the write that ends the protected work deletes it in its own
 *   transaction (same compare), and `releasedByWrite()` frees the slot without a request.
 *
 * Failure semantics:
 * - etcd unreachable: an acquire fails with a retryable `BackendUnavailableError` once its
 *   enqueue call passes `min(callTimeoutMs, acquire deadline)`. A waiter already queued keeps
 *   its place while its session lives: it re-reads the queue when its watch disconnects, retrying
 *   with back-off while etcd does not answer, until its timeout (`LockTimeoutError`), its
 *   signal or the loss of its session.
 * - held locks follow the session: `jeopardy` with it, `lost` (signal aborted) at its
 *   `safeUntil`, before etcd can expire the lease. Acquires on a lost session fail with
 *   `LockLostError`; the worker needs a new incarnation (session + lock service).
 * - a key whose deletion failed (release or abandoned wait) is deleted again in the background
 *   while the session lives, and the in-process slot of that name stays taken meanwhile, so
 *   no stale queue entry outlives a session; once the session ends its lease takes the keys.
 * - etcd restart: the lease and keys survive; waiters re-read the queue after reconnecting.
 * - killed process: its keys go when etcd expires its lease (one TTL); waiters then proceed.
 * - `etcdctl lock <prefix>/locks/<name>` takes part in the same queue.
 */
export class EtcdLockService implements LockService {
  readonly distributed = true;
  private readonly local = new KeyedFifoMutex<Slot>();
  private readonly handles = new Set<EtcdLockHandle>();
  private readonly cleanups = new Set<Promise<void>>();
  private readonly closer = new AbortController();
  private readonly defaultTimeoutMs: number;
  private readonly unsubscribe: () => void;
  private readonly keeper: Watcher;
  private closing: Promise<void> | undefined;

  private readonly retry: Backoff;

  constructor(private readonly options: EtcdLockServiceOptions) {
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 60_000;
    this.retry = options.retry ?? DEFAULT_ETCD_RETRY;
    this.unsubscribe = options.session.onStateChange((change) => this.sessionChanged(change));
    // The etcd3 package tears its watch stream down whenever its last watcher goes and builds a
    // new one for the next: on a busy lock, once per wait. One idle watch on a key nobody
    // writes (`<prefix>/locks/`) keeps the stream up.
    this.keeper = options.client.watch().key(options.keys.locks()).only('delete').watcher();
    this.keeper.on('error', () => undefined);
  }

  async acquire(name: string, options: AcquireOptions = {}): Promise<LockHandle> {
    this.refuse(name);
    const started = Date.now();
    const type = lockTypeOf(name);
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    const deadline = started + timeoutMs;
    let slot: Slot;
    try {
      slot = await this.local.lock(name, () => ({ name }), {
        timeoutMs,
        signal: options.signal,
        onTimeout: () => new LockTimeoutError(name, timeoutMs, this.selfHolder(name)),
        onAbort: (reason) => new AbortedError(`acquire of lock ${name}`, { cause: reason }),
      });
    } catch (err) {
      this.observeWait(type, err, started);
      throw err;
    }
    const keys = new LockKeys(this.options.keys, name, this.options.session.leaseHex);
    let myRev: string | undefined;
    try {
      this.refuse(name);
      const enqueued = parseEnqueue(keys, await this.txn(enqueueRequest(keys, this.options.session.leaseId, this.options.session.incarnation), deadline, 'acquiring lock'));
      myRev = enqueued.myRev;
      if (!enqueued.owner) await this.waitTurn(keys, enqueued, { deadline, timeoutMs, signal: options.signal });
      this.refuse(name); // closed or lost meanwhile: give the place up rather than hand out a dead lock
      const handle = this.grant(keys, myRev, slot, type);
      this.options.metrics?.waited(type, 'acquired', Date.now() - started);
      return handle;
    } catch (err) {
      this.abandon(keys, slot, myRev);
      this.observeWait(type, err, started);
      throw err;
    }
  }

  async tryAcquire(name: string): Promise<TryAcquireResult> {
    this.refuse(name);
    const slot = this.local.tryLock(name, () => ({ name }));
    if (slot === undefined) return { ok: false, holder: this.selfHolder(name) };
    const keys = new LockKeys(this.options.keys, name, this.options.session.leaseHex);
    let myRev: string | undefined;
    try {
      const enqueued = parseEnqueue(keys, await this.txn(enqueueRequest(keys, this.options.session.leaseId, this.options.session.incarnation), Infinity, 'acquiring lock'));
      myRev = enqueued.myRev;
      if (enqueued.owner) {
        const handle = this.grant(keys, myRev, slot, lockTypeOf(name));
        this.options.metrics?.waited(handle.type, 'acquired', 0);
        return { ok: true, handle };
      }
      await this.deleteKey(keys, myRev, slot);
      return { ok: false, holder: enqueued.holder };
    } catch (err) {
      this.abandon(keys, slot, myRev);
      throw err;
    }
  }

  withLock<T>(names: string | readonly string[], fn: (ctx: LockContext) => Promise<T>, options: AcquireOptions = {}): Promise<T> {
    return runWithLocks(this, names, fn, { ...options, defaultTimeoutMs: this.defaultTimeoutMs, now: Date.now });
  }

  /** Releases held locks, rejects waiters and waits for pending deletions. Does not close the session. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closer.abort(new ClosedError('lock service'));
      this.local.rejectAll(new ClosedError('lock service'));
      await Promise.all([...this.handles].map((h) => h.release()));
      await Promise.all([...this.cleanups]);
      this.unsubscribe();
      void this.keeper.cancel().catch(() => undefined); // not awaited: a partition must not hold close() up
    })();
    return this.closing;
  }

  /** @internal A handle was released: delete its key (first attempt awaited, retries in the background). */
  released(handle: EtcdLockHandle, keys: LockKeys, slot: Slot): Promise<void> {
    this.handles.delete(handle);
    if (handle.held) this.options.metrics?.ended(handle.held, Date.now(), false);
    return this.deleteKey(keys, handle.createRevision, slot);
  }

  /** @internal A handle's key was deleted by a write that carried its releasing fence and landed. */
  releasedByWrite(handle: EtcdLockHandle, slot: Slot): void {
    this.handles.delete(handle);
    if (handle.held) this.options.metrics?.ended(handle.held, Date.now(), false);
    this.local.unlock(slot.name, slot);
  }

  /** @internal A handle was lost with its session: its key goes with the lease. */
  lost(handle: EtcdLockHandle, slot: Slot): void {
    this.handles.delete(handle);
    if (handle.held) this.options.metrics?.ended(handle.held, Date.now(), true);
    this.local.unlock(slot.name, slot);
  }

  private grant(keys: LockKeys, myRev: string, slot: Slot, type: string): EtcdLockHandle {
    const now = Date.now();
    const handle = new EtcdLockHandle(this, this.options.session, keys, myRev, slot, type, now, this.options.metrics?.acquired(type, now));
    this.handles.add(handle);
    return handle;
  }

  /**
   * Waits until every key created before mine is gone: watch my predecessor — and only it —
   * until it is deleted (or the watch can no longer be trusted); a deleted predecessor that was
   * the owner makes the lock mine at once; otherwise read the queue once, a
   * linearizable read of my key and of the key created last before mine: none left below mine
   * → the lock is mine; my key gone → `LockLostError`; else watch the new predecessor.
   */
  private async waitTurn(keys: LockKeys, first: Enqueued, wait: { deadline: number; timeoutMs: number; signal: AbortSignal | undefined }): Promise<void> {
    const timeout = new AbortController();
    const timer = Number.isFinite(wait.deadline) ? setTimeout(() => timeout.abort(new Error('timeout')), Math.max(0, wait.deadline - Date.now())) : undefined;
    const { signal, dispose } = anySignal([this.closer.signal, this.options.session.signal, timeout.signal, ...(wait.signal ? [wait.signal] : [])]);
    const myRev = first.myRev;
    let predecessor = first.predecessor;
    let predecessorIsOwner = first.predecessorIsOwner;
    // The last owner seen other than me: the lock is mine only once its hand-off is safe.
    let lastOwner = first.holder;
    // The predecessor whose deletion was seen last: when nothing is left below me, it may have
    // owned the lock when it went (it took over from an owner I never saw): gated too.
    let vanished: LockHolder | undefined;
    const mine = (): Promise<void> => this.handedOff([lastOwner, vanished], keys, myRev, signal);
    // Watches in a row that ended without a deletion. From the second on, the next watch waits
    // a little first, so a watch that keeps failing (say, etcd refusing it) cannot turn into polling.
    let interrupted = 0;
    try {
      for (;;) {
        if (predecessor !== undefined) {
          if (interrupted > 1) await sleep(this.retry.delayMs(interrupted - 1), signal);
          const outcome = await waitForDelete(this.options.client, predecessor, signal, this.options.callTimeoutMs);
          // The owner was my predecessor: nothing lies below it and no key can be created
          // below it, so its deletion makes the lock mine without another read. My own key
          // needs no check here: it rides on the session's lease, which etcd cannot expire
          // before the session signal (watched by this wait) fires; a lease revoked by hand is
          // caught by the fence and the session's next keepalive.
          if (outcome === 'deleted' && predecessorIsOwner) return await mine();
          if (outcome === 'deleted') vanished = holderOfQueued(keys, predecessor);
          interrupted = outcome === 'recheck' ? interrupted + 1 : 0;
          if (outcome === 'recheck') this.options.logger?.debug({ key: keys.myKey, predecessor: predecessor.key }, 'watch of the predecessor was interrupted; re-reading the queue');
        }
        const queue = parseRecheck(keys, await this.recheck(keys, myRev, wait.deadline, signal), myRev);
        if (!queue.mineExists) throw new LockLostError(keys.name, `lock ${keys.name}: my queue key ${keys.myKey} vanished while waiting (lease expired?)`);
        if (queue.owner && queue.owner.key !== keys.myKey) lastOwner = queue.owner;
        if (queue.predecessor === undefined) return await mine();
        // A key is still below mine, and below the one that vanished: that one never owned the lock.
        vanished = undefined;
        predecessor = queue.predecessor;
        predecessorIsOwner = queue.predecessorIsOwner;
      }
    } catch (err) {
      if (!signal.aborted) throw err;
      if (this.closer.signal.aborted) throw new ClosedError('lock service');
      if (this.options.session.signal.aborted) throw new LockLostError(keys.name, `lock ${keys.name}: the session ended while waiting`, { cause: err });
      if (wait.signal?.aborted) throw new AbortedError(`acquire of lock ${keys.name}`, { cause: wait.signal.reason });
      throw new LockTimeoutError(keys.name, wait.timeoutMs, await this.ownerOf(keys));
    } finally {
      clearTimeout(timer);
      dispose();
    }
  }

  /**
   * Waits until taking over from each of `previous` (owners that are gone now, or may have owned
   * the lock when they went) is safe, and marks my key when one of them was dead; see `handOff`.
   */
  private async handedOff(candidates: readonly (LockHolder | undefined)[], keys: LockKeys, myRev: string, signal: AbortSignal): Promise<void> {
    const handOff = this.options.handOff;
    const previous = candidates.filter((h, i): h is LockHolder => h !== undefined && h.key !== keys.myKey && candidates.findIndex((o) => o?.key === h.key) === i);
    if (previous.length === 0 || !handOff) return;
    const fence = allOf(...(await Promise.all(previous.map((p) => handOff(p, signal)))).filter((f): f is Fence => f !== undefined));
    if (fence.guards.length === 0) return;
    const { session } = this.options;
    const res = await untilAborted(this.txn(handOffMarkRequest(keys, myRev, session.leaseId, session.incarnation, fence), Infinity, 'marking a hand-off'), 'marking a hand-off', signal);
    const mark = parseHandOffMark(res, myRev, fence);
    if (mark.ok) return;
    if (mark.mineGone) throw new LockLostError(keys.name, `lock ${keys.name}: my queue key ${keys.myKey} vanished while waiting (lease expired?)`);
    throw new LockLostError(keys.name, `lock ${keys.name}: the hand-off from ${previous.map(describeHolder).join(' and ')} no longer holds: ${mark.failed ?? fence.description}`);
  }

  /**
   * Reads my key and my predecessor. A queued waiter keeps its place while its session
   * lives, so an unreachable etcd (a restart, a blip) does not fail the wait: the read is
   * retried with back-off until it answers or the wait ends (timeout, abort, session lost).
   */
  private async recheck(keys: LockKeys, myRev: string, deadline: number, signal: AbortSignal): Promise<ITxnResponse> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await untilAborted(this.txn(recheckRequest(keys, myRev), deadline, 'waiting for lock'), 'waiting for lock', signal);
      } catch (err) {
        if (signal.aborted || !(err instanceof BackendUnavailableError)) throw err;
        this.options.logger?.debug({ err, key: keys.myKey, attempt }, 'etcd did not answer a waiter; retrying');
        await sleep(this.retry.delayMs(attempt + 1), signal);
      }
    }
  }

  /** Reads the current owner for an error message; undefined when etcd does not answer quickly. */
  private async ownerOf(keys: LockKeys): Promise<LockHolder | undefined> {
    try {
      const res = await this.options.client.kv.range(
        { key: keys.prefixBuf, range_end: keys.rangeEndBuf, sort_target: 'Create', sort_order: 'Ascend', limit: 1 },
        { deadline: Date.now() + Math.min(this.options.callTimeoutMs, 1_000) },
      );
      const kv = res.kvs[0];
      return kv ? holderOf(keys, kv) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Gives up a queue entry after a failed or abandoned acquire; the slot frees when it is gone. */
  private abandon(keys: LockKeys, slot: Slot, myRev: string | undefined): void {
    void this.deleteKey(keys, myRev, slot);
  }

  /**
   * Deletes my key (if still created at `myRev`). Resolves after the first attempt; failed
   * attempts are repeated in the background while the session lives, and the name's slot is
   * freed only when the key is gone (or the session that carries it is).
   */
  private deleteKey(keys: LockKeys, myRev: string | undefined, slot: Slot): Promise<void> {
    let first!: () => void;
    const firstAttempt = new Promise<void>((resolve) => (first = resolve));
    const work = (async () => {
      for (let attempt = 0; isLive(this.options.session.state); attempt++) {
        try {
          await this.txn(releaseRequest(keys, myRev), Infinity, 'releasing lock');
          break;
        } catch (err) {
          this.options.logger?.warn({ err, key: keys.myKey, attempt }, 'could not delete a lock key; retrying while the session lives');
        }
        first();
        if (this.closer.signal.aborted) break;
        await sleep(this.retry.delayMs(attempt + 1), this.options.session.signal).catch(() => undefined);
      }
      first();
      this.local.unlock(slot.name, slot);
    })();
    this.cleanups.add(work);
    void work.finally(() => this.cleanups.delete(work));
    return firstAttempt;
  }

  private async txn(request: ITxnRequest, deadline: number, what: string): Promise<ITxnResponse> {
    const callDeadline = Math.min(Date.now() + this.options.callTimeoutMs, deadline);
    try {
      return await this.options.client.kv.txn(request, { deadline: callDeadline });
    } catch (err) {
      throw fromEtcdError(err, what);
    }
  }

  private sessionChanged(change: SessionStateChange): void {
    for (const handle of [...this.handles]) handle.sessionChanged(change);
    // No acquire can succeed on an ended session: its idle watch must not keep a stream (and,
    // after the client closes, a connection and the process) alive.
    if (!isLive(change.state)) void this.keeper.cancel().catch(() => undefined);
  }

  /** Throws when a call cannot be made now (closed service, bad name, session gone). */
  private refuse(name: string): void {
    if (this.closing) throw new ClosedError('lock service');
    validateLockName(name);
    if (!isLive(this.options.session.state)) {
      throw new LockLostError(name, `session ${this.options.session.incarnation} is ${this.options.session.state}; a new incarnation is needed`);
    }
  }

  private selfHolder(name: string): LockHolder {
    return {
      key: new LockKeys(this.options.keys, name, this.options.session.leaseHex).myKey,
      leaseHex: this.options.session.leaseHex,
      incarnation: this.options.session.incarnation,
    };
  }

  private observeWait(type: string, err: unknown, started: number): void {
    const result: WaitResult =
      err instanceof LockTimeoutError ? 'timeout' : err instanceof AbortedError ? 'aborted' : 'error';
    this.options.metrics?.waited(type, result, Date.now() - started);
  }
}
