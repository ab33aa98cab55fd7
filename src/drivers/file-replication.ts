/**
 * The file driver's replication (docs/drivers.md, "Replication"): the primary directory and
 * the targets' directories, which of them serves (the active backend) at which epoch, the
 * epoch fence every call passes, the synchronous copy to the replicas at the end of each call,
 * and the failover that promotes another directory.
 *
 * Replicas: while the primary serves, every target; while a target serves, the other targets —
 * the primary is taken as lost (its site failed) and is not written until a failback copies the
 * target's state back onto it. A call writes the active directory, then brings each replica's
 * copy of the files it touched up to date; a replica it cannot reach fails the call (retryable:
 * repeating it finishes the copy), so no call reports success for a change a failover could
 * lose.
 */
import { ClosedError, CoordinatorError, CopyError, DriverError, InvalidInputError } from '../errors.js';
import { type EpochMarker, raiseEpochMarker, readEpochMarker, StaleEpochError } from './epoch-markers.js';
import { type ReplicaCopyOptions, syncDirectory, syncFile } from './file-replica-sync.js';
import type { ReplicationTarget } from './replication-targets.js';
import {
  type DriverCall,
  type DriverContext,
  type DriverReplication,
  type DriverReplicationStatus,
  PRIMARY_BACKEND_ID,
  type ReplicationState,
} from './volume-driver.js';

/** Options of {@link FileReplication}. */
export interface FileReplicationOptions {
  /** The primary directory (`driver.fileDir`). */
  readonly primaryDir: string;
  readonly targets: readonly ReplicationTarget[];
  /** Reflink copies where the file system can (default true). */
  readonly reflink?: boolean;
  /** The copy program (default `cp`). */
  readonly copyCommand?: string;
  /** The driver's name in errors (default `file`); the fake driver keeps its simulated inventory the same way. */
  readonly driverName?: string;
  /** Called once a backend serves (its health check is prepared there). */
  readonly onServe?: (backendId: string) => Promise<void>;
}

/** Where one call works (see {@link FileReplication.layout}). */
export interface ReplicaLayout {
  readonly backendId: string;
  readonly activeDir: string;
  readonly replicaDirs: readonly string[];
  /** The backend ids of `replicaDirs`, in the same order. */
  readonly replicaIds: readonly string[];
  readonly epoch: number;
}

/** See the module doc. */
export class FileReplication implements DriverReplication {
  readonly targetIds: readonly string[];
  private readonly dirs: ReadonlyMap<string, string>;
  private readonly name: string;
  private active = PRIMARY_BACKEND_ID;
  private epoch = 0;
  private failedPromotion = false;
  private closed = false;

  constructor(private readonly options: FileReplicationOptions) {
    this.targetIds = options.targets.map((t) => t.backendId);
    this.name = options.driverName ?? 'file';
    this.dirs = new Map([[PRIMARY_BACKEND_ID, options.primaryDir], ...options.targets.map((t): [string, string] => [t.backendId, t.location])]);
  }

  /**
   * `enabled` (the primary serves), `failed-over` (a target serves), `failover-error` (the last
   * promotion on this member failed; it still serves what it served before), `disabled` (the
   * driver is closed: it serves and replicates nothing).
   */
  state(): ReplicationState {
    let status: DriverReplicationStatus = this.active === PRIMARY_BACKEND_ID ? 'enabled' : 'failed-over';
    if (this.failedPromotion) status = 'failover-error';
    if (this.closed) status = 'disabled';
    return { status, activeBackendId: this.active, epoch: this.epoch };
  }

  /** The directory of a backend. @throws InvalidInputError for an unknown id */
  dirOf(backendId: string): string {
    const dir = this.dirs.get(backendId);
    if (dir === undefined) {
      throw new InvalidInputError(`unknown replication backend_id ${JSON.stringify(backendId)}: the targets are ${this.targetIds.map((id) => JSON.stringify(id)).join(', ')} (and "${PRIMARY_BACKEND_ID}", the primary)`);
    }
    return dir;
  }

