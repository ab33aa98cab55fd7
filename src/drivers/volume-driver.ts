/**
 * The VolumeDriver port: what the volume manager asks of the storage backend.
 *
 * The manager calls a driver only while it holds the op's locks (Cinder's names:
 * `<volume>-delete_volume`, `<snapshot>-delete_snapshot`, …) and only after claiming the op,
 * so one call per resource runs at a time cluster-wide. Every call is nevertheless idempotent,
 * because a call can run again after its worker died before recording the outcome (cleanup
 * re-runs a delete; a takeover re-runs a create): repeating a call that succeeded succeeds and
 * changes nothing. Each call takes a {@link DriverContext} whose `signal` the driver honours
 * between steps (the manager aborts it when its lock or lease is lost).
 *
 * Errors: {@link DriverError} (`retryable` says whether the same call may succeed later),
 * `InvalidInputError` for an id or size the driver cannot accept, `AbortedError` when the
 * signal aborted (the call may have been partly done; repeating it is safe), `ClosedError`.
 * The manager maps a failed call to Cinder's error statuses (`error`, `error_deleting`,
 * `error_extending`, snapshot `error`/`error_deleting`).
 */
import { AbortedError, ActiveActiveUnsupportedError, InvalidInputError } from '../errors.js';

/** What every driver call carries. */
export interface DriverContext {
  /** Aborts the call (lock or lease lost, shutdown); honoured between steps. */
  readonly signal: AbortSignal;
  /** Host id of the member making the call, `<host>@<backend>`. */
  readonly member: string;
  /** The operation this call belongs to (the op record's id). */
  readonly opId: string;
  /** The incarnation making the call: a driver refuses calls of an incarnation it fenced. */
  readonly incarnation?: string;
  /**
   * True while the call's locks and lease still hold, computed from the clock on every read.
   * A process that has just woken (SIGSTOP, a long pause) may run one of the driver's own
   * completions before the loss timer aborts `signal`; this sees the loss at once, so a driver
   * that checks between steps starts no step after it. Absent: only `signal` counts.
   */
  readonly stillHeld?: () => boolean;
  /**
   * The cluster's backend epoch the call runs under (the cluster record's `backendEpoch`, raised
   * by every replication failover and failback). A replicating driver refuses a call whose epoch
   * is older than the one its active backend was promoted at, so a member that missed a failover
   * cannot touch the old primary. Absent: the driver does not check (drivers without
   * replication, or epoch 0).
   */
  readonly epoch?: number;
}

/** A replication target's id as Cinder names it (`backend_id`); `default` is the primary. */
export const PRIMARY_BACKEND_ID = 'default';

/** Cinder's `replication_status` of a driver, and of a cluster that has one. */
export type DriverReplicationStatus = 'enabled' | 'failed-over' | 'failover-error' | 'disabled';

/** Where a replicating driver serves volumes from now. */
export interface ReplicationState {
  readonly status: DriverReplicationStatus;
  /** The backend it serves from: a target's `backend_id`, or {@link PRIMARY_BACKEND_ID}. */
  readonly activeBackendId: string;
  /** The epoch at which that backend was promoted (0: never failed over). */
  readonly epoch: number;
}

/**
 * The replication half of a driver (Cinder's `failover_host`/`failover` and
 * `failover_completed`), present only when replication targets are configured.
 *
 * Which backend serves is the cluster's decision, recorded in the cluster record; a driver only
 * carries it out: {@link failover} promotes a backend at a new epoch (run once per failover by
 * the member that claimed it, and run again by the cleanup when that member died mid-way),
 * {@link serve} makes this member's driver serve the backend the cluster record names (every
 * member, on start-up, on rejoin and on the record's watch event). Both are idempotent.
 */
export interface DriverReplication {
  /** The `backend_id`s of the configured targets (never {@link PRIMARY_BACKEND_ID}). */
  readonly targetIds: readonly string[];
  /** What this member's driver serves from now. */
  state(): ReplicationState;
  /**
   * Promotes `backendId` (a target, or {@link PRIMARY_BACKEND_ID} to fail back) at `epoch`:
   * brings it up to date where the old side can still be read (a failback copies the target's
   * changes back to the primary first), then marks the epoch on the storage so that calls
   * under an older epoch are refused, and serves from it.
   *
   * @throws InvalidInputError for an unknown backend id; DriverError when the promotion failed
   *   (the cluster goes to `failover-error`; repeating it is safe).
   */
  failover(backendId: string, epoch: number, ctx: DriverContext): Promise<void>;
  /** Serves `backendId` at `epoch`, as the cluster record says; no copy. Idempotent. */
  serve(backendId: string, epoch: number): Promise<void>;
}

