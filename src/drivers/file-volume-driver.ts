/**
 * The `file` driver: volumes are sparse files on a directory every member mounts (as
 * Cinder's NFS driver keeps `volume-<id>` files on a share). `volume-<id>` has the volume's
 * size in bytes and allocates only what was written; `snapshot-<id>` is a copy made by
 * `cp --sparse=always --reflink=auto` (see `sparse-copy.ts`): a reflink where the file system
 * can, otherwise a copy of the data regions only, so it costs the data, not the size, and stays
 * sparse.
 *
 * New files appear atomically (see `atomic-file.ts`): they are written under a temporary name
 * in the same directory, flushed, then hard-linked to their final name (which fails instead of
 * overwriting if the name exists), and the directory is flushed. Extending is one `truncate`,
 * which readers see as either the old size or the new one — copying a volume to grow it would
 * cost its size. A clone or a volume from a snapshot is the same sparse copy of the source's file,
 * then grown by `truncate` to the size asked for.
 *
 * Failure semantics: a member that dies mid-call leaves at most a `.tmp-*` file, which never
 * becomes a volume or snapshot; repeating the call finishes the job. A shared directory that is
 * unreachable (NFS `ESTALE`, `EIO`) gives a retryable DriverError.
 *
 * Replication (`replicationTargets`; `file-replication.ts`): every call works on the active
 * backend's directory, passes the epoch fence first, and copies what it changed to the replicas
 * at its end.
 */