  /**
   * Where a call works, taken once at its start (a `serve()` meanwhile changes the next call's):
   * the active directory, and the replicas it copies its changes to — every other directory,
   * but never the primary while failed over.
   */
  layout(): ReplicaLayout {
    const active = this.active;
    const replicas = [...this.dirs].filter(([id]) => id !== active && (active === PRIMARY_BACKEND_ID || id !== PRIMARY_BACKEND_ID));
    return { backendId: active, activeDir: this.dirOf(active), replicaDirs: replicas.map(([, dir]) => dir), replicaIds: replicas.map(([id]) => id), epoch: this.epoch };
  }

  /**
   * The epoch fence of one call, before it writes anything: its epoch (0 when it names none)
   * must be the one this member serves, and no directory it would write may carry a newer one.
   *
   * @throws StaleEpochError when the call's epoch is older (not retryable); DriverError
   *   (retryable) when it is newer than this member serves: `serve()` has not caught up yet
   */
  async fenceCall(call: DriverCall, ctx: DriverContext, layout: ReplicaLayout): Promise<void> {
    const epoch = ctx.epoch ?? 0;
    if (epoch < layout.epoch) throw new StaleEpochError(this.name, call, epoch, layout.epoch, `this member (serving ${layout.backendId})`);
    if (epoch > layout.epoch) {
      throw new DriverError(this.name, call, `epoch ${epoch} is newer than the epoch ${layout.epoch} this member serves (${layout.backendId}): it has not applied the cluster's failover yet`, { retryable: true });
    }
    for (const dir of [layout.activeDir, ...layout.replicaDirs]) {
      let marker: EpochMarker | undefined;
      try {
        marker = await readEpochMarker(dir);
      } catch (err) {
        if (dir === layout.activeDir) throw err;
        throw this.replicaFailure(call, layout, dir, err);
      }
      if (marker !== undefined && marker.epoch > epoch) throw new StaleEpochError(this.name, call, epoch, marker.epoch, dir);
    }
  }

  /**
   * Brings every replica's copy of `names` (file names in the active directory) up to date.
   *
   * @throws DriverError (retryable) naming the replica that failed; AbortedError
   */
  async replicate(call: DriverCall, layout: ReplicaLayout, names: readonly string[], copy: ReplicaCopyOptions): Promise<void> {
    for (const replica of layout.replicaDirs) {
      try {
        for (const name of names) await syncFile(layout.activeDir, replica, name, copy);
      } catch (err) {
        if (err instanceof CoordinatorError && !(err instanceof CopyError)) throw err;
        throw this.replicaFailure(call, layout, replica, err);
      }
    }
  }

  /** A replica that cannot be read or written: the call fails, retryably (repeating it finishes the copy). */
  private replicaFailure(call: DriverCall, layout: ReplicaLayout, replica: string, err: unknown): DriverError {
    const message = err instanceof Error ? err.message : String(err);
    return new DriverError(this.name, call, `replica ${replica} of ${layout.activeDir} cannot be reached: ${message}`, { cause: err, retryable: true });
  }

  async serve(backendId: string, epoch: number): Promise<void> {
    if (this.closed) throw new ClosedError(`${this.name} volume driver`);
    this.dirOf(backendId);
    checkEpoch(epoch);
    await this.options.onServe?.(backendId);
    this.active = backendId;
    this.epoch = epoch;
    this.failedPromotion = false;
  }