/** A volume to create. */
export interface VolumeSpec {
  readonly id: string;
  /** Size in GiB (Cinder's unit), a positive integer. */
  readonly sizeGiB: number;
}

/** An existing volume. */
export interface VolumeRef {
  readonly id: string;
}

/** An existing snapshot, as a copy's source. */
export interface SnapshotRef {
  readonly id: string;
}

/**
 * A consumer's description of itself (os-brick's connector: `host`, `initiator`, `ip`,
 * `mountpoint`, …), as the attachment API received it.
 */
export type Connector = Readonly<Record<string, unknown>>;

/**
 * What a consumer needs to connect to a volume (Cinder's `connection_info`):
 * `driver_volume_type` names the os-brick connector, `data` its arguments.
 */
export interface ConnectionInfo {
  readonly driver_volume_type: string;
  readonly data: Readonly<Record<string, unknown>>;
}

/** A snapshot of a volume. */
export interface SnapshotSpec {
  readonly id: string;
  readonly volumeId: string;
}

/**
 * What a backend health check found. `down` names why in words an operator can act on (the
 * marker is missing, a probe hung, the file system is full); it is logged and shown by
 * `os-services` only as `backend_state: down`.
 */
export type BackendHealth = { readonly state: 'up' } | { readonly state: 'down'; readonly reason: string };

/**
 * The pool as Cinder's scheduler sees it, in bytes: one pool per cluster on shared storage —
 * every member reports the same pool, and nobody sums the reports.
 */
export interface Capacity {
  /** Size of the backend (statfs: blocks × block size). */
  readonly totalBytes: number;
  /** Space still available to hearth (statfs: blocks available to an unprivileged writer). */
  readonly freeBytes: number;
  /** Apparent size of everything provisioned on the pool: volumes and snapshots (Cinder's `provisioned_capacity_gb`). */
  readonly provisionedBytes: number;
  /** Apparent size of the volumes hearth created on the pool (Cinder's `allocated_capacity_gb`). */
  readonly allocatedBytes: number;
  /** True when volumes are thin (sparse): Cinder's `thin_provisioning_support`. */
  readonly thin: boolean;
  /** How far provisioned space may exceed the pool (`driver.maxOverSubscriptionRatio`). */
  readonly maxOverSubscriptionRatio: number;
  /** Share of the pool kept free, 0–100 (`driver.reservedPercentage`). */
  readonly reservedPercentage: number;
}

/** The pool settings an operator gives a driver (Cinder's `max_over_subscription_ratio`, `reserved_percentage`). */
export interface PoolSettings {
  readonly maxOverSubscriptionRatio: number;
  readonly reservedPercentage: number;
}

/** Cinder's defaults: thin pools may be over-subscribed 20 times, nothing reserved. */
export const DEFAULT_POOL_SETTINGS: PoolSettings = { maxOverSubscriptionRatio: 20, reservedPercentage: 0 };

