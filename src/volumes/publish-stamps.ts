/**
 * Stamping `publishedAt` on ops whose jobs the broker confirmed: in batches, a little after the
 * confirm, in one request per batch.
 */
import type { Clock } from '../lifecycle/clock.js';
import type { Logger } from '../observability/logger.js';
import type { OpRecord } from '../state/records.js';
import type { StateStore } from '../state/state-store.js';

/** Options of {@link PublishStamps}. */
export interface PublishStampsOptions {
  readonly store: Pick<StateStore, 'markPublished'>;
  readonly clock: Clock;
  readonly logger: Logger;
  /**
   * How long after the first confirm a batch goes out. Keep it below the worker's
   * `sweepIntervalMs`: the sweeper re-publishes queued ops that stayed unstamped that long.
   */
  readonly delayMs: number;
  /**
   * True: stamp nothing (asked at each `add`, so building the stamps reads no backend). With the
   * in-process bus a job cannot be lost while the process lives, and a restart publishes every
   * queued op again, so the sweeper counts an op as published when it was recorded
   * (`RepublishSweeper`'s `publishedWhenRecorded`) and a stamp would only cost a write.
   */
  readonly skip?: () => boolean;
}

/**
 * The stamp only tells the republish sweeper that an op's job reached the broker; an op that a
 * worker claimed meanwhile needs none (the sweeper looks at queued ops only). Sent right after
 * the confirm, a stamp raced the worker's claim for the same key and cost every operation a
 * request; sent `delayMs` later, in one request for every op confirmed meanwhile
 * (`StateStore.markPublished`: each stamp holds only if its op is unchanged), it finds most ops
 * claimed or finished already and stamps only those still waiting in the queue.
 *
 * Failure semantics: never throws. A batch that fails is logged and dropped: its ops stay
 * unstamped, and the sweeper publishes those still queued again — a duplicate, which the claim
 * drops. `close()` sends what is pending (once; later `add`s are ignored).
 */
export class PublishStamps {
  private pending: OpRecord[] = [];
  private timer: Promise<void> | undefined;
  private readonly stop = new AbortController();
  private closing: Promise<void> | undefined;

  constructor(private readonly options: PublishStampsOptions) {}

  /** Stamps `op` (as written, with its revision) in the next batch. */
  add(op: OpRecord): void {
    if (this.closing || this.options.skip?.() === true) return;
    this.pending.push(op);
    this.timer ??= this.options.clock.sleep(this.options.delayMs, this.stop.signal).then(
      () => this.flush(),
      () => undefined,
    );
  }

  /** Sends the batch now; resolves once it was answered (or failed). */
  async flush(): Promise<void> {
    this.timer = undefined;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    try {
      const stamped = await this.options.store.markPublished(batch, this.options.clock.now());
      this.options.logger.debug({ ops: batch.length, stamped }, 'stamped published ops');
    } catch (err) {
      this.options.logger.warn({ err, ops: batch.length }, 'could not stamp published ops; the republish sweep may publish those still queued again');
    }
  }

  /** Sends what is pending and stops. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop.abort();
      await this.flush();
    })();
    return this.closing;
  }
}
