/**
 * Garbage collection of incarnation records: `incarnations/<inc>` and `fenced/<inc>` outlive an
 * incarnation so that takeovers, lock hand-offs, the operator and the fault suite's history check
 * can refer to them. They go once nothing can any more: the end is older than
 * `fencing.recordRetentionMs` and no operation names the incarnation as its owner. Records of an
 * incarnation still awaiting its fence are never collected (its work waits for that record), nor
 * those of a live one.
 */
import type { Clock } from '../lifecycle/clock.js';
import type { IncarnationView } from '../membership/incarnation-records.js';
import type { Membership } from '../membership/membership.js';
import type { Logger } from '../observability/logger.js';
import { everyInterval } from '../lifecycle/every.js';

/**
 * The incarnations whose records may go, pure: ended (an end on record), not alive, ended at
 * least `retentionMs` before `nowMs`. Whether an operation still refers to one is asked apart.
 */
export function expiredIncarnations(views: readonly IncarnationView[], nowMs: number, retentionMs: number): string[] {
  return views.flatMap((v) => (v.end && !v.alive && v.end.atMs + retentionMs <= nowMs ? [v.end.incarnation] : []));
}

/** What the collector reads and removes. */
export interface RecordCollectorOptions {
  readonly membership: Pick<Membership, 'incarnations' | 'forgetIncarnation'>;
  /** Whether some operation record still names `incarnation` as its owner. */
  readonly referenced: (incarnation: string) => Promise<boolean>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly retentionMs: number;
  /** Between two collections. */
  readonly intervalMs: number;
}

/**
 * Collects expired incarnation records every `intervalMs`, on every worker (removing a record
 * twice is harmless). Failure semantics: etcd unreachable → logged, tried again next round;
 * nothing depends on a collection happening on time.
 */
export class RecordCollector {
  private readonly stop = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly options: RecordCollectorOptions) {}

  /** Starts the loop (the first round after one interval). */
  start(): void {
    this.loop ??= this.run();
  }

  /** One collection: removes what may go; returns the incarnations removed. */
  async collect(): Promise<string[]> {
    const { membership, clock, retentionMs } = this.options;
    const expired = expiredIncarnations(await membership.incarnations(), clock.now(), retentionMs);
    const removed: string[] = [];
    for (const incarnation of expired) {
      if (this.stop.signal.aborted) break;
      if (await this.options.referenced(incarnation)) continue;
      await membership.forgetIncarnation(incarnation);
      removed.push(incarnation);
    }
    if (removed.length > 0) this.options.logger.info({ count: removed.length, retentionMs }, 'removed the records of incarnations nothing refers to any more');
    return removed;
  }

  /** Stops the loop. Idempotent. */
  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
  }

  private run(): Promise<void> {
    return everyInterval(this.options.clock, this.options.intervalMs, this.stop.signal, () => this.collect(), {
      onError: (err) => this.options.logger.warn({ err }, 'collecting incarnation records failed; trying again later'),
    });
  }
}