  /**
   * 1. The newest marker among the directories it can reach says which backend served before
   *    (`from`; on a re-run at the same epoch, the marker's own `from`). An older epoch than
   *    the storage's is refused (StaleEpochError), and so is another backend at the same epoch;
   *    neither changes anything. A backend that cannot be reached is not promoted.
   * 2. The new epoch is written on every directory it can reach, the old side first: from now
   *    on calls under the old epoch are refused there. The promoted directory must take it.
   * 3. When `from` can be read, the promoted directory is made equal to it (files copied,
   *    removed); a failback must do this (the primary gets the target's changes), a failover to
   *    a target does it where the primary still answers, and goes on without it otherwise (the
   *    target already has what synchronous replication copied).
   * 4. The replicas of the new arrangement that answer are made equal to the promoted one.
   */
  async failover(backendId: string, epoch: number, ctx: DriverContext): Promise<void> {
    if (this.closed) throw new ClosedError(`${this.name} volume driver`);
    const newDir = this.dirOf(backendId);
    checkEpoch(epoch);
    // Refusals (a stale or conflicting failover) change nothing, the state included.
    const markers = await this.readMarkers();
    const newest = [...markers.values()].reduce<EpochMarker | undefined>((a, m) => (m !== undefined && (a === undefined || m.epoch > a.epoch) ? m : a), undefined);
    if (newest !== undefined && newest.epoch > epoch) throw new StaleEpochError(this.name, 'failover', epoch, newest.epoch, 'the storage');
    if (newest !== undefined && newest.epoch === epoch && newest.active !== backendId) {
      throw new DriverError(this.name, 'failover', `epoch ${epoch} already promoted ${JSON.stringify(newest.active)}, not ${JSON.stringify(backendId)}: a failover needs a new epoch`);
    }
    try {
      if (!markers.has(backendId)) throw new Error(`${newDir} cannot be reached`);
      const from = newest === undefined ? PRIMARY_BACKEND_ID : newest.epoch === epoch ? newest.from : newest.active;
      const marker: EpochMarker = { epoch, active: backendId, from };
      const fromDir = this.dirOf(from);
      for (const dir of [fromDir, ...[...this.dirs.values()].filter((d) => d !== fromDir)]) {
        try {
          await raiseEpochMarker(dir, marker);
        } catch (err) {
          if (dir === newDir) throw err;
          // An unreachable old side cannot be fenced here; the cluster's epoch still fences its members.
        }
      }
      const copy = this.copyOptions(ctx);
      if (from !== backendId) {
        try {
          await syncDirectory(fromDir, newDir, copy);
        } catch (err) {
          if (backendId === PRIMARY_BACKEND_ID || ctx.signal.aborted) throw err;
          // The primary's site is gone: the target serves what replication already put there.
        }
      }
      await this.options.onServe?.(backendId);
      this.active = backendId;
      this.epoch = epoch;
      for (const replica of this.layout().replicaDirs) {
        try {
          await syncDirectory(newDir, replica, copy);
        } catch (err) {
          if (ctx.signal.aborted) throw err;
          // A replica that does not answer fails the calls that write to it, retryably, until it does.
        }
      }
      this.failedPromotion = false;
    } catch (err) {
      this.failedPromotion = true;
      if (err instanceof CoordinatorError) throw err;
      const message = err instanceof Error ? err.message : String(err);
      throw new DriverError(this.name, 'failover', `promoting ${JSON.stringify(backendId)} at epoch ${epoch} failed: ${message}`, { cause: err, retryable: true });
    }
  }

  /** Marks the replication closed (`disabled`). */
  close(): void {
    this.closed = true;
  }

  /** The markers of every directory that answers. */
  private async readMarkers(): Promise<Map<string, EpochMarker | undefined>> {
    const markers = new Map<string, EpochMarker | undefined>();
    for (const [id, dir] of this.dirs) {
      try {
        markers.set(id, await readEpochMarker(dir));
      } catch {
        // Unreachable: it takes no part in choosing `from`.
      }
    }
    return markers;
  }

  private copyOptions(ctx: DriverContext): ReplicaCopyOptions {
    return {
      signal: ctx.signal,
      ...(this.options.reflink === undefined ? {} : { reflink: this.options.reflink }),
      ...(this.options.copyCommand === undefined ? {} : { command: this.options.copyCommand }),
    };
  }
}

/** The file names a call on `volume-<id>` / `snapshot-<id>` touches. */
export function volumeFile(id: string): string {
  return `volume-${id}`;
}

/** See {@link volumeFile}. */
export function snapshotFile(id: string): string {
  return `snapshot-${id}`;
}

function checkEpoch(epoch: number): void {
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new InvalidInputError(`a backend epoch is a whole number ≥ 0, got ${String(epoch)}`);
}
