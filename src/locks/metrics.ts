import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
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

/**
 * The lock instruments of `docs/metrics.md`, declared once per registry and shared by every
 * lock service of the process (a new incarnation gets a new service, not new metrics).
 * `hearth_locks_held` and `hearth_lock_oldest_acquired_timestamp_seconds` are computed at
 * scrape time from the locks currently held, so the hot path only touches plain maps, and
 * the oldest-acquired series is absent while no lock of that type is held.
 */
export class LockMetrics {
  private readonly wait: Histogram<'lock_type' | 'result'>;
  private readonly hold: Histogram<'lock_type'>;
  private readonly lost: Counter<'lock_type'>;
  /** lock_type → acquiredAt (epoch ms) of every lock held, by a per-lock token. */
  private readonly held = new Map<string, Map<object, number>>();
  private readonly seenTypes = new Set<string>();

  constructor(registry: Registry) {
    this.wait = new Histogram({
      name: 'hearth_lock_wait_seconds',
      help: 'Time from an acquire call to its outcome.',
      labelNames: ['lock_type', 'result'] as const,
      buckets: WAIT_BUCKETS_SECONDS,
      registers: [registry],
    });
    this.hold = new Histogram({
      name: 'hearth_lock_hold_seconds',
      help: 'Time a lock was held, observed at release or loss.',
      labelNames: ['lock_type'] as const,
      buckets: DURATION_BUCKETS_SECONDS,
      registers: [registry],
    });
    this.lost = new Counter({
      name: 'hearth_locks_lost_total',
      help: 'Locks lost while held (session lease lost, lock key gone).',
      labelNames: ['lock_type'] as const,
      registers: [registry],
    });
    const held = this.held;
    const seen = this.seenTypes;
    new Gauge({
      name: 'hearth_locks_held',
      help: 'Locks this process holds now.',
      labelNames: ['lock_type'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const type of seen) this.set({ lock_type: type }, held.get(type)?.size ?? 0);
      },
    });
    new Gauge({
      name: 'hearth_lock_oldest_acquired_timestamp_seconds',
      help: 'When the oldest lock still held was acquired; absent when none is held.',
      labelNames: ['lock_type'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const [type, locks] of held) {
          let oldest = Infinity;
          for (const at of locks.values()) oldest = Math.min(oldest, at);
          if (locks.size > 0) this.set({ lock_type: type }, oldest / 1_000);
        }
      },
    });
  }

  /** An acquire ended; `waitedMs` from the call to the outcome. */
  waited(lockType: string, result: WaitResult, waitedMs: number): void {
    this.wait.observe({ lock_type: lockType, result }, waitedMs / 1_000);
  }

  /** A lock was acquired; `token` identifies it until {@link ended}. */
  acquired(lockType: string, token: object, acquiredAt: number): void {
    let locks = this.held.get(lockType);
    if (locks === undefined) {
      locks = new Map();
      this.held.set(lockType, locks);
      this.seenTypes.add(lockType);
    }
    locks.set(token, acquiredAt);
  }

  /** A held lock was released or lost. */
  ended(lockType: string, token: object, endedAt: number, lost: boolean): void {
    const locks = this.held.get(lockType);
    const acquiredAt = locks?.get(token);
    if (acquiredAt === undefined) return;
    locks?.delete(token);
    this.hold.observe({ lock_type: lockType }, (endedAt - acquiredAt) / 1_000);
    if (lost) this.lost.inc({ lock_type: lockType });
  }
}