/** See the module doc. */
export interface VolumeDriver {
  /** The driver's name, as configured (`file`, `fake`). */
  readonly name: string;
  /**
   * True when several members may run calls against the same backend at once (Cinder's
   * `SUPPORTS_ACTIVE_ACTIVE`). A clustered worker refuses to start with a driver without it;
   * see {@link requireActiveActive}.
   */
  readonly supportsActiveActive: boolean;
  /** Creates the volume. Succeeds if it already exists with this size. */
  createVolume(volume: VolumeSpec, ctx: DriverContext): Promise<void>;
  /** Deletes the volume. Succeeds if it does not exist. */
  deleteVolume(volume: VolumeRef, ctx: DriverContext): Promise<void>;
  /**
   * Grows the volume to `newSizeGiB`. Succeeds if it already has that size; refuses to shrink
   * (DriverError, not retryable).
   */
  extendVolume(volume: VolumeRef, newSizeGiB: number, ctx: DriverContext): Promise<void>;
  /**
   * Creates `volume` as a copy of the volume `source` (Cinder's `create_cloned_volume`), grown to
   * `volume.sizeGiB` when that is larger. Succeeds if the copy already exists with this size.
   * The source is only read; the manager guarantees it is not deleted or extended meanwhile (the
   * source's hold), and several copies of one source may run at once.
   */
  createClonedVolume(volume: VolumeSpec, source: VolumeRef, ctx: DriverContext): Promise<void>;
  /**
   * Creates `volume` from the snapshot `snapshot` (Cinder's `create_volume_from_snapshot`),
   * grown to `volume.sizeGiB` when that is larger. Idempotent as {@link createClonedVolume}.
   */
  createVolumeFromSnapshot(volume: VolumeSpec, snapshot: SnapshotRef, ctx: DriverContext): Promise<void>;
  /** Snapshots the volume as it is now. Succeeds if the snapshot already exists. */
  createSnapshot(snapshot: SnapshotSpec, ctx: DriverContext): Promise<void>;
  /** Deletes the snapshot. Succeeds if it does not exist. */
  deleteSnapshot(snapshot: SnapshotSpec, ctx: DriverContext): Promise<void>;
  /**
   * Makes a volume reachable for `connector` and says how (Cinder's `initialize_connection`,
   * run for an attachment-update). Idempotent: connecting again answers the same. Absent: the
   * driver cannot attach (the attach fails and the attachment is `error_attaching`).
   */
  initializeConnection?(volume: VolumeRef, connector: Connector, ctx: DriverContext): Promise<ConnectionInfo>;
  /**
   * Ends what {@link initializeConnection} set up for `connector` (Cinder's
   * `terminate_connection`, run for an attachment-delete). Idempotent: succeeds when nothing is
   * connected. Absent: there is nothing to end.
   */
  terminateConnection?(volume: VolumeRef, connector: Connector | null, ctx: DriverContext): Promise<void>;
  /**
   * Fences a dead incarnation at the storage: from now on, calls made for it do nothing more
   * (a marker the driver checks between steps, a blocklist entry, a reservation). Run by the
   * fence runner before the fence is recorded; idempotent. Absent: the driver cannot fence, and
   * the fence relies on the method alone (docs/drivers.md).
   */
  fenceIncarnation?(incarnation: string): Promise<void>;
  /** Replication to other backends; absent when the driver has no targets (`not-capable`). */
  readonly replication?: DriverReplication;
  /**
   * Checks that the backend can take work now (docs/drivers.md says what each driver checks).
   * Never throws: a check that cannot finish is an answer (`down`, with why). Bounded in time,
   * and it never ties up the event loop or Node's file-system threads, whatever the storage
   * does; `signal` ends it early (as `down`).
   */
  health(signal?: AbortSignal): Promise<BackendHealth>;
  /**
   * The pool's capacity now.
   *
   * @throws BackendUnavailableError when it cannot be read (a statfs that fails or hangs): an
   *   unknown capacity is never reported as zero.
   */
  capacity(signal?: AbortSignal): Promise<Capacity>;
  /** Releases what the driver holds; later calls fail with ClosedError. Idempotent. */
  close(): Promise<void>;
}

/** The calls of {@link VolumeDriver}, by name. */
export type DriverCall =
  | 'createVolume'
  | 'deleteVolume'
  | 'extendVolume'
  | 'createSnapshot'
  | 'deleteSnapshot'
  | 'createClonedVolume'
  | 'createVolumeFromSnapshot'
  | 'initializeConnection'
  | 'terminateConnection';

/** Largest volume size accepted, in GiB (1 PiB). */
export const MAX_VOLUME_SIZE_GIB = 1024 * 1024;

/** Bytes in a GiB. */
export const GIB = 1024 ** 3;

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;

/**
 * Refuses a driver that does not support active/active when the worker is clustered, as
 * Cinder refuses `SUPPORTS_ACTIVE_ACTIVE = False` with `cluster` set.
 *
 * @throws ActiveActiveUnsupportedError
 */
export function requireActiveActive(driver: Pick<VolumeDriver, 'name' | 'supportsActiveActive'>, clustered: boolean): void {
  if (clustered && !driver.supportsActiveActive) throw new ActiveActiveUnsupportedError(driver.name);
}

/** Checks a volume or snapshot id: it becomes part of a file name. @throws InvalidInputError */
export function checkResourceId(id: string, what: string): void {
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
    throw new InvalidInputError(`${what} id ${JSON.stringify(id)} must be 1-255 letters, digits, ".", "_" or "-", not starting with a symbol`);
  }
}

/** Checks a size in GiB. @throws InvalidInputError */
export function checkSizeGiB(sizeGiB: number): void {
  if (!Number.isInteger(sizeGiB) || sizeGiB < 1 || sizeGiB > MAX_VOLUME_SIZE_GIB) {
    throw new InvalidInputError(`size must be a whole number of GiB from 1 to ${MAX_VOLUME_SIZE_GIB}, got ${String(sizeGiB)}`);
  }
}

/** Throws AbortedError when the call's signal has aborted or its locks or lease are gone. */
export function checkNotAborted(ctx: DriverContext, call: DriverCall): void {
  if (ctx.signal.aborted) throw new AbortedError(`driver call ${call}`, { cause: ctx.signal.reason });
  if (ctx.stillHeld && !ctx.stillHeld()) throw new AbortedError(`driver call ${call}: its locks or lease are gone`);
}
