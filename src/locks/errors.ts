import { CoordinatorError } from '../errors.js';

/** Who holds a lock, as far as the lock service can tell. */
export interface LockHolder {
  /** The holder's lock key (etcd), e.g. `/hearth/locks/vol-1-delete_volume/694d7c1b4f3e2a10`. */
  readonly key?: string;
  /** The holder's session lease id in lowercase hex (etcd); absent on a single node. */
  readonly leaseHex?: string;
  /** The holder's incarnation when it wrote one (hearth does; `etcdctl lock` does not). */
  readonly incarnation?: string;
}

/** Renders a holder for messages: `node1@rbd:694d… (lease 694d…)`, or `unknown`. */
export function describeHolder(holder: LockHolder | undefined): string {
  if (holder === undefined) return 'an unknown holder';
  if (holder.incarnation !== undefined && holder.leaseHex !== undefined) {
    return `${holder.incarnation} (lease ${holder.leaseHex})`;
  }
  if (holder.incarnation !== undefined) return holder.incarnation;
  if (holder.leaseHex !== undefined) return `lease ${holder.leaseHex} (not a hearth worker, e.g. etcdctl lock)`;
  return 'an unknown holder';
}

/**
 * An acquire did not get the lock within its timeout. Retryable: the holder may be done later.
 * Names the lock and, when it could be read, its current holder.
 */
export class LockTimeoutError extends CoordinatorError {
  readonly lockName: string;
  readonly holder: LockHolder | undefined;
  readonly timeoutMs: number;

  constructor(lockName: string, timeoutMs: number, holder: LockHolder | undefined, options?: ErrorOptions) {
    super('LOCK_TIMEOUT', `timed out after ${timeoutMs} ms waiting for lock ${lockName}, held by ${describeHolder(holder)}`, {
      ...options,
      retryable: true,
    });
    this.lockName = lockName;
    this.holder = holder;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The session that lock keys ride on is gone (lost or closed), or a waiter's own key vanished
 * (its lease expired). Not retryable on this lock service: the worker needs a new incarnation
 * (a new session and a lock service on it).
 */
export class LockLostError extends CoordinatorError {
  readonly lockName: string | undefined;

  constructor(lockName: string | undefined, message: string, options?: ErrorOptions) {
    super('LOCK_LOST', message, options);
    this.lockName = lockName;
  }
}

/** Another hearth process already owns the data directory. */
export class DataDirLockedError extends CoordinatorError {
  readonly dataDir: string;
  readonly lockPath: string;

  constructor(dataDir: string, lockPath: string, holder: string | undefined, options?: ErrorOptions) {
    super(
      'DATA_DIR_LOCKED',
      `data directory ${dataDir} is in use by another hearth process${holder ? ` (${holder})` : ''}; ` +
        `stop that process or choose another --data-dir (lock: ${lockPath})`,
      options,
    );
    this.dataDir = dataDir;
    this.lockPath = lockPath;
  }
}
