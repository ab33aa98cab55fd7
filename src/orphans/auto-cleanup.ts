import type { Clock } from '../lifecycle/clock.js';
import type { Logger } from '../observability/logger.js';
import type { CleanupReport } from './cleaner.js';
import type { Orphan } from './find-orphans.js';
import { orphanKey } from './find-orphans.js';

/** What an {@link AutoCleanup} needs. */
export interface AutoCleanupOptions {
  /** The orphans of the last sweep, and a callback after each sweep (the detector). */
  readonly detector: {
    current(): readonly Orphan[];
    onSweep(listener: (orphans: readonly Orphan[]) => void): () => void;
  };
  /** Claims and cleans orphans as this member (the cleaner). */
  readonly clean: (orphans: readonly Orphan[], signal: AbortSignal) => Promise<CleanupReport>;
  /** True while this worker is a live member (it cleans nothing otherwise). */
  readonly live: () => boolean;
  /** This member's cluster: it cleans only that cluster's orphans. */
  readonly cluster: string;
  /** `orphans.graceMs`: an orphan is cleaned once this old. */
  readonly graceMs: number;
  /** An orphan whose cleanup failed is tried again no sooner than this. */
  readonly retryDelayMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * Opt-in automatic cleanup (`orphans.autoCleanup`): every worker runs one. After each detector
 * sweep, and when the next orphan comes of age, it cleans its cluster's orphans that are at
 * least `graceMs` old. Every member does this at once and the claim makes exactly one win per
 * orphan; the others skip it. The owner's own host, restarting, usually cleans first (its
 * start-up cleanup), which is why `graceMs` is at least a lease TTL.
 *
 * Failure semantics: a failed round is logged and each orphan it failed on waits
 * `retryDelayMs` before the next try; nothing runs while this worker is not a live member.
 */
export class AutoCleanup {
  private readonly stop = new AbortController();
  private wake: (() => void) | undefined;
  /** A sweep happened since the loop last read the orphans. */
  private dirty = false;
  private readonly tried = new Map<string, number>();
  private loop: Promise<void> | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly options: AutoCleanupOptions) {}

  start(): void {
    if (this.loop || this.stop.signal.aborted) return;
    this.unsubscribe = this.options.detector.onSweep(() => {
      this.dirty = true;
      this.wake?.();
    });
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const signal = this.stop.signal;
    while (!signal.aborted) {
      this.dirty = false;
      const now = this.options.clock.now();
      const mine = this.options.detector.current().filter((o) => o.op.cluster === this.options.cluster);
      const due = mine.filter((o) => now - o.since >= this.options.graceMs && now - (this.tried.get(orphanKey(o)) ?? -Infinity) >= this.options.retryDelayMs);
      if (due.length > 0 && this.options.live()) {
        for (const o of due) this.tried.set(orphanKey(o), now);
        try {
          const report = await this.options.clean(due, signal);
          this.options.logger.info({ ...report, graceMs: this.options.graceMs }, 'automatic cleanup round done');
        } catch (err) {
          this.options.logger.warn({ err }, 'automatic cleanup round failed; trying again later');
        }
      }
      this.forget(mine);
      await this.sleepUntilNext(mine, signal);
    }
  }

  /** Forgets retry times of orphans that are gone. */
  private forget(current: readonly Orphan[]): void {
    const keys = new Set(current.map(orphanKey));
    for (const key of this.tried.keys()) if (!keys.has(key)) this.tried.delete(key);
  }

  /** Sleeps until the next orphan comes of age (or may be retried), or the next sweep. */
  private async sleepUntilNext(orphans: readonly Orphan[], signal: AbortSignal): Promise<void> {
    if (this.dirty) return;
    const now = this.options.clock.now();
    let next: number | undefined;
    for (const o of orphans) {
      const at = Math.max(o.since + this.options.graceMs, (this.tried.get(orphanKey(o)) ?? -Infinity) + this.options.retryDelayMs);
      if (next === undefined || at < next) next = at;
    }
    const timer = new AbortController();
    const both = AbortSignal.any([signal, timer.signal]);
    const woken = new Promise<void>((resolve) => {
      this.wake = resolve;
      both.addEventListener('abort', () => resolve(), { once: true });
    });
    // Something already due that could not be cleaned (not a live member now): wait a retry delay.
    const delay = next === undefined ? undefined : next > now ? next - now : this.options.retryDelayMs;
    const sleeping = delay === undefined ? undefined : this.options.clock.sleep(delay, both).catch(() => undefined);
    await Promise.race([woken, ...(sleeping ? [sleeping] : [])]);
    this.wake = undefined;
    timer.abort();
  }

  /** Stops the loop (a round in flight is aborted through its signal). Idempotent. */
  async close(): Promise<void> {
    this.stop.abort();
    this.unsubscribe?.();
    await this.loop;
  }
}
