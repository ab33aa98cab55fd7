import { CoordinatorError, FencedError, isRetryable } from '../errors.js';
import type { OwnerRef } from '../identity.js';
import type { Clock } from '../lifecycle/clock.js';
import { Backoff } from '../lifecycle/retry.js';
import type { Member, Membership } from '../membership/membership.js';
import type { Logger } from '../observability/logger.js';
import type { FailedCondition } from '../state/expect.js';
import type { OpRecord, ResourceType, VolumeRecord } from '../state/records.js';
import type { SnapshotStatus, VolumeStatus } from '../state/state-machine.js';
import type { OpFilter, Patch, StateStore } from '../state/state-store.js';
import { type CreatingAction, type FinalSet, planCleanup } from './cleanup-actions.js';
import { findOrphans, type Orphan } from './find-orphans.js';
import type { FailoverLedger } from './failover-ledger.js';
import type { FailoverReason, OrphanMetrics } from './metrics.js';
import type { TakeoverClaimer, TakeoverRunner } from './takeover.js';

/** Which orphans a cleanup takes; every field given must match. */
export interface CleanupScope {
  /** Ops owned by (any dead incarnation of) this host. */
  readonly ownerHost?: string;
  /** Ops of this cluster. */
  readonly cluster?: string;
  readonly resourceType?: ResourceType;
  readonly resourceId?: string;
}

/** An orphan this incarnation claimed, with what it knew when it claimed it. */
export interface ClaimedOrphan {
  readonly orphan: Orphan;
  /** The op as the claim wrote it: owned by this incarnation. */
  readonly op: OpRecord;
  readonly me: Member;
  readonly reason: FailoverReason;
}

/** What one cleanup did. */
export interface CleanupReport {
  /** Orphans found in the scope. */
  readonly found: number;
  /** Claimed and brought to a final status. */
  readonly cleaned: number;
  /** Lost the claim (another cleaner, or the op changed, or the owner lives). */
  readonly skipped: number;
  /** Not claimed yet: the owner is dead but not fenced; cleaned once it is (in the background). */
  readonly awaitingFence: number;
  readonly errors: number;
}

/** What an {@link OrphanCleaner} needs. */
export interface OrphanCleanerOptions {
  readonly store: StateStore;
  readonly membership: Pick<Membership, 'snapshot'>;
  /** The live incarnation of this worker, if any. */
  readonly member: () => Member | undefined;
  readonly claimer: TakeoverClaimer;
  readonly runner: TakeoverRunner;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: OrphanMetrics;
  /** Which deaths have been counted (`hearth_failovers_total` once per death, cluster-wide). */
  readonly ledger: FailoverLedger;
  /** `orphans.creatingAction`. */
  readonly creatingAction: CreatingAction;
  /** When an incarnation was seen to die, if known (the detector's memory). */
  readonly deathOf: (incarnation: string) => number | undefined;
  /** Orphans cleaned at once. */
  readonly concurrency?: number;
  /** Called after a batch of cleanup actions finished (the detector sweeps again, so the gauge drops at once). */
  readonly onCleaned?: () => void;
  /**
   * Asks for the fence of a dead owner and waits for it (bounded by `signal`); true once its end
   * is on record. Orphans of an owner not fenced yet are cleaned as soon as it is.
   */
  readonly awaitFence?: (owner: OwnerRef, cluster: string, signal: AbortSignal) => Promise<boolean>;
}

/** Waits before a cleanup action that failed in passing (say, the driver) is tried again. */
const CLEANUP_ACTION_RETRY = new Backoff({ initialDelayMs: 1_000, maxDelayMs: 30_000, jitter: 'none' });

const EMPTY: CleanupReport = { found: 0, cleaned: 0, skipped: 0, awaitingFence: 0, errors: 0 };

function add(a: CleanupReport, b: Partial<CleanupReport>): CleanupReport {
  return {
    found: a.found + (b.found ?? 0),
    cleaned: a.cleaned + (b.cleaned ?? 0),
    skipped: a.skipped + (b.skipped ?? 0),
    awaitingFence: a.awaitingFence + (b.awaitingFence ?? 0),
    errors: a.errors + (b.errors ?? 0),
  };
}

/**
 * Cleans up orphans as one live member of their cluster: lists them, takes each with one claim
 * that proves its owner dead and the op unchanged since it was listed (exactly one cleaner wins;
 * the losers skip it), then runs the op kind's cleanup action (`cleanup-actions.ts`), which ends
 * in one fenced transition made by this incarnation.
 *
 * Failure semantics: a claim or action that fails (etcd unreachable, the driver failing hard) is
 * counted as `error` and logged with the op's ids; the others go on. A claimed op whose action
 * failed stays owned by this incarnation: while this member lives, its own worker finishes it
 * on the op's next job or it is cleaned again after this incarnation dies — it is never lost.
 * If this incarnation stops being alive mid-way, every later claim and write is fenced off and
 * nothing more is written. A process killed between claim and action leaves the op owned by a
 * dead incarnation: an orphan again, found and cleaned like any other (every action is
 * idempotent).
 */
