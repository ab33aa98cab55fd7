import type { Clock } from '../lifecycle/clock.js';
import { type Backoff, DEFAULT_ETCD_RETRY } from '../lifecycle/retry.js';
import type { Logger } from '../observability/logger.js';
import type { Membership } from './membership.js';
import type { MembershipMetrics } from './metrics.js';

/** What a {@link MembershipMonitor} needs. */
export interface MonitorOptions {
  readonly membership: Membership;
  readonly metrics: MembershipMetrics;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Waits before watching again after the watch failed (`retry.*`). */
  readonly retry?: Backoff;
}

/**
 * Keeps `hearth_cluster_members` current: it follows the membership watch and re-reads the
 * records after every join, leave and re-list (never on heartbeats, never on a timer).
 *
 * Failure semantics: while etcd cannot be reached the gauge keeps its last values; the watch
 * re-lists when it comes back and the gauge is refreshed then.
 */
export class MembershipMonitor {
  private readonly stop = new AbortController();
  private loop: Promise<void> | undefined;
  private refreshing: Promise<void> | undefined;
  private dirty = false;

  constructor(private readonly options: MonitorOptions) {}

  /** Starts following the watch in the background. */
  start(): void {
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    const signal = this.stop.signal;
    const retry = this.options.retry ?? DEFAULT_ETCD_RETRY;
    let failures = 0;
    while (!signal.aborted) {
      try {
        for await (const event of this.options.membership.watch(signal)) {
          failures = 0;
          if (event.type !== 'member-heartbeat') this.refresh();
        }
      } catch (err) {
        this.options.logger.warn({ err }, 'membership monitor watch failed; watching again');
      }
      await retry.wait(++failures, this.options.clock, signal);
    }
  }

  /** Re-reads the records; refreshes asked for while one runs are folded into one more. */
  refresh(): void {
    if (this.refreshing) {
      this.dirty = true;
      return;
    }
    this.refreshing = (async () => {
      do {
        this.dirty = false;
        try {
          this.options.metrics.observe(await this.options.membership.snapshot(this.stop.signal));
        } catch (err) {
          if (!this.stop.signal.aborted) this.options.logger.debug({ err }, 'membership monitor could not read the records');
        }
      } while (this.dirty && !this.stop.signal.aborted);
      this.refreshing = undefined;
    })();
  }

  /** Stops following the watch. Idempotent. */
  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
    await this.refreshing;
  }
}
