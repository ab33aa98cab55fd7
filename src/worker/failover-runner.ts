/**
 * The failover run: one durable operation on the cluster, recorded in the cluster record by the
 * API (`failover`), claimed there by one live member with a replicating driver, run, and its
 * result written back in one compare-and-swap. docs/membership.md "Replication".
 *
 * 1. Claim: `failover.owner` null → me, fenced by my alive key (exactly one member wins). A
 *    claimant that died (its alive key gone, and fenced: the fencing proof of issue 13) is taken
 *    over the same way, the claim proving it dead (`ownerGone`).
 * 2. Drain, bounded: the cluster is frozen, so no new run starts; the runs of live members in
 *    flight get up to `drainMs` to finish. Then raise the backend epoch to `failover.epoch`
 *    (idempotent): from then on no run of an older epoch can finish its final write — it hands
 *    its op back and runs again at the new epoch — and a replicating driver refuses its calls.
 * 3. `driver.replication.failover(backendId, epoch)` (idempotent: a takeover runs it again).
 * 4. One write: the result (membership/replication.ts `failoverResult`), expecting the op and
 *    me as its owner. Every member then serves the new backend from the record's watch event.
 */
import { AbortedError, FencedError, InvalidInputError } from '../errors.js';
import type { DriverReplication } from '../drivers/volume-driver.js';
import { allOf } from '../fence.js';
import type { OwnerRef } from '../identity.js';
import type { Incarnations } from '../incarnation/incarnation.js';
import type { Member, Membership } from '../membership/membership.js';
import type { FailoverResult, MembershipMetrics } from '../membership/metrics.js';
import type { ClusterRecord, FailoverInFlight } from '../membership/records.js';
import { claimFailover, DEFAULT_BACKEND_ID, type FailoverOutcome, finishFailover } from '../membership/replication.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Logger } from '../observability/logger.js';
import type { ClusterFollower } from './cluster-follower.js';

/** How often the drain looks at the ops in flight (a failover is rare; it waits at most `drainMs`). */
const DRAIN_POLL_MS = 200;

/** What a {@link FailoverRunner} needs. */
export interface FailoverRunnerOptions {
  readonly membership: Pick<Membership, 'updateCluster' | 'advanceEpoch' | 'ownerGone' | 'watch'>;
  readonly follower: Pick<ClusterFollower, 'record' | 'onRecord'>;
  readonly incarnations: Incarnations;
  readonly replication: DriverReplication;
  readonly cluster: string;
  readonly binary: string;
  readonly metrics?: Pick<MembershipMetrics, 'failovers'>;
  readonly logger: Logger;
  /** The owners (incarnations) of the cluster's ops being run now; absent: nothing is drained. */
  readonly inFlight?: () => Promise<readonly string[]>;
  /** How long the runs in flight get to finish before the epoch fences them off (default 0). */
  readonly drainMs?: number;
  readonly clock?: Clock;
  /** Resolves true once `owner` (dead) is fenced, false when it cannot be yet (worker/volume-manager's `awaitFence`). */
  readonly awaitFence?: (owner: OwnerRef, cluster: string, signal: AbortSignal) => Promise<boolean>;
}

/** See the module doc. Started by the worker role of a member whose driver replicates. */
export class FailoverRunner {
  private readonly stop = new AbortController();
  private readonly alive = new Set<string>();
  /** The members watch has listed the live members: only then can a claimant be known dead. */
  private synced = false;
  private running: string | undefined;
  private readonly unsubscribe: (() => void)[] = [];
  private watching: Promise<void> | undefined;

  constructor(private readonly o: FailoverRunnerOptions) {}

  /** Looks at the record now and at every change, every new incarnation of this member and every member that leaves. */
  start(): void {
    this.unsubscribe.push(this.o.follower.onRecord((record) => this.consider(record)));
    this.unsubscribe.push(this.o.incarnations.subscribe((e) => e.type === 'started' && this.consider(this.o.follower.record)));
    this.watching = this.watchMembers();
    this.consider(this.o.follower.record);
  }

  async close(): Promise<void> {
    this.stop.abort();
    for (const u of this.unsubscribe) u();
    await this.watching;
  }

  private async watchMembers(): Promise<void> {
    try {
      for await (const e of this.o.membership.watch(this.stop.signal)) {
        if (e.type === 'members-synced') {
          this.alive.clear();
          for (const m of e.members) this.alive.add(m.incarnation);
          this.synced = true;
          this.consider(this.o.follower.record);
        } else if (e.type === 'member-joined') {
          this.alive.add(e.member.incarnation);
        } else if (e.type === 'member-left') {
          this.alive.delete(e.member.incarnation);
          // Its failover (if it ran one) is an orphan now: take it over.
          if (this.o.follower.record?.failover?.owner?.incarnation === e.member.incarnation) this.consider(this.o.follower.record);
        }
      }
    } catch (err) {
      if (!this.stop.signal.aborted) this.o.logger.error({ err }, 'the failover runner stopped watching members');
    }
  }