export class OrphanCleaner {
  private readonly stop = new AbortController();
  private readonly background = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;

  constructor(private readonly options: OrphanCleanerOptions) {}

  /** The orphans in `scope` now: ops listed first, then the alive members. */
  async find(scope: CleanupScope): Promise<Orphan[]> {
    const filter: OpFilter = {
      ownership: 'owned',
      ...(scope.ownerHost === undefined ? {} : { ownerHost: scope.ownerHost }),
      ...(scope.cluster === undefined ? {} : { cluster: scope.cluster }),
      ...(scope.resourceType === undefined ? {} : { type: scope.resourceType }),
    };
    const ops = (await this.options.store.listOps(filter)).filter((op) => scope.resourceId === undefined || op.id === scope.resourceId);
    if (ops.length === 0) return [];
    const { alive } = await this.options.membership.snapshot();
    const deaths = new Map<string, number>();
    for (const op of ops) {
      const died = op.owner ? this.options.deathOf(op.owner.incarnation) : undefined;
      if (op.owner && died !== undefined) deaths.set(op.owner.incarnation, died);
    }
    return findOrphans(ops, alive, this.options.clock.now(), deaths);
  }

  /**
   * Finds, claims and cleans every orphan in `scope`, and resolves when all are done. With
   * `fenceWaitMs`, it first waits (that long at most) for the fences of the orphans' dead owners,
   * so that the report covers them; orphans whose owner is still not fenced then are cleaned in
   * the background once it is (counted as `awaitingFence`).
   */
  async clean(scope: CleanupScope, reason: FailoverReason, signal?: AbortSignal, options: { readonly fenceWaitMs?: number } = {}): Promise<CleanupReport> {
    const orphans = await this.find(scope);
    const awaitFence = this.options.awaitFence;
    if (options.fenceWaitMs !== undefined && awaitFence && orphans.length > 0) {
      const wait = AbortSignal.any([this.stop.signal, AbortSignal.timeout(options.fenceWaitMs), ...(signal ? [signal] : [])]);
      const owners = new Map(orphans.map((o) => [o.owner.incarnation, o] as const));
      await Promise.all([...owners.values()].map((o) => awaitFence(o.owner, o.op.cluster, wait).catch(() => false)));
    }
    return this.cleanOrphans(orphans, reason, signal);
  }

  /** Claims and cleans the given orphans (as listed), and resolves when all are done. */
  async cleanOrphans(orphans: readonly Orphan[], reason: FailoverReason, signal?: AbortSignal): Promise<CleanupReport> {
    const { claimed, report } = await this.claimAll(orphans, reason);
    return add(report, await this.finishAll(claimed, signal));
  }

  /**
   * Claims each orphan (one write each, proving its owner dead); the ops claimed are this
   * incarnation's from then on, so a caller may acknowledge the request before finishing them.
   */
  async claimAll(orphans: readonly Orphan[], reason: FailoverReason): Promise<{ claimed: ClaimedOrphan[]; report: CleanupReport }> {
    const claimed: ClaimedOrphan[] = [];
    const awaiting: Orphan[] = [];
    let report: CleanupReport = { ...EMPTY, found: orphans.length };
    for (const orphan of orphans) {
      if (this.stop.signal.aborted) break;
      const me = this.options.member();
      if (!me?.joined) {
        this.options.logger.warn({ remaining: orphans.length - claimed.length }, 'not a live member (any more): leaving the remaining orphans to others');
        report = add(report, { errors: 1 });
        this.options.metrics.cleanup('error');
        break;
      }
      const outcome = await this.claimOne(orphan, me, reason);
      if (outcome === 'stop') {
        report = add(report, { errors: 1 });
        break;
      }
      if (outcome === 'skipped' || outcome === 'error') report = add(report, { [outcome === 'skipped' ? 'skipped' : 'errors']: 1 });
      else if (outcome === 'awaiting-fence') awaiting.push(orphan);
      else claimed.push(outcome);
    }
    this.cleanAfterFence(awaiting, reason);
    return { claimed, report: add(report, { awaitingFence: awaiting.length }) };
  }

