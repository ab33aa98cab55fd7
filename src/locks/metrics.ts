import { Counter, Gauge, type Registry } from 'prom-client';
import { FastHistogram, type HistogramSeries } from './histogram.js';
import { DURATION_BUCKETS_SECONDS, WAIT_BUCKETS_SECONDS } from '../observability/metrics.js';

/**
 * Operation suffixes of hearth's (and Cinder's) lock names, `<resource id>-<suffix>`. Only
 * these become a `lock_type` label of their own, so the label stays a small enum whatever
 * names callers invent.
 */
export const KNOWN_LOCK_TYPES: ReadonlySet<string> = new Set([
  'delete_volume',
  'delete_snapshot',
  'detach_volume',
  'attach_volume',
  'create_volume',
  'extend_volume',
  'create_snapshot',
  'migrate_volume',
  'retype_volume',
]);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The lock name without the resource id: `<id>-delete_volume` → `delete_volume`, a bare
 * volume id (Cinder's attach lock `<volume>`) → `volume`, anything else → `other`.
 */
export function lockTypeOf(name: string, known: ReadonlySet<string> = KNOWN_LOCK_TYPES): string {
  const dash = name.lastIndexOf('-');
  if (dash > 0) {
    const suffix = name.slice(dash + 1);
    if (known.has(suffix)) return suffix;
  }
  return UUID.test(name) ? 'volume' : 'other';
}

/** The outcome of one acquire, for `hearth_lock_wait_seconds{result}`. */
export type WaitResult = 'acquired' | 'timeout' | 'aborted' | 'error';

/** Everything kept per lock type: resolved histogram series and the locks held now. */
interface TypeState {
  readonly type: string;
  readonly wait: Record<WaitResult, HistogramSeries>;
  readonly hold: HistogramSeries;
  /** Locks of this type held now, oldest first (a list: O(1) to add, remove and find the oldest). */
  head: HeldLock | undefined;
  tail: HeldLock | undefined;
  size: number;
}

/** One held lock, as {@link LockMetrics.acquired} returns it; hand it back to `ended`. */
export interface HeldLock {
  readonly acquiredAt: number;
  /** @internal */ state: TypeState | undefined;
  /** @internal */ prev: HeldLock | undefined;
  /** @internal */ next: HeldLock | undefined;
}

/**
 * The lock instruments of `docs/metrics.md`, declared once per registry and shared by every
 * lock service of the process (a new incarnation gets a new service, not new metrics).
 *
 * The hot path (an in-process lock is taken and given back in about a microsecond) touches
 * only plain maps and pre-resolved histogram series (see `FastHistogram`):
 * `hearth_locks_held` and `hearth_lock_oldest_acquired_timestamp_seconds` are computed at
 * scrape time from the locks held, so the oldest-acquired series is absent while no lock of
 * that type is held.
 */
export class LockMetrics {
  private readonly wait: FastHistogram;
  private readonly hold: FastHistogram;
  private readonly lost: Counter<'lock_type'>;
  private readonly types = new Map<string, TypeState>();

  constructor(registry: Registry) {
    this.wait = new FastHistogram(
      'hearth_lock_wait_seconds',
      'Time from an acquire call to its outcome.',
      ['lock_type', 'result'],
      WAIT_BUCKETS_SECONDS,
      registry,
    );
    this.hold = new FastHistogram(
      'hearth_lock_hold_seconds',
      'Time a lock was held, observed at release or loss.',
      ['lock_type'],
      DURATION_BUCKETS_SECONDS,
      registry,
    );
    this.lost = new Counter({
      name: 'hearth_locks_lost_total',
      help: 'Locks lost while held (session lease lost, lock key gone).',
      labelNames: ['lock_type'] as const,
      registers: [registry],
    });
    const types = this.types;
    new Gauge({
      name: 'hearth_locks_held',
      help: 'Locks this process holds now.',
      labelNames: ['lock_type'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const [type, state] of types) this.set({ lock_type: type }, state.size);
      },
    });
    new Gauge({
      name: 'hearth_lock_oldest_acquired_timestamp_seconds',
      help: 'When the oldest lock still held was acquired; absent when none is held.',
      labelNames: ['lock_type'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const [type, state] of types) if (state.head) this.set({ lock_type: type }, state.head.acquiredAt / 1_000);
      },
    });
  }

  /** An acquire ended; `waitedMs` from the call to the outcome. */
  waited(lockType: string, result: WaitResult, waitedMs: number): void {
    const state = this.state(lockType);
    this.wait.observe(state.wait[result], waitedMs / 1_000);
  }

  /** A lock was acquired (locks are acquired in time order, so the list stays oldest first). */
  acquired(lockType: string, acquiredAt: number): HeldLock {
    const state = this.state(lockType);
    const held: HeldLock = { acquiredAt, state, prev: state.tail, next: undefined };
    if (state.tail) state.tail.next = held;
    else state.head = held;
    state.tail = held;
    state.size++;
    return held;
  }

  /** A held lock was released or lost; a second call for the same lock does nothing. */
  ended(held: HeldLock, endedAt: number, lost: boolean): void {
    const state = held.state;
    if (state === undefined) return;
    held.state = undefined;
    if (held.prev) held.prev.next = held.next;
    else state.head = held.next;
    if (held.next) held.next.prev = held.prev;
    else state.tail = held.prev;
    held.prev = held.next = undefined;
    state.size--;
    this.hold.observe(state.hold, (endedAt - held.acquiredAt) / 1_000);
    if (lost) this.lost.inc({ lock_type: state.type });
  }

  private state(lockType: string): TypeState {
    let state = this.types.get(lockType);
    if (state === undefined) {
      const wait = (result: WaitResult): HistogramSeries => this.wait.seriesFor(lockType, result);
      state = {
        type: lockType,
        wait: { acquired: wait('acquired'), timeout: wait('timeout'), aborted: wait('aborted'), error: wait('error') },
        hold: this.hold.seriesFor(lockType),
        head: undefined,
        tail: undefined,
        size: 0,
      };
      this.types.set(lockType, state);
    }
    return state;
  }
}
