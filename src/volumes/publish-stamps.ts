/**
 * Stamping `publishedAt` on ops whose jobs the broker confirmed: in batches, each op at least
 * `delayMs` after its confirm, in one request per batch.
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
   * How long after its confirm an op is stamped at the earliest; at the latest, twice that (a
   * batch goes out every `delayMs` while ops wait). Keep twice it well below the worker's
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
 * request; sent later, in one request for every op due (`StateStore.markPublished`: each stamp
 * holds only if its op is unchanged), it finds most ops claimed or finished already and stamps
 * only those still waiting in the queue. Each op waits `delayMs` at least — not only the first of
 * a batch — because a stamp rewrites the op: the job's carried op goes stale, and the claim of a
 * job still queued then costs a second transaction.
 *
 * Failure semantics: never throws. A batch that fails is logged and dropped: its ops stay
 * unstamped, and the sweeper publishes those still queued again — a duplicate, which the claim
 * drops. `close()` sends what is pending (once; later `add`s are ignored).
 */
export class PublishStamps {
  /** Ops to stamp, in confirm order, with when each was added. */
  private pending: { readonly op: OpRecord; readonly at: number }[] = [];
  private timer: Promise<void> | undefined;
  private readonly stop = new AbortController();
  private closing: Promise<void> | undefined;

  constructor(private readonly options: PublishStampsOptions) {}

  /** Stamps `op` (as written, with its revision) in the next batch. */
  add(op: OpRecord): void {
    if (this.closing || this.options.skip?.() === true) return;
    this.pending.push({ op, at: this.options.clock.now() });
    this.arm();
  }

  /** Sends every pending op now; resolves once it was answered (or failed). */
  flush(): Promise<void> {
    const batch = this.pending.map((p) => p.op);
    this.pending = [];
    return this.send(batch);
  }

  /** A batch every `delayMs` while ops wait: those added `delayMs` ago or earlier. */
  private arm(): void {
    this.timer ??= this.options.clock.sleep(this.options.delayMs, this.stop.signal).then(
      () => {
        this.timer = undefined;
        const dueBy = this.options.clock.now() - this.options.delayMs;
        const due = this.pending.findIndex((p) => p.at > dueBy);
        const batch = (due === -1 ? this.pending : this.pending.slice(0, due)).map((p) => p.op);
        this.pending = due === -1 ? [] : this.pending.slice(due);
        if (this.pending.length > 0) this.arm();
        return this.send(batch);
      },
      () => undefined,
    );
  }

  private async send(batch: OpRecord[]): Promise<void> {
    if (batch.length === 0) return;
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