import { open, rm, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { FileReplication, type ReplicaLayout, snapshotFile, volumeFile } from './file-replication.js';
import type { ReplicationTarget } from './replication-targets.js';
import { BackendUnavailableError, ClosedError, CopyError, CoordinatorError, DriverError } from '../errors.js';
import { TRANSIENT_FS_CODES, writeAtomically } from './atomic-file.js';
import type { FileBackendCheck, FileSizes } from './file-backend-check.js';
import { FileBackendDirs, fencesOf } from './file-backend-dirs.js';
import { ProbeRunner } from './probe-runner.js';
import { copySparseFile } from './sparse-copy.js';
import {
  type BackendHealth,
  type Capacity,
  type ConnectionInfo,
  type Connector,
  checkNotAborted,
  checkResourceId,
  checkSizeGiB,
  type DriverCall,
  type DriverContext,
  DEFAULT_POOL_SETTINGS,
  GIB,
  type PoolSettings,
  PRIMARY_BACKEND_ID,
  type SnapshotRef,
  type SnapshotSpec,
  type VolumeDriver,
  type VolumeRef,
  type VolumeSpec,
} from './volume-driver.js';

/** Options of {@link FileVolumeDriver}. */
export interface FileVolumeDriverOptions {
  /** The shared directory (`driver.fileDir`). */
  readonly dir: string;
  /** Let copies be reflinks where the file system can (default true); tests turn it off to exercise the copy. */
  readonly clone?: boolean;
  /** The copy program (default `cp` on `PATH`); tests point it elsewhere. */
  readonly copyCommand?: string;
  /** The cluster id the directory's marker names (default `hearth@default`). */
  readonly cluster?: string;
  /** Where this member remembers the directory's marker (its data directory); none: it remembers nothing. */
  readonly stateDir?: string;
  /** This member's host id, for its probe file's name (default the process id). */
  readonly member?: string;
  /** How long one health or capacity probe may take (default 5 s). */
  readonly probeTimeoutMs?: number;
  /** Free space below which the backend is down (default 1 MiB). */
  readonly minFreeBytes?: number;
  /** Over-subscription and reserve of the pool. */
  readonly pool?: PoolSettings;
  /** The shell that runs probes (default `sh`); tests point it elsewhere. */
  readonly shell?: string;
  /** Replication targets (`driver.replicationTargets`): directories kept equal to the active one. None: no replication. */
  readonly replicationTargets?: readonly ReplicationTarget[];
}

/** See the module doc. */
export class FileVolumeDriver implements VolumeDriver {
  readonly name = 'file';
  /** A directory every member mounts is shared storage: several members may use it at once. */
  readonly supportsActiveActive = true;
  private closed = false;
  private readonly probes: ProbeRunner;
  /** Each backend directory and its health check (the primary's alone without replication). */
  private readonly dirs: FileBackendDirs;
  /** Present when targets are configured. */
  readonly replication?: FileReplication;

  private constructor(private readonly options: FileVolumeDriverOptions) {
    this.probes = new ProbeRunner(options.shell);
    this.dirs = FileBackendDirs.of(options, this.probes);
    const targets = options.replicationTargets ?? [];
    if (targets.length > 0) {
      this.replication = new FileReplication({
        primaryDir: options.dir,
        targets,
        ...(options.clone === undefined ? {} : { reflink: options.clone }),
        ...(options.copyCommand === undefined ? {} : { copyCommand: options.copyCommand }),
        onServe: async (backendId) => {
          await this.dirs.prepared(backendId);
        },
      });
    }
  }

  /**
   * Creates the directory if needed, adopts or writes its cluster marker, and returns the driver.
   * With replication, every directory is prepared where it answers; one that does not (a site
   * that is down while this member starts) is prepared when it is first served or checked.
   */
  static async open(options: FileVolumeDriverOptions): Promise<FileVolumeDriver> {
    const driver = new FileVolumeDriver(options);
    if (driver.replication === undefined) {
      await driver.dirs.prepared(PRIMARY_BACKEND_ID);
      return driver;
    }
    for (const { backendId } of driver.dirs.all()) await driver.dirs.prepared(backendId).catch(() => undefined);
    return driver;
  }

  /** The marker, a write probe and free space of the active backend's directory; see `file-backend-check.ts`. */
  async health(signal?: AbortSignal): Promise<BackendHealth> {
    if (this.closed) return { state: 'down', reason: 'the file volume driver is closed' };
    let check: FileBackendCheck;
    try {
      check = await this.dirs.preparedCheck(this.activeBackendId);
    } catch (err) {
      return { state: 'down', reason: err instanceof Error ? err.message : String(err) };
    }
    return check.health(signal);
  }

  /**
   * statfs, and the apparent sizes of the volume and snapshot files: one listing of the
   * directory and one stat per file, in the probe's child process.
   */
  async capacity(signal?: AbortSignal): Promise<Capacity> {
    if (this.closed) throw new ClosedError('file volume driver');
    let check: FileBackendCheck;
    try {
      check = await this.dirs.preparedCheck(this.activeBackendId);
    } catch (err) {
      throw new BackendUnavailableError('filesystem', err instanceof Error ? err.message : String(err), { cause: err });
    }
    const { fs, sizes } = await check.capacity(true, signal);
    const known: FileSizes = sizes ?? { volumeBytes: 0, snapshotBytes: 0 };
    const pool = this.options.pool ?? DEFAULT_POOL_SETTINGS;
    return {
      totalBytes: fs.totalBytes,
      freeBytes: fs.freeBytes,
      allocatedBytes: known.volumeBytes,
      provisionedBytes: known.volumeBytes + known.snapshotBytes,
      thin: true,
      maxOverSubscriptionRatio: pool.maxOverSubscriptionRatio,
      reservedPercentage: pool.reservedPercentage,
    };
  }

  /** The backend calls work on now (the primary, `default`, without replication). */
  get activeBackendId(): string {
    return this.replication?.state().activeBackendId ?? PRIMARY_BACKEND_ID;
  }

  /** The directory calls work on now. */
  get activeDir(): string {
    return this.replication?.layout().activeDir ?? this.options.dir;
  }

  /** Path of a volume's file (in the active directory). */
  volumePath(id: string, dir = this.activeDir): string {
    return join(dir, volumeFile(id));
  }

  /** Path of a snapshot's file (in the active directory). */
  snapshotPath(id: string, dir = this.activeDir): string {
    return join(dir, snapshotFile(id));
  }

  async createVolume(volume: VolumeSpec, ctx: DriverContext): Promise<void> {
    await this.run('createVolume', ctx, [volumeFile(volume.id)], async (dir, step) => {
      checkResourceId(volume.id, 'volume');
      checkSizeGiB(volume.sizeGiB);
      const target = this.volumePath(volume.id, dir);
      const bytes = volume.sizeGiB * GIB;
      if (await this.hasSize(target, bytes, 'createVolume')) return;
      const write = async (tmp: string): Promise<void> => {
        const fh = await open(tmp, 'wx', 0o600);
        try {
          await fh.truncate(bytes);
        } finally {
          await fh.close();
        }
      };
      await writeAtomically(target, write, { checkpoint: step });
      // Another member may have won a race without locks: same size is the same volume.
      if (!(await this.hasSize(target, bytes, 'createVolume'))) throw new DriverError(this.name, 'createVolume', `volume ${volume.id} vanished`);
    });
  }

  async deleteVolume(volume: VolumeRef, ctx: DriverContext): Promise<void> {
    await this.run('deleteVolume', ctx, [volumeFile(volume.id)], async (dir) => {
      checkResourceId(volume.id, 'volume');
      await rm(this.volumePath(volume.id, dir), { force: true });
    });
  }

  async extendVolume(volume: VolumeRef, newSizeGiB: number, ctx: DriverContext): Promise<void> {
    await this.run('extendVolume', ctx, [volumeFile(volume.id)], async (dir) => {
      checkResourceId(volume.id, 'volume');
      checkSizeGiB(newSizeGiB);
      const target = this.volumePath(volume.id, dir);
      const current = await this.sizeOf(target);
      if (current === undefined) throw new DriverError(this.name, 'extendVolume', `volume ${volume.id} does not exist`);
      const bytes = newSizeGiB * GIB;
      if (bytes === current) return;
      if (bytes < current) {
        throw new DriverError(this.name, 'extendVolume', `volume ${volume.id} has ${current / GIB} GiB; it cannot shrink to ${newSizeGiB} GiB`);
      }
      checkNotAborted(ctx, 'extendVolume');
      await truncate(target, bytes);
    });
  }

  async createClonedVolume(volume: VolumeSpec, source: VolumeRef, ctx: DriverContext): Promise<void> {
    await this.run('createClonedVolume', ctx, [volumeFile(volume.id)], async (dir, step) => {
      checkResourceId(source.id, 'volume');
      await this.copyInto(dir, volume, this.volumePath(source.id, dir), `volume ${source.id}`, 'createClonedVolume', ctx, step);
    });
  }

  async createVolumeFromSnapshot(volume: VolumeSpec, snapshot: SnapshotRef, ctx: DriverContext): Promise<void> {
    await this.run('createVolumeFromSnapshot', ctx, [volumeFile(volume.id)], async (dir, step) => {
      checkResourceId(snapshot.id, 'snapshot');
      await this.copyInto(dir, volume, this.snapshotPath(snapshot.id, dir), `snapshot ${snapshot.id}`, 'createVolumeFromSnapshot', ctx, step);
    });
  }

  /**
   * A new volume as a sparse copy of `source`, grown to its size. Idempotent: the copy is
   * published whole under the volume's name (`copySparseFile`), so a volume file that exists is
   * a finished copy — at most not yet grown, which a repeat finishes.
   */
  private async copyInto(dir: string, volume: VolumeSpec, source: string, what: string, call: DriverCall, ctx: DriverContext, step: () => Promise<void>): Promise<void> {
    checkResourceId(volume.id, 'volume');
    checkSizeGiB(volume.sizeGiB);
    const target = this.volumePath(volume.id, dir);
    const bytes = volume.sizeGiB * GIB;
    let size = await this.sizeOf(target);
    if (size === undefined) {
      const sourceBytes = await this.sizeOf(source);
      if (sourceBytes === undefined) throw new DriverError(this.name, call, `${what}, the source of volume ${volume.id}, does not exist`);
      if (sourceBytes > bytes) throw new DriverError(this.name, call, `${what} has ${sourceBytes / GIB} GiB, more than the ${volume.sizeGiB} GiB of volume ${volume.id}`);
      await copySparseFile(source, target, {
        signal: ctx.signal,
        reflink: this.options.clone !== false,
        checkpoint: step,
        ...(this.options.copyCommand ? { command: this.options.copyCommand } : {}),
      });
      size = await this.sizeOf(target);
      if (size === undefined) throw new DriverError(this.name, call, `volume ${volume.id} vanished after its copy`);
    }
    if (size === bytes) return;
    if (size > bytes) throw new DriverError(this.name, call, `volume ${volume.id} exists with ${size / GIB} GiB, more than ${volume.sizeGiB} GiB`);
    checkNotAborted(ctx, call);
    await truncate(target, bytes);
  }

  async createSnapshot(snapshot: SnapshotSpec, ctx: DriverContext): Promise<void> {
    // The volume too: what its consumer wrote since the last call reaches the replicas with the snapshot.
    await this.run('createSnapshot', ctx, [snapshotFile(snapshot.id), volumeFile(snapshot.volumeId)], async (dir, step) => {
      checkResourceId(snapshot.id, 'snapshot');
      checkResourceId(snapshot.volumeId, 'volume');
      const target = this.snapshotPath(snapshot.id, dir);
      if ((await this.sizeOf(target)) !== undefined) return;
      const source = this.volumePath(snapshot.volumeId, dir);
      if ((await this.sizeOf(source)) === undefined) {
        throw new DriverError(this.name, 'createSnapshot', `volume ${snapshot.volumeId} of snapshot ${snapshot.id} does not exist`);
      }
      await copySparseFile(source, target, {
        signal: ctx.signal,
        reflink: this.options.clone !== false,
        checkpoint: step,
        ...(this.options.copyCommand ? { command: this.options.copyCommand } : {}),
      });
    });
  }

  async deleteSnapshot(snapshot: SnapshotSpec, ctx: DriverContext): Promise<void> {
    await this.run('deleteSnapshot', ctx, [snapshotFile(snapshot.id)], async (dir) => {
      checkResourceId(snapshot.id, 'snapshot');
      await rm(this.snapshotPath(snapshot.id, dir), { force: true });
    });
  }

  /**
   * The volume's file is the connection: the answer is its path and format (raw), for os-brick's
   * local connector, as Cinder's NFS driver answers a file on its share. Fails when the file is
   * missing, so an attachment to a volume whose storage is gone is `error_attaching`.
   */
  async initializeConnection(volume: VolumeRef, _connector: Connector, ctx: DriverContext): Promise<ConnectionInfo> {
    let info: ConnectionInfo | undefined;
    await this.run('initializeConnection', ctx, [], async (dir) => {
      checkResourceId(volume.id, 'volume');
      const path = this.volumePath(volume.id, dir);
      const size = await this.sizeOf(path);
      if (size === undefined) throw new DriverError(this.name, 'initializeConnection', `volume ${volume.id} does not exist`);
      info = { driver_volume_type: 'local', data: { device_path: path, format: 'raw', name: `volume-${volume.id}`, size_bytes: size } };
    });
    return info as ConnectionInfo;
  }

  /** A file needs no disconnection; checked and journalled like any call. */
  async terminateConnection(volume: VolumeRef, _connector: Connector | null, ctx: DriverContext): Promise<void> {
    await this.run('terminateConnection', ctx, [], async () => {
      checkResourceId(volume.id, 'volume');
    });
  }

  /**
   * Writes the fence marker of `incarnation` on the active directory, where its calls look
   * (they stop at their next step), and on the other backend directories that answer, so it
   * holds after a failover too.
   */
  async fenceIncarnation(incarnation: string): Promise<void> {
    const active = this.activeDir;
    await fencesOf(active).mark(incarnation);
    for (const { dir } of this.dirs.all()) {
      if (dir !== active) await fencesOf(dir).mark(incarnation).catch(() => undefined);
    }
  }

  /** Kills a probe still running (without waiting for it: it may hang). */
  async close(): Promise<void> {
    this.closed = true;
    this.replication?.close();
    this.probes.close();
  }

  /**
   * Common frame of every call: closed, abort and fence checks (the fence marker again after the
   * work); the epoch fence before anything is written and at `step`, which `body` runs before it
   * publishes a file (a copy overtaken by a failover publishes nothing on the old primary); the
   * copy of `touched` to the replicas after; error translation.
   */
  private async run(call: DriverCall, ctx: DriverContext, touched: readonly string[], body: (dir: string, step: () => Promise<void>) => Promise<void>): Promise<void> {
    if (this.closed) throw new ClosedError('file volume driver');
    checkNotAborted(ctx, call);
    const layout: ReplicaLayout | undefined = this.replication?.layout();
    const dir = layout?.activeDir ?? this.options.dir;
    const fences = fencesOf(dir);
    await fences.refuseIfFenced(ctx.incarnation);
    try {
      const step = async (): Promise<void> => {
        checkNotAborted(ctx, call);
        if (layout !== undefined) await this.replication?.fenceCall(call, ctx, layout);
      };
      await step();
      await body(dir, step);
    } catch (err) {
      throw this.translate(call, err);
    }
    if (layout !== undefined && touched.length > 0) {
      const copy = { signal: ctx.signal, checkpoint: () => checkNotAborted(ctx, call), ...this.copyTool() };
      await this.replication?.replicate(call, layout, touched, copy);
    }
    await fences.refuseIfFenced(ctx.incarnation);
  }

  private copyTool(): { reflink: boolean; command?: string } {
    return { reflink: this.options.clone !== false, ...(this.options.copyCommand ? { command: this.options.copyCommand } : {}) };
  }

  private async sizeOf(path: string): Promise<number | undefined> {
    try {
      return (await stat(path)).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** True if `path` exists with `bytes`; a DriverError if it exists with another size. */
  private async hasSize(path: string, bytes: number, call: DriverCall): Promise<boolean> {
    const size = await this.sizeOf(path);
    if (size === undefined) return false;
    if (size === bytes) return true;
    throw new DriverError(this.name, call, `${path} exists with ${size / GIB} GiB, not ${bytes / GIB} GiB`);
  }

  private translate(call: DriverCall, err: unknown): Error {
    if (err instanceof CopyError) return new DriverError(this.name, call, err.message, { cause: err, retryable: err.retryable });
    if (err instanceof CoordinatorError) return err;
    const code = (err as NodeJS.ErrnoException).code;
    const message = err instanceof Error ? err.message : String(err);
    return new DriverError(this.name, call, message, { cause: err, retryable: code !== undefined && TRANSIENT_FS_CODES.has(code) });
  }
}