  /**
   * Orphans whose dead owner is not fenced yet: asks for each owner's fence and cleans its
   * orphans (as listed) once the fence is on record, in the background; {@link close} waits.
   */
  private cleanAfterFence(orphans: readonly Orphan[], reason: FailoverReason): void {
    const awaitFence = this.options.awaitFence;
    if (!awaitFence || orphans.length === 0) return;
    const byOwner = new Map<string, Orphan[]>();
    for (const o of orphans) byOwner.set(o.owner.incarnation, [...(byOwner.get(o.owner.incarnation) ?? []), o]);
    for (const group of byOwner.values()) {
      const first = group[0] as Orphan;
      const run = (async () => {
        if (!(await awaitFence(first.owner, first.op.cluster, this.stop.signal))) return;
        const report = await this.cleanOrphans(group, reason, this.stop.signal);
        this.options.logger.info({ ...report, owner: first.owner.incarnation }, 'cleaned up the orphans of an owner once it was fenced');
      })().catch((err: unknown) => this.options.logger.warn({ err, owner: first.owner.incarnation }, 'cleaning up after a fence failed; the orphans stay for the next cleanup'));
      this.background.add(run);
      void run.finally(() => this.background.delete(run));
    }
  }

  private async claimOne(orphan: Orphan, me: Member, reason: FailoverReason): Promise<ClaimedOrphan | 'skipped' | 'awaiting-fence' | 'error' | 'stop'> {
    const { op, owner } = orphan;
    const ids = { type: op.type, id: op.id, opId: op.opId, kind: op.kind, ownerIncarnation: owner.incarnation };
    try {
      const result = await this.options.claimer.claimOp(op, me, { ownerDead: true });
      if (!result.ok) {
        if (result.reason === 'fenced') {
          this.options.metrics.cleanup('error');
          this.options.logger.warn({ ...ids, err: result.error }, 'this incarnation is no longer alive: it claims no more orphans');
          return 'stop';
        }
        if (result.reason === 'awaiting-fence') {
          this.options.logger.info(ids, 'orphan not claimed yet: its dead owner is not fenced yet');
          return 'awaiting-fence';
        }
        this.options.metrics.cleanup('skipped');
        this.options.logger.info({ ...ids, why: result.reason === 'owner-alive' ? 'its owner is alive' : result.failed }, 'orphan not claimed (another cleaner took it, or it changed)');
        return 'skipped';
      }
      const claimedAt = this.options.clock.now();
      const died = this.options.deathOf(owner.incarnation);
      const first = await this.countFailover(op.cluster, reason, owner.incarnation, me, died === undefined ? undefined : claimedAt - died);
      this.options.logger.info(
        { ...ids, status: op.status, reason, by: me.owner.incarnation, attempt: result.op.attempt, sinceDeathMs: died === undefined ? null : claimedAt - died, failover: first },
        'took over an orphaned operation',
      );
      return { orphan, op: result.op, me, reason };
    } catch (err) {
      this.options.metrics.cleanup('error');
      this.options.logger.error({ ...ids, err }, 'claiming an orphan failed');
      return 'error';
    }
  }

  /**
   * Counts a failover at the first op of a dead incarnation that anyone in the cluster took
   * over: this process asks the ledger once per death. When etcd cannot say, it counts here (a
   * death may then count twice, never zero times).
   */
  private async countFailover(cluster: string, reason: FailoverReason, dead: string, me: Member, durationMs: number | undefined): Promise<boolean> {
    if (!this.options.metrics.firstInProcess(dead)) return false;
    let first: boolean;
    try {
      first = await this.options.ledger.first(dead, me.owner);
    } catch (err) {
      this.options.logger.warn({ err, deadIncarnation: dead }, 'could not record the failover in the ledger; counting it here');
      first = true;
    }
    if (first) this.options.metrics.failover(cluster, reason, durationMs);
    return first;
  }

