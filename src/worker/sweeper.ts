/**
 * The republish sweeper: finds ops that were recorded but whose job never reached the broker
 * (the API died between its write and its publish, or the publish failed) and publishes them.
 */
import type { Clock } from '../lifecycle/clock.js';
import type { Logger } from '../observability/logger.js';
import type { StateStore } from '../state/state-store.js';
import type { OpRecord } from '../state/records.js';
import type { Incarnations } from '../incarnation/incarnation.js';
import type { OpPublisher } from './op-publisher.js';

/** The lock a sweep round takes with `tryAcquire`, so members do not sweep at the same time. */
export const SWEEPER_LOCK = 'hearth-sweeper';

/** Ops re-published per round at most; the next round takes the rest. */
export const MAX_OPS_PER_SWEEP = 500;

/** What a {@link RepublishSweeper} needs. */
export interface SweeperOptions {
  readonly store: Pick<StateStore, 'listOps'>;
  readonly publisher: Pick<OpPublisher, 'publish'>;
  readonly incarnations: Incarnations;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The cluster whose ops this member publishes. */
  readonly cluster: string;
  /** A round every this often; an op must have waited unpublished this long (`sweepIntervalMs`). */
  readonly intervalMs: number;
  /**
   * A queued op whose job was published this long ago and never claimed is published again: its
   * message was lost or dead-lettered (e.g. it hit the delivery limit while etcd was flaky).
   * Default `max(60 s, 12 × intervalMs)`.
   */
  readonly staleAfterMs?: number;
  /**
   * The in-process bus (a single node): a publish there cannot be lost while the process lives,
   * and the start-up `sweep({ all: true })` covers a restart, so an unstamped op counts as
   * published when it was recorded (`createdAt`) and the API stamps nothing. Default false.
   */
  readonly publishedWhenRecorded?: boolean;
}

/**
 * Every `intervalMs`, a member that wins `tryAcquire('hearth-sweeper')` (one sweep at a time in
 * the cluster; the others skip the round) lists the cluster's queued ops and publishes those
 * whose `publishedAt` is still null and that are older than `intervalMs` — longer than the API's
 * bounded publish wait — stamping `publishedAt`. It also re-publishes an op whose job went out
 * more than `staleAfterMs` ago and was never claimed (the message was lost or dead-lettered),
 * at most once per `staleAfterMs`: nothing stays queued silently, and a job that can never run
 * shows up in the dead-letter metrics again and again. Publishing twice is harmless (the claim
 * drops the duplicate), so neither the lock nor the thresholds need to be exact; they only
 * avoid waste.
 *
 * `sweep({ all: true })` publishes every queued op whether stamped or not: on a single node the
 * in-process queue dies with the process while `publishedAt` stays stamped, so the worker calls
 * it once at start.
 *
 * Failure semantics: a round that cannot reach etcd or the broker is logged and skipped; the next
 * round tries again (publishedAt stays null until a publish is confirmed). Without a live
 * incarnation (session lost) no round runs. Killed mid-round: at worst some jobs were published
 * and not stamped, and go out again next round.
 */
export class RepublishSweeper {
  private readonly stop = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly deps: SweeperOptions) {}

  /** Starts the periodic rounds. Idempotent. */
  start(): void {
    if (this.stop.signal.aborted) return;
    this.loop ??= this.run();
  }

  /** One round; resolves with how many ops were published (0 when another member sweeps). */
  async sweep(options: { readonly all?: boolean } = {}): Promise<number> {
    const inc = this.deps.incarnations.current();
    if (!inc || this.stop.signal.aborted) return 0;
    const lock = await inc.locks.tryAcquire(SWEEPER_LOCK);
    if (!lock.ok) return 0;
    try {
      const now = this.deps.clock.now();
      const staleAfterMs = this.deps.staleAfterMs ?? Math.max(60_000, 12 * this.deps.intervalMs);
      const queued = await this.deps.store.listOps({ cluster: this.deps.cluster, ownership: 'queued' });
      const publishedAt = (op: OpRecord): number | null => op.publishedAt ?? (this.deps.publishedWhenRecorded ? op.createdAt : null);
      const ops = queued.filter((op) => {
        if (options.all) return true;
        const at = publishedAt(op);
        return at === null ? op.createdAt < now - this.deps.intervalMs : at < now - staleAfterMs;
      });
      let published = 0;
      for (const op of ops.slice(0, MAX_OPS_PER_SWEEP)) {
        if (this.stop.signal.aborted || lock.handle.signal.aborted) break;
        if (await this.deps.publisher.publish(op, this.stop.signal)) published++;
      }
      if (published > 0) this.deps.logger.info({ published, found: ops.length, all: options.all ?? false }, 'republished queued ops');
      return published;
    } finally {
      await lock.handle.release();
    }
  }

  /** Stops the rounds (a round in progress stops between ops). Idempotent. */
  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stop.signal.aborted) {
      try {
        await this.deps.clock.sleep(this.deps.intervalMs, this.stop.signal);
      } catch {
        return;
      }
      try {
        await this.sweep();
      } catch (err) {
        this.deps.logger.warn({ err }, 'a republish sweep failed; retrying next round');
      }
    }
  }
}
