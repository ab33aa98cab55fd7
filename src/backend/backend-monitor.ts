/**
 * The worker's watch over its storage backend: a health check and a capacity read every
 * `backendHealth.checkIntervalMs`, one at a time, reported where the others look.
 *
 * - The state (`up`/`down`, with why) goes into this member's alive entry at once when it
 *   changes ({@link Member.reportBackend}): `os-services` shows `backend_state: down` within one
 *   check interval, from any process serving the API.
 * - The pool (the last capacity read) rides along, written again when it changed and the last
 *   write is older than {@link POOL_REWRITE_MS}, or with the next heartbeat.
 * - Listeners hear every change of state: the worker stops taking new jobs while the backend is
 *   down (in-flight ones finish or are handed back; the member keeps its lease and
 *   membership) and resumes by itself when a check passes again.
 *
 * Failure semantics: a check never throws (a driver's `health()` answers `down` for anything it
 * cannot finish); a capacity read that fails keeps the last pool and is logged; a report that
 * cannot be written (etcd away) goes out with a later heartbeat. Before the first check
 * finishes the state is `unknown`, which takes no work.
 */
import type { BackendHealth, Capacity, VolumeDriver } from '../drivers/volume-driver.js';
import type { Clock } from '../lifecycle/clock.js';
import type { BackendReport, PoolReport } from '../membership/backend-report.js';
import type { Member } from '../membership/membership.js';
import type { Logger } from '../observability/logger.js';
import type { BackendMetrics } from './metrics.js';
import { everyInterval } from '../lifecycle/every.js';

/** `unknown` until the first check has finished. */
export type BackendState = 'unknown' | 'up' | 'down';

/** A change of {@link BackendState}. */
export interface BackendChange {
  readonly state: BackendState;
  readonly previous: BackendState;
  readonly reason: string | null;
}

/** How long an unchanged state goes before a changed pool is written again (else it waits for a heartbeat). */
export const POOL_REWRITE_MS = 30_000;

/** What a {@link BackendMonitor} needs. */
export interface BackendMonitorOptions {
  readonly driver: Pick<VolumeDriver, 'name' | 'health' | 'capacity'>;
  /** The member reports go to (the current incarnation's); none between incarnations. */
  readonly member: () => Member | undefined;
  readonly intervalMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: BackendMetrics;
}

/** See the module doc. */
export class BackendMonitor {
  private stateValue: BackendState = 'unknown';
  private reasonValue: string | null = null;
  private poolValue: PoolReport | null = null;
  private readonly listeners = new Set<(change: BackendChange) => void>();
  private readonly stop = new AbortController();
  private loop: Promise<void> | undefined;
  private checking: Promise<void> | undefined;
  private written: { readonly member: Member; readonly atMs: number; readonly report: BackendReport } | undefined;

  constructor(private readonly options: BackendMonitorOptions) {}

  get state(): BackendState {
    return this.stateValue;
  }

  /** True when the last check passed. */
  get up(): boolean {
    return this.stateValue === 'up';
  }

  /** Why the backend is down (null when up or unknown). */
  get reason(): string | null {
    return this.reasonValue;
  }

  /** The last capacity read, or null before one succeeded. */
  get pool(): PoolReport | null {
    return this.poolValue;
  }

  /** Calls `listener` on every change of state; returns a function that unsubscribes. */
  onChange(listener: (change: BackendChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Runs the first check (so the worker knows before it takes work), then checks every interval. */
  async start(): Promise<void> {
    await this.check();
    this.loop ??= this.run();
  }

  /**
   * One check now: health, then (when up) capacity, then the report. Concurrent calls share
   * one check.
   */
  check(): Promise<void> {
    this.checking ??= this.checkOnce().finally(() => (this.checking = undefined));
    return this.checking;
  }

  /**
   * Reads the capacity now, outside the schedule (an admission found none yet); keeps and
   * returns it. Null when it cannot be read.
   */
  async refreshPool(): Promise<PoolReport | null> {
    try {
      // Stamped with the start of the read: whatever ended before it shows in its numbers.
      const startedAt = this.options.clock.now();
      this.poolValue = this.poolOf(await this.options.driver.capacity(this.stop.signal), startedAt);
      this.options.metrics.pool(this.poolValue);
    } catch (err) {
      this.options.logger.warn({ err }, 'reading the backend capacity failed');
    }
    return this.poolValue;
  }

  /** Stops checking; a probe in flight is left to the driver's close. Idempotent. */
  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
  }

  private run(): Promise<void> {
    return everyInterval(this.options.clock, this.options.intervalMs, this.stop.signal, () => this.check(), {
      onError: (err) => this.options.logger.warn({ err }, 'a backend check failed; checking again at the next interval'),
    });
  }

  private async checkOnce(): Promise<void> {
    const { driver, metrics, clock } = this.options;
    const health: BackendHealth = await driver.health(this.stop.signal);
    metrics.checked(health.state === 'up');
    if (health.state === 'up') await this.refreshPool();
    const previous = this.stateValue;
    this.stateValue = health.state;
    this.reasonValue = health.state === 'down' ? health.reason : null;
    metrics.state(health.state === 'up');
    const changed = previous !== health.state;
    if (changed) this.announce(previous);
    await this.report({ state: health.state, reason: this.reasonValue, checkedAtMs: clock.now(), pool: this.poolValue }, changed);
  }

  private announce(previous: BackendState): void {
    const change: BackendChange = { state: this.stateValue, previous, reason: this.reasonValue };
    if (this.stateValue === 'down') this.options.logger.warn({ reason: this.reasonValue, previous }, 'the backend is down: taking no new jobs until a check passes');
    else this.options.logger.info({ previous }, previous === 'unknown' ? 'the backend is up' : 'the backend is up again: taking jobs');
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (err) {
        this.options.logger.error({ err }, 'a backend state listener failed');
      }
    }
  }

  /** Writes the report into the alive entry when the state changed, the member is new, or a changed pool is due. */
  private async report(report: BackendReport, changed: boolean): Promise<void> {
    const member = this.options.member();
    if (!member?.joined) return;
    const last = this.written;
    const now = this.options.clock.now();
    const due = !last || last.member !== member || changed || last.report.state !== report.state || (!samePool(last.report.pool, report.pool) && now - last.atMs >= POOL_REWRITE_MS);
    if (!due) return;
    try {
      const result = await member.reportBackend(report);
      if (result.ok) this.written = { member, atMs: now, report };
    } catch (err) {
      this.options.logger.warn({ err }, 'could not write the backend report; it goes out with the next heartbeat');
    }
  }

  private poolOf(c: Capacity, atMs: number): PoolReport {
    return {
      totalBytes: c.totalBytes,
      freeBytes: c.freeBytes,
      provisionedBytes: c.provisionedBytes,
      allocatedBytes: c.allocatedBytes,
      thin: c.thin,
      maxOverSubscriptionRatio: c.maxOverSubscriptionRatio,
      reservedPercentage: c.reservedPercentage,
      driver: this.options.driver.name,
      atMs,
    };
  }
}

function samePool(a: PoolReport | null, b: PoolReport | null): boolean {
  if (a === null || b === null) return a === b;
  return a.totalBytes === b.totalBytes && a.freeBytes === b.freeBytes && a.provisionedBytes === b.provisionedBytes && a.allocatedBytes === b.allocatedBytes;
}
