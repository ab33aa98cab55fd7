/**
 * The `file` driver: volumes are sparse files on a directory every member mounts (as
 * Cinder's NFS driver keeps `volume-<id>` files on a share). `volume-<id>` has the volume's
 * size in bytes and allocates only what was written; `snapshot-<id>` is a copy made by a
 * reflink where the file system can, otherwise by a copy that skips zero blocks and so stays
 * sparse.
 *
 * New files appear atomically: they are written under a temporary name in the same directory,
 * flushed, then hard-linked to their final name (which fails instead of overwriting if the name
 * exists), and the directory is flushed. Extending is one `truncate`, which readers see as
 * either the old size or the new one — copying a volume to grow it would cost its size.
 *
 * Failure semantics: a member that dies mid-call leaves at most a `.tmp-*` file, which never
 * becomes a volume or snapshot; repeating the call finishes the job. A shared directory that is
 * unreachable (NFS `ESTALE`, `EIO`) gives a retryable DriverError.
 */
import { constants } from 'node:fs';
import { copyFile, link, mkdir, open, rename, rm, stat, truncate } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ClosedError, CoordinatorError, DriverError } from '../errors.js';
import {
  checkNotAborted,
  checkResourceId,
  checkSizeGiB,
  type DriverCall,
  type DriverContext,
  GIB,
  type SnapshotSpec,
  type VolumeDriver,
  type VolumeRef,
  type VolumeSpec,
} from './volume-driver.js';

/** Options of {@link FileVolumeDriver}. */
export interface FileVolumeDriverOptions {
  /** The shared directory (`driver.fileDir`). */
  readonly dir: string;
  /** Try a reflink before copying (default true); tests turn it off to exercise the copy. */
  readonly clone?: boolean;
}

const COPY_CHUNK_BYTES = 1024 * 1024;
const ZEROES = Buffer.alloc(COPY_CHUNK_BYTES);
const RETRYABLE_CODES = new Set(['EAGAIN', 'EBUSY', 'EIO', 'ETIMEDOUT', 'ESTALE', 'EINTR']);

/** See the module doc. */
export class FileVolumeDriver implements VolumeDriver {
  readonly name = 'file';
  /** A directory every member mounts is shared storage: several members may use it at once. */
  readonly supportsActiveActive = true;
  private closed = false;

  private constructor(private readonly options: FileVolumeDriverOptions) {}

  /** Creates the directory if needed and returns the driver. */
  static async open(options: FileVolumeDriverOptions): Promise<FileVolumeDriver> {
    await mkdir(options.dir, { recursive: true });
    return new FileVolumeDriver(options);
  }

  /** Path of a volume's file. */
  volumePath(id: string): string {
    return join(this.options.dir, `volume-${id}`);
  }

  /** Path of a snapshot's file. */
  snapshotPath(id: string): string {
    return join(this.options.dir, `snapshot-${id}`);
  }

  async createVolume(volume: VolumeSpec, ctx: DriverContext): Promise<void> {
    await this.run('createVolume', ctx, async () => {
      checkResourceId(volume.id, 'volume');
      checkSizeGiB(volume.sizeGiB);
      const target = this.volumePath(volume.id);
      const bytes = volume.sizeGiB * GIB;
      if (await this.hasSize(target, bytes, 'createVolume')) return;
      await this.publishNew(target, ctx, 'createVolume', async (tmp) => {
        const fh = await open(tmp, 'wx', 0o600);
        try {
          await fh.truncate(bytes);
          await fh.sync();
        } finally {
          await fh.close();
        }
      });
      // Another member may have won a race without locks: same size is the same volume.
      if (!(await this.hasSize(target, bytes, 'createVolume'))) throw new DriverError(this.name, 'createVolume', `volume ${volume.id} vanished`);
    });
  }

  async deleteVolume(volume: VolumeRef, ctx: DriverContext): Promise<void> {
    await this.run('deleteVolume', ctx, async () => {
      checkResourceId(volume.id, 'volume');
      await rm(this.volumePath(volume.id), { force: true });
    });
  }

