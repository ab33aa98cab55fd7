import type { Clock } from '../lifecycle/clock.js';
import { type Backoff, DEFAULT_ETCD_RETRY } from '../lifecycle/retry.js';
import type { Membership } from '../membership/membership.js';
import type { Logger } from '../observability/logger.js';
import type { StateStore } from '../state/state-store.js';
import { countByCluster, findOrphans, type Orphan, orphanKey } from './find-orphans.js';
import type { OrphanMetrics } from './metrics.js';

/** What an {@link OrphanDetector} needs. */
export interface OrphanDetectorOptions {
  readonly membership: Pick<Membership, 'watch' | 'snapshot'>;
  readonly store: Pick<StateStore, 'listOps'>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: OrphanMetrics;
  /** The backstop sweep's period (`orphans.sweepIntervalMs`). */
  readonly sweepIntervalMs: number;
  /** Waits before watching again after the membership watch failed (`retry.*`). */
  readonly retry?: Backoff;
}

/** Deaths older than this that no op refers to any more are forgotten. */
const DEATH_MEMORY_MS = 3_600_000;

/**
 * Finds orphaned operations and keeps `hearth_orphaned_operations{cluster}` current. Two paths
 * trigger a sweep (list the ops, then the alive members, then {@link findOrphans}):
 *
 * - **the watch**: a `member-left` event (a lease expired, a member left, or the re-list after a
 *   compaction found it gone) sweeps at once, and records when that incarnation was seen to die
 *   (the orphans' `since`, and the failover duration); joins and re-lists sweep too;
 * - **the backstop**: every `sweepIntervalMs`, whatever the watch said.
 *
 * New orphans are logged at info with their ids, and so are orphans that went away. Sweeps never
 * overlap: one asked for while another runs is folded into a single next one.
 *
 * Failure semantics: while etcd (or the store) cannot be read a sweep fails, is logged, and the
 * gauge keeps its last values; the next event or backstop tick sweeps again. The watch survives
 * etcd restarts and re-lists after a compaction (membership's contract). A detector that starts
 * after an owner died does not know when it died: those orphans count from the first sweep that
 * found them (so the automatic cleanup's grace period starts no earlier than that).
 */
