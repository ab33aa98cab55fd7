/**
 * Replication failover, freeze and thaw of a cluster as conditional updates of its record (pure:
 * no I/O). Each is one {@link ClusterChange}: the conditions Cinder checks (`cinder/volume/api.py`
 * `failover`, `freeze_host`, `thaw_host`) and what the change sets; the store applies it in one
 * compare-and-swap and answers which condition failed. docs/membership.md "Replication".
 */
import type { OwnerRef } from '../identity.js';
import type { ClusterChange } from './membership.js';
import { type ClusterRecord, NOT_CAPABLE } from './records.js';
import type { ClusterFields, FailedClusterCondition, FailoverInFlight } from './replication-fields.js';

/** Cinder's replication statuses of a cluster. */
export const ENABLED = 'enabled';
export const FAILING_OVER = 'failing-over';
export const FAILED_OVER = 'failed-over';
export const FAILOVER_ERROR = 'failover-error';

/** The `backend_id` that fails back to the primary (the driver port's `PRIMARY_BACKEND_ID`). */
export const DEFAULT_BACKEND_ID = 'default';

/** Cinder's `disabled_reason` of a cluster after a failover. */
export const FAILED_OVER_REASON = 'failed-over';

/** The statuses a failover starts from (Cinder's `expected_values`). */
export const FAILOVER_FROM: readonly string[] = [ENABLED, FAILED_OVER];

/**
 * What a member joining with a replicating driver records: its targets, and `enabled` on a
 * cluster that was `not-capable`. Undefined when the record says so already.
 */
export function replicationOnJoin(cluster: ClusterRecord, targetIds: readonly string[]): ClusterChange | undefined {
  const same = cluster.replicationTargets.length === targetIds.length && targetIds.every((t) => cluster.replicationTargets.includes(t));
  if (same && cluster.replicationStatus !== NOT_CAPABLE) return undefined;
  return {
    expect: {},
    set: (c) => ({ replicationTargets: [...targetIds], ...(c.replicationStatus === NOT_CAPABLE ? { replicationStatus: ENABLED } : {}) }),
  };
}

/** The API's step of a failover: `failing-over`, frozen, and the failover in flight recorded. */
export function startFailover(opId: string, backendId: string, nowMs: number): ClusterChange {
  return {
    expect: { replicationStatus: [...FAILOVER_FROM], failover: null },
    set: (c) => ({
      replicationStatus: FAILING_OVER,
      frozen: true,
      failover: { opId, backendId, epoch: c.backendEpoch + 1, startedAtMs: nowMs, owner: null, frozeIt: !c.frozen },
    }),
  };
}

/** Freeze: `frozen` False → True (Cinder's `freeze_host`). */
export const FREEZE: ClusterChange = { expect: { frozen: false }, set: () => ({ frozen: true }) };

/** Thaw: `frozen` True → False, not while a failover (which froze it) runs. */
export const THAW: ClusterChange = { expect: { frozen: true, failover: null }, set: () => ({ frozen: false }) };

/** A worker's claim of the failover `opId`: unclaimed, or (a takeover) owned by `from`, whose death the caller's fence proves. */
export function claimFailover(opId: string, owner: OwnerRef, from: string | null = null): Omit<ClusterChange, 'fence'> {
  return {
    expect: { failover: opId, 'failover.owner': from },
    set: (c) => ({ failover: { ...(c.failover as FailoverInFlight), owner } }),
  };
}

/** How a failover run ended. */
export type FailoverOutcome = { readonly result: 'promoted' } | { readonly result: 'invalid-target' } | { readonly result: 'error' };

/**
 * The fields a failover's result sets (Cinder's `finish_failover` updates), from the record as it
 * is. The backend epoch was raised before the driver ran, so every outcome records it.
 */
export function failoverResult(c: ClusterRecord, outcome: FailoverOutcome): Partial<ClusterFields> {
  const f = c.failover;
  if (!f) return {};
  const frozen = f.frozeIt ? false : c.frozen;
  const base = { failover: null, frozen, backendEpoch: f.epoch };
  switch (outcome.result) {
    case 'promoted':
      if (f.backendId === DEFAULT_BACKEND_ID) {
        const wasFailedOver = c.disabled && c.disabledReason === FAILED_OVER_REASON;
        return { ...base, replicationStatus: ENABLED, activeBackendId: null, ...(wasFailedOver ? { disabled: false, disabledReason: null } : {}) };
      }
      return { ...base, replicationStatus: FAILED_OVER, activeBackendId: f.backendId, disabled: true, disabledReason: FAILED_OVER_REASON };
    case 'invalid-target':
      // Cinder's InvalidReplicationTarget: back to where it was.
      return { ...base, replicationStatus: c.activeBackendId === null ? ENABLED : FAILED_OVER };
    case 'error':
      return { ...base, replicationStatus: FAILOVER_ERROR, disabled: true, disabledReason: c.disabledReason ?? FAILOVER_ERROR };
  }
}

/** The worker's final write of failover `opId` it owns (as `owner`). */
export function finishFailover(opId: string, owner: string, outcome: FailoverOutcome): Omit<ClusterChange, 'fence'> {
  return { expect: { failover: opId, 'failover.owner': owner }, set: (c) => failoverResult(c, outcome) };
}

/** Which backend a cluster serves now: what every member's driver must serve. */
export function servedBackend(c: Pick<ClusterRecord, 'activeBackendId' | 'backendEpoch'>): { readonly backendId: string; readonly epoch: number } {
  return { backendId: c.activeBackendId ?? DEFAULT_BACKEND_ID, epoch: c.backendEpoch };
}

/** The wording of Cinder's `_replication_db_change` when a condition fails, with hearth's reason for the ones Cinder lacks. */
export function replicationRefusal(cluster: string, failed: FailedClusterCondition, action: 'failover' | 'freeze' | 'thaw'): string {
  if (failed.field === 'replicationStatus') return `replication_status in ${cluster} must be ['enabled', 'failed-over'] and must be up to failover.`;
  if (failed.field === 'frozen') return `frozen in ${cluster} must be ${action === 'freeze' ? 'False' : 'True'} to failover.`;
  if (failed.field === 'failover') return `a failover of ${cluster} (op ${String(failed.actual)}) is in progress; ${action} it after the failover finished.`;
  return `${failed.field} in ${cluster} must be ${JSON.stringify(failed.expected)} (is ${JSON.stringify(failed.actual)}) to ${action}.`;
}