  /**
   * Runs the cleanup action of every claimed orphan, a few at a time. One that failed for a
   * passing reason (etcd unreachable) is counted as an error and retried in the background
   * while this incarnation lives: the op is ours now, and nobody else would finish it.
   */
  async finishAll(claimed: readonly ClaimedOrphan[], signal?: AbortSignal): Promise<CleanupReport> {
    let report = EMPTY;
    const queue = [...claimed];
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
        const result = await this.finish(next, signal);
        if (result === 'retry') this.retryInBackground(next);
        report = add(report, { [result === 'cleaned' ? 'cleaned' : result === 'skipped' ? 'skipped' : 'errors']: 1 });
      }
    };
    const width = Math.max(1, Math.min(this.options.concurrency ?? 4, queue.length));
    await Promise.all(Array.from({ length: width }, worker));
    if (claimed.length > 0) this.options.onCleaned?.();
    return report;
  }

  /** Finishes claimed orphans in the background; {@link close} waits for them. */
  finishInBackground(claimed: readonly ClaimedOrphan[]): void {
    if (claimed.length === 0) return;
    const run = this.finishAll(claimed, this.stop.signal).catch((err: unknown) => this.options.logger.error({ err }, 'background orphan cleanup failed'));
    this.background.add(run);
    void run.finally(() => this.background.delete(run));
  }

  /** Tries a failed cleanup action again with capped backoff, until done or this incarnation ends. */
  private retryInBackground(claimed: ClaimedOrphan): void {
    const run = (async () => {
      const stop = AbortSignal.any([this.stop.signal, claimed.me.signal]);
      for (let failures = 1; ; failures++) {
        if (!(await CLEANUP_ACTION_RETRY.wait(failures, this.options.clock, stop))) return;
        if (!claimed.me.joined) return;
        if ((await this.finish(claimed)) !== 'retry') {
          this.options.onCleaned?.();
          return;
        }
      }
    })();
    this.background.add(run);
    void run.finally(() => this.background.delete(run));
  }

  /** The cleanup action of one claimed orphan; see `cleanup-actions.ts`. */
  private async finish(claimed: ClaimedOrphan, signal?: AbortSignal): Promise<'cleaned' | 'skipped' | 'error' | 'retry'> {
    const { op, me } = claimed;
    const ids = { type: op.type, id: op.id, opId: op.opId, kind: op.kind };
    try {
      const record = await this.options.store.get({ type: op.type, id: op.id });
      if (!record) {
        this.options.metrics.cleanup('skipped');
        this.options.logger.info(ids, 'the orphan\'s resource is gone; nothing to clean');
        return 'skipped';
      }
      const plan = planCleanup(op, record, this.options.creatingAction);
      if (plan.type === 'rerun') {
        const stop = signal ? AbortSignal.any([signal, this.stop.signal]) : this.stop.signal;
        const { result, status } = await this.options.runner.run(op, { signal: stop, reason: 'cleanup' });
        const ok = result === 'success' || result === 'error';
        this.options.metrics.cleanup(ok ? 'cleaned' : result === 'gone' ? 'skipped' : 'error');
        this.options.logger.info({ ...ids, action: 're-run', result, status }, ok ? 'orphan cleaned up' : 'orphan re-run did not finish');
        return ok ? 'cleaned' : result === 'gone' ? 'skipped' : 'error';
      }
      const write = await finalTransition(this.options.store, op, plan.set, me);
      if (!write.ok) {
        this.options.metrics.cleanup('skipped');
        this.options.logger.info({ ...ids, failed: write.failed }, 'the orphan changed after the claim (reset by an admin?); left as it is');
        return 'skipped';
      }
      this.options.metrics.cleanup('cleaned');
      this.options.logger.info({ ...ids, action: 'set status', status: plan.set.status }, 'orphan cleaned up');
      return 'cleaned';
    } catch (err) {
      this.options.metrics.cleanup('error');
      const fenced = err instanceof FencedError;
      const retry = !fenced && isRetryable(err) && me.joined;
      this.options.logger.error(
        { ...ids, err, code: err instanceof CoordinatorError ? err.code : undefined, retry },
        fenced ? 'orphan cleanup fenced off: this incarnation is no longer alive' : 'orphan cleanup failed',
      );
      return retry ? 'retry' : 'error';
    }
  }

  /** Stops claiming, aborts re-runs in flight and waits for background work. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop.abort();
      await Promise.allSettled([...this.background]);
    })();
    return this.closing;
  }
}

/**
 * The one fenced transition that ends a "status →" cleanup: the op's transitional status and the
 * cleaner's ownership of the op are expected; the final status, `host` = the cleaner and
 * `updated_by` = its incarnation are written and the op removed, under the cleaner's alive fence.
 */
function finalTransition(store: StateStore, op: OpRecord, set: FinalSet, me: Member): Promise<{ readonly ok: boolean; readonly failed?: FailedCondition }> {
  const common = {
    expect: { status: op.status },
    expectOp: { opId: op.opId, owner: me.owner.incarnation },
    op: 'remove' as const,
    by: 'cleanup' as const,
    fence: me.fence(),
  };
  if (op.type === 'volume') {
    const volume: Patch<VolumeRecord> = {
      status: set.status as VolumeStatus,
      host: me.owner.host,
      updated_by: me.owner.incarnation,
      ...(set.attach_status === undefined ? {} : { attach_status: set.attach_status }),
      ...(set.attachments === undefined ? {} : { attachments: set.attachments, previous_status: null }),
    };
    return store.transition({ type: 'volume', id: op.id }, { ...common, set: volume });
  }
  return store.transition({ type: 'snapshot', id: op.id }, { ...common, set: { status: set.status as SnapshotStatus, host: me.owner.host, updated_by: me.owner.incarnation } });
}