  /**
   * Waits, bounded by `drainMs`, until no live member runs an op of the cluster (the freeze keeps
   * new ones from starting); what still runs after that is fenced off by the epoch.
   */
  private async drain(signal: AbortSignal): Promise<void> {
    const { inFlight, clock, drainMs = 0 } = this.o;
    if (!inFlight || !clock || drainMs <= 0) return;
    const until = clock.now() + drainMs;
    for (let round = 0; clock.now() < until && !signal.aborted; round++) {
      const running = (await inFlight().catch(() => [])).filter((incarnation) => this.alive.has(incarnation));
      if (running.length === 0) return;
      if (round === 0) this.o.logger.info({ running: running.length, drainMs }, 'waiting for the operations in flight before raising the backend epoch');
      await clock.sleep(DRAIN_POLL_MS, signal).catch(() => undefined);
    }
    this.o.logger.warn({ drainMs }, 'operations still in flight after the drain; the backend epoch fences them off (they run again at the new epoch)');
  }

  /** Claims and runs the failover `record` names, when it is unclaimed or its claimant died. */
  private consider(record: ClusterRecord | undefined): void {
    const f = record?.failover;
    const me = this.o.incarnations.current()?.member;
    if (!f || !me?.joined || this.running === f.opId || this.stop.signal.aborted) return;
    const owner = f.owner;
    if (owner && (!this.synced || owner.incarnation === me.owner.incarnation || this.alive.has(owner.incarnation))) return;
    this.running = f.opId;
    void this.claimAndRun(f, me)
      .catch((err: unknown) => this.o.logger.error({ err, opId: f.opId }, 'the failover run failed; it stays in the cluster record for the next member or restart'))
      .finally(() => {
        if (this.running === f.opId) this.running = undefined;
      });
  }

  private async claimAndRun(f: FailoverInFlight, me: Member): Promise<void> {
    const { membership, cluster, binary, logger } = this.o;
    const signal = AbortSignal.any([me.signal, this.stop.signal]);
    let fence = me.fence();
    if (f.owner) {
      // A takeover: the claimant must be fenced (it may still be running the driver) before its work moves.
      if (this.o.awaitFence && !(await this.o.awaitFence(f.owner, cluster, signal))) return;
      fence = allOf(me.fence(), membership.ownerGone(f.owner));
      logger.warn({ opId: f.opId, from: f.owner.incarnation }, 'taking over the failover of a member that died');
    }
    const claim = await membership.updateCluster(cluster, binary, { ...claimFailover(f.opId, me.owner, f.owner?.incarnation ?? null), fence });
    if (!claim.ok) return;
    logger.warn({ opId: f.opId, backend: f.backendId, epoch: f.epoch }, 'running the replication failover');
    let outcome: FailoverOutcome = { result: 'promoted' };
    await this.drain(signal);
    const raised = await membership.advanceEpoch(cluster, f.epoch, me.fence());
    if (!raised.ok) {
      logger.error({ opId: f.opId, epoch: f.epoch, actual: raised.actual }, 'the backend epoch is not where the failover expects it; failover-error');
      outcome = { result: 'error' };
    } else {
      try {
        await this.o.replication.failover(f.backendId, f.epoch, { signal, member: me.owner.host, opId: f.opId, incarnation: me.owner.incarnation, epoch: f.epoch });
      } catch (err) {
        if (err instanceof AbortedError || err instanceof FencedError) throw err;
        logger.error({ err, opId: f.opId, backend: f.backendId }, 'the driver\'s failover failed');
        outcome = { result: err instanceof InvalidInputError ? 'invalid-target' : 'error' };
      }
    }
    const done = await membership.updateCluster(cluster, binary, { ...finishFailover(f.opId, me.owner.incarnation, outcome), fence: me.fence() });
    if (!done.ok) {
      logger.warn({ opId: f.opId, ...(done.reason === 'condition' ? { failed: done.failed } : {}) }, 'the failover changed hands before its result could be written');
      return;
    }
    const result: FailoverResult = outcome.result === 'promoted' ? (f.backendId === DEFAULT_BACKEND_ID ? 'failed-back' : 'failed-over') : outcome.result;
    this.o.metrics?.failovers.inc({ result });
    logger.warn({ opId: f.opId, result, backend: done.record.activeBackendId ?? DEFAULT_BACKEND_ID, epoch: done.record.backendEpoch, status: done.record.replicationStatus }, 'replication failover finished');
  }
}
