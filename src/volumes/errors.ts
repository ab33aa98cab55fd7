import { CoordinatorError } from '../errors.js';
import { conditionInWords, type FailedCondition } from '../state/expect.js';

/**
 * A conditional change of a volume or snapshot was refused: one of its conditions did not hold
 * (Cinder's InvalidVolume / InvalidSnapshot). `failed` says which. Contention on the revision
 * itself (the record kept changing) is retryable.
 */
export class ConditionFailedError extends CoordinatorError {
  readonly resource: 'volume' | 'snapshot';
  readonly id: string;
  readonly failed: FailedCondition;

  constructor(resource: 'volume' | 'snapshot', id: string, failed: FailedCondition, action: string) {
    super('CONFLICT', conditionMessage(resource, failed, action), { retryable: failed.field === 'revision' });
    this.resource = resource;
    this.id = id;
    this.failed = failed;
  }
}

/** New volumes are refused because their cluster does not take them (e.g. it is disabled). */
export class ClusterDisabledError extends CoordinatorError {
  readonly cluster: string;

  constructor(cluster: string, reason: string) {
    super('CLUSTER_DISABLED', `Cluster ${cluster} does not accept new volumes: ${reason}`);
    this.cluster = cluster;
  }
}

/**
 * A management operation was refused because its cluster is frozen (Cinder's `assert_not_frozen`:
 * `InvalidInput`, HTTP 400). Nothing was recorded or queued.
 */
export class ClusterFrozenError extends CoordinatorError {
  readonly cluster: string;

  constructor(cluster: string, reason: string) {
    super('INVALID_INPUT', `Invalid input received: ${reason}`);
    this.cluster = cluster;
  }
}

const NOUN = { volume: 'Volume', snapshot: 'Snapshot' } as const;

/** Cinder-style message naming the failed condition, e.g. `Invalid volume: Volume status must be available or error to delete (status is in-use).` */
export function conditionMessage(resource: 'volume' | 'snapshot', failed: FailedCondition, action: string): string {
  const [owner, field] = failed.field.includes('.') ? (failed.field.split('.', 2) as [string, string]) : [resource, failed.field];
  const subject = owner === 'op' ? 'its operation' : NOUN[owner as 'volume' | 'snapshot'] ?? owner;
  const invalid = `Invalid ${owner === 'op' ? resource : owner}`;
  const actual = conditionInWords(failed.actual);
  switch (field) {
    case 'snapshots':
      return `${invalid}: ${subject} must have no snapshots to ${action} (it has ${actual}).`;
    case 'holds':
      return `${invalid}: ${subject} has ${actual} dependent volume${failed.actual === 1 ? '' : 's'} being created from it (source in use); ${action} it when they finish.`;
    case 'attach_status':
      return `${invalid}: ${subject} must not be attached to ${action} (attach_status is ${actual}).`;
    case 'migration_status':
      return `${invalid}: ${subject} must not be migrating to ${action} (migration_status is ${actual}).`;
    case 'exists':
      return owner === 'op' ? `${invalid}: ${NOUN[resource]} has an operation in progress.` : `${invalid}: ${subject} does not exist.`;
    case 'revision':
      return `${NOUN[resource]} changed while it was being updated; try again.`;
    default:
      return `${invalid}: ${subject} ${field} must be ${conditionInWords(failed.expected)} to ${action} (${field} is ${actual}).`;
  }
}
