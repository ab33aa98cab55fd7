/**
 * The replication fields of a cluster record (release 2) and the conditions a conditional update
 * of the record checks, with their codecs. Pure.
 */
import { InvalidInputError } from '../errors.js';
import type { OwnerRef } from '../identity.js';

/** The failover in flight on a cluster: recorded by the API, claimed and finished by one worker. */
export interface FailoverInFlight {
  /** The failover op's id: the job names it, and every write of the run compares it. */
  readonly opId: string;
  /** The backend to promote: a target's `backend_id`, or `default` to fail back. */
  readonly backendId: string;
  /** The backend epoch the failover promotes at (the record's `backendEpoch` + 1). */
  readonly epoch: number;
  readonly startedAtMs: number;
  /** The incarnation running it; null until a worker claims it (and after its claim is undone). */
  readonly owner: OwnerRef | null;
  /** True when the failover froze the cluster (it was not frozen): the result thaws it again. */
  readonly frozeIt: boolean;
}

/** A value a condition compares. */
export type ConditionValue = string | number | boolean | null;

/**
 * What a conditional update of a cluster record may check: a field of the record, or of the
 * failover in flight (`failover`: its op id, null when none; `failover.owner`: the claimant's
 * incarnation, null when unclaimed).
 */
export type ClusterConditionField = 'replicationStatus' | 'frozen' | 'disabled' | 'backendEpoch' | 'activeBackendId' | 'failover' | 'failover.owner';

/** Conditions of a conditional update: a value means equal, a list means one of (Cinder's `conditional_update`). */
export type ClusterExpect = Partial<Record<ClusterConditionField, ConditionValue | readonly ConditionValue[]>>;

/** The condition that did not hold, with what the record had. */
export interface FailedClusterCondition {
  readonly field: ClusterConditionField;
  readonly expected: ConditionValue | readonly ConditionValue[];
  readonly actual: ConditionValue;
}

/** The fields of a cluster record a conditional update may set. */
export interface ClusterFields {
  readonly disabled: boolean;
  readonly disabledReason: string | null;
  readonly frozen: boolean;
  readonly replicationStatus: string;
  readonly activeBackendId: string | null;
  /**
   * The backend epoch: raised by one at each failover (and failback); 0 until the first. Every
   * final write and driver call of an op carries the epoch it ran under, and one under an older
   * epoch is refused (docs/membership.md "Replication"). Absent in records of release 1: 0.
   */
  readonly backendEpoch: number;
  /** The `backend_id`s of the replication targets, as the members' drivers declare them; [] when none. */
  readonly replicationTargets: readonly string[];
  /** The failover in flight, from the API's acceptance to the result; null when none. */
  readonly failover: FailoverInFlight | null;
}

/** The value of a condition field in `record`. */
export function conditionValue(record: ClusterFields, field: ClusterConditionField): ConditionValue {
  if (field === 'failover') return record.failover?.opId ?? null;
  if (field === 'failover.owner') return record.failover?.owner?.incarnation ?? null;
  return record[field];
}

/** The first condition of `expect` that `record` does not meet, in the order written; undefined when all hold. */
export function failedCondition(record: ClusterFields, expect: ClusterExpect): FailedClusterCondition | undefined {
  for (const [field, expected] of Object.entries(expect) as [ClusterConditionField, ConditionValue | readonly ConditionValue[]][]) {
    const actual = conditionValue(record, field);
    const ok = Array.isArray(expected) ? (expected as readonly ConditionValue[]).includes(actual) : expected === actual;
    if (!ok) return { field, expected, actual };
  }
  return undefined;
}

/** Reads `replicationTargets` (absent: none). */
export function decodeTargets(value: unknown, what: string): readonly string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new InvalidInputError(`${what}: replicationTargets must be a list of strings`);
  return value;
}

function decodeOwner(value: unknown, what: string): OwnerRef | null {
  if (value === null || value === undefined) return null;
  const o = value as Record<string, unknown>;
  if (typeof value !== 'object' || typeof o.host !== 'string' || typeof o.incarnation !== 'string' || typeof o.aliveRevision !== 'string') {
    throw new InvalidInputError(`${what}: failover.owner must be null or { host, incarnation, aliveRevision }`);
  }
  return { host: o.host, incarnation: o.incarnation, aliveRevision: o.aliveRevision };
}

/** Reads `failover` (absent: none). */
export function decodeFailover(value: unknown, what: string): FailoverInFlight | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) throw new InvalidInputError(`${what}: failover must be an object or null`);
  const o = value as Record<string, unknown>;
  const { opId, backendId, epoch, startedAtMs, frozeIt } = o;
  if (typeof opId !== 'string' || typeof backendId !== 'string' || typeof epoch !== 'number' || typeof startedAtMs !== 'number' || typeof frozeIt !== 'boolean') {
    throw new InvalidInputError(`${what}: failover must have opId, backendId, epoch, startedAtMs and frozeIt`);
  }
  return { opId, backendId, epoch, startedAtMs, owner: decodeOwner(o.owner, what), frozeIt };
}