  async extendVolume(volume: VolumeRef, newSizeGiB: number, ctx: DriverContext): Promise<void> {
    await this.run('extendVolume', ctx, async () => {
      checkResourceId(volume.id, 'volume');
      checkSizeGiB(newSizeGiB);
      const target = this.volumePath(volume.id);
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

  async createSnapshot(snapshot: SnapshotSpec, ctx: DriverContext): Promise<void> {
    await this.run('createSnapshot', ctx, async () => {
      checkResourceId(snapshot.id, 'snapshot');
      checkResourceId(snapshot.volumeId, 'volume');
      const target = this.snapshotPath(snapshot.id);
      if ((await this.sizeOf(target)) !== undefined) return;
      const source = this.volumePath(snapshot.volumeId);
      if ((await this.sizeOf(source)) === undefined) {
        throw new DriverError(this.name, 'createSnapshot', `volume ${snapshot.volumeId} of snapshot ${snapshot.id} does not exist`);
      }
      await this.publishNew(target, ctx, 'createSnapshot', (tmp) => this.copy(source, tmp, ctx));
    });
  }

  async deleteSnapshot(snapshot: SnapshotSpec, ctx: DriverContext): Promise<void> {
    await this.run('deleteSnapshot', ctx, async () => {
      checkResourceId(snapshot.id, 'snapshot');
      await rm(this.snapshotPath(snapshot.id), { force: true });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Common frame of every call: closed and abort checks, and error translation. */
  private async run(call: DriverCall, ctx: DriverContext, body: () => Promise<void>): Promise<void> {
    if (this.closed) throw new ClosedError('file volume driver');
    checkNotAborted(ctx, call);
    try {
      await body();
    } catch (err) {
      throw this.translate(call, err);
    }
  }

  /**
   * Writes a new file under a temporary name with `write`, then links it to `target` — or
   * does nothing more if `target` appeared meanwhile. The temporary file never survives.
   */
  private async publishNew(target: string, ctx: DriverContext, call: DriverCall, write: (tmp: string) => Promise<void>): Promise<void> {
    const tmp = join(this.options.dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      await write(tmp);
      checkNotAborted(ctx, call);
      await linkNoClobber(tmp, target);
      await this.syncDir();
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** A reflink when the file system offers one; otherwise a copy that keeps holes. */
  private async copy(source: string, tmp: string, ctx: DriverContext): Promise<void> {
    if (this.options.clone !== false) {
      try {
        await copyFile(source, tmp, constants.COPYFILE_FICLONE_FORCE);
        return;
      } catch {
        // No reflinks here (ext4, NFS): fall back to the sparse copy below.
      }
    }
    await sparseCopy(source, tmp, ctx);
  }

  private async syncDir(): Promise<void> {
    const dir = await open(this.options.dir, 'r');
    try {
      await dir.sync();
    } catch {
      // Some file systems (and NFS clients) refuse fsync on a directory; the link is still made.
    } finally {
      await dir.close();
    }
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
    if (err instanceof CoordinatorError) return err;
    const code = (err as NodeJS.ErrnoException).code;
    const message = err instanceof Error ? err.message : String(err);
    return new DriverError(this.name, call, message, { cause: err, retryable: code !== undefined && RETRYABLE_CODES.has(code) });
  }
}

/** Links `tmp` to `target` unless `target` exists; falls back to rename where hard links are not supported. */
async function linkNoClobber(tmp: string, target: string): Promise<void> {
  try {
    await link(tmp, target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS' || code === 'EOPNOTSUPP') {
      await rename(tmp, target);
      return;
    }
    throw err;
  }
}

/**
 * Copies `source` to `dest` chunk by chunk, writing only chunks that are not all zero and
 * setting the final size with `truncate`, so holes stay holes. Checks the abort signal between
 * chunks.
 */
export async function sparseCopy(source: string, dest: string, ctx: DriverContext): Promise<void> {
  const src = await open(source, 'r');
  try {
    const dst = await open(dest, 'w', 0o600);
    try {
      const size = (await src.stat()).size;
      const buf = Buffer.allocUnsafe(COPY_CHUNK_BYTES);
      for (let pos = 0; pos < size; pos += COPY_CHUNK_BYTES) {
        checkNotAborted(ctx, 'createSnapshot');
        const { bytesRead } = await src.read(buf, 0, Math.min(COPY_CHUNK_BYTES, size - pos), pos);
        if (bytesRead === 0) break;
        if (!buf.subarray(0, bytesRead).equals(ZEROES.subarray(0, bytesRead))) await dst.write(buf, 0, bytesRead, pos);
      }
      await dst.truncate(size);
      await dst.sync();
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
}