export class OrphanDetector {
  private orphans: readonly Orphan[] = [];
  /** When each incarnation was seen to die: its `member-left` event, or noted by the worker. */
  private readonly deaths = new Map<string, number>();
  /** When a sweep first found an incarnation dead whose death this process did not see. */
  private readonly firstSeenDead = new Map<string, number>();
  private readonly listeners = new Set<(orphans: readonly Orphan[]) => void>();
  private readonly stop = new AbortController();
  private loops: Promise<void>[] = [];
  private running: Promise<readonly Orphan[]> | undefined;
  private pending: Promise<readonly Orphan[]> | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: OrphanDetectorOptions) {}

  /** Starts the watch and the backstop sweep in the background (the first sweep runs at once). */
  start(): void {
    if (this.loops.length > 0 || this.closing) return;
    this.loops = [this.watchLoop(), this.backstopLoop()];
  }

  /** The orphans of the last successful sweep. */
  current(): readonly Orphan[] {
    return this.orphans;
  }

  /** When an incarnation was seen to die (epoch ms), if this process saw it. */
  deathOf(incarnation: string): number | undefined {
    return this.deaths.get(incarnation);
  }

  /** Records a death learnt elsewhere (this process's own incarnation that lost its session). */
  noteDeath(incarnation: string, atMs: number): void {
    if (!this.deaths.has(incarnation)) this.deaths.set(incarnation, atMs);
  }

  /** Calls `listener` with the orphans after every successful sweep; returns an unsubscribe function. */
  onSweep(listener: (orphans: readonly Orphan[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Sweeps now (or joins the sweep that runs, plus one more) and resolves with the orphans.
   *
   * Failure semantics: rejects with the store's or membership's error (retryable
   * `BACKEND_UNAVAILABLE` while etcd is unreachable); the last result stays in place.
   */
  sweep(): Promise<readonly Orphan[]> {
    if (this.running) {
      this.pending ??= this.running.then(
        () => this.next(),
        () => this.next(),
      );
      return this.pending;
    }
    this.running = this.sweepOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private next(): Promise<readonly Orphan[]> {
    this.pending = undefined;
    return this.sweep();
  }

  private async sweepOnce(): Promise<readonly Orphan[]> {
    // Ops first, then the alive members: see find-orphans.ts on why the order matters.
    const ops = await this.options.store.listOps();
    const snapshot = await this.options.membership.snapshot(this.stop.signal);
    const now = this.options.clock.now();
    // An orphan counts from its owner's death; when this process did not see it (it started
    // later, or a sweep got there before the watch event), from when a sweep first found it —
    // never from the op's last change, which would make a fresh orphan look old.
    const known = new Map([...this.firstSeenDead, ...this.deaths]);
    const found = findOrphans(ops, snapshot.alive, now, known).map((o) => {
      if (known.has(o.owner.incarnation)) return o;
      this.firstSeenDead.set(o.owner.incarnation, now);
      return { ...o, since: now, ageMs: 0 };
    });
    found.sort((a, b) => a.since - b.since);
    this.report(found);
    this.forgetDeaths(new Set(ops.flatMap((op) => (op.owner ? [op.owner.incarnation] : []))), now);
    this.orphans = found;
    this.options.metrics.setOrphans(countByCluster(found));
    for (const listener of this.listeners) {
      try {
        listener(found);
      } catch (err) {
        this.options.logger.error({ err }, 'orphan listener failed');
      }
    }
    return found;
  }

  /** Logs orphans that appeared and those that went away since the last sweep. */
  private report(found: readonly Orphan[]): void {
    const before = new Map(this.orphans.map((o) => [orphanKey(o), o]));
    const now = new Set(found.map(orphanKey));
    for (const o of found) {
      if (before.has(orphanKey(o))) continue;
      const { op, owner } = o;
      this.options.logger.info(
        { type: op.type, id: op.id, opId: op.opId, kind: op.kind, status: op.status, cluster: op.cluster, ownerHost: owner.host, ownerIncarnation: owner.incarnation, reason: o.reason, since: new Date(o.since).toISOString() },
        'orphaned operation found',
      );
    }
    for (const [key, o] of before) {
      if (now.has(key)) continue;
      this.options.logger.info({ type: o.op.type, id: o.op.id, opId: o.op.opId, kind: o.op.kind, ownerIncarnation: o.owner.incarnation }, 'orphaned operation gone (cleaned up, finished or changed)');
    }
  }

  private forgetDeaths(referenced: ReadonlySet<string>, now: number): void {
    for (const memory of [this.deaths, this.firstSeenDead]) {
      for (const [incarnation, at] of memory) {
        if (!referenced.has(incarnation) && now - at > DEATH_MEMORY_MS) memory.delete(incarnation);
      }
    }
  }

  private trigger(why: string): void {
    this.sweep().catch((err: unknown) => {
      if (!this.stop.signal.aborted) this.options.logger.warn({ err, why }, 'orphan sweep failed; the next event or backstop sweep tries again');
    });
  }

  private async watchLoop(): Promise<void> {
    const signal = this.stop.signal;
    const retry = this.options.retry ?? DEFAULT_ETCD_RETRY;
    let failures = 0;
    while (!signal.aborted) {
      try {
        for await (const event of this.options.membership.watch(signal)) {
          failures = 0;
          if (event.type === 'member-left') {
            this.deaths.set(event.member.incarnation, this.options.clock.now());
            this.trigger(`${event.member.host} left`);
          } else if (event.type !== 'member-heartbeat') {
            this.trigger(event.type);
          }
        }
      } catch (err) {
        if (!signal.aborted) this.options.logger.warn({ err }, 'orphan detector: membership watch failed; watching again');
      }
      await retry.wait(++failures, this.options.clock, signal);
    }
  }

  private async backstopLoop(): Promise<void> {
    const signal = this.stop.signal;
    while (!signal.aborted) {
      this.trigger('backstop');
      try {
        await this.options.clock.sleep(this.options.sweepIntervalMs, signal);
      } catch {
        return;
      }
    }
  }

  /** Stops both loops and waits for a sweep in flight. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop.abort();
      await Promise.all(this.loops);
      await Promise.allSettled([this.running, this.pending]);
    })();
    return this.closing;
  }
}
