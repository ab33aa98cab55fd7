/**
 * Files that appear whole on a directory several members share: a new file is written under a
 * temporary name in its final directory, flushed, and only then given its final name in one
 * step, and the directory is flushed. A reader (or a repeated, idempotent call) therefore sees
 * either no file or a finished one — never a half-written file under a final name.
 *
 * Temporary names are `.tmp-<pid>-<random>`: they never collide with `volume-*` or `snapshot-*`
 * names, and the temporary file is removed whatever happens. Only a process that dies mid-write
 * leaves one behind, and nothing ever takes it for a finished file.
 */
import { randomBytes } from 'node:crypto';
import { link, lstat, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * Error codes of a shared directory that is briefly away (NFS `ESTALE`, `EIO`, a busy server):
 * the same call may succeed later.
 */
export const TRANSIENT_FS_CODES: ReadonlySet<string> = new Set(['EAGAIN', 'EBUSY', 'EIO', 'ETIMEDOUT', 'ESTALE', 'EINTR']);

/**
 * What a publish does when the final name already exists: `keep` leaves the existing file and
 * drops the new one (first finished writer wins: snapshots, clones); `replace` puts the new file
 * in its place atomically (a fresher copy of the same thing: replicas).
 */
export type IfExists = 'keep' | 'replace';

/** How a publish ended: the name was new, it existed and was kept, or it was replaced. */
export type PublishOutcome = 'created' | 'existed' | 'replaced';

/** Options of {@link writeAtomically}. */
export interface WriteAtomicallyOptions {
  /** Default `keep`. */
  readonly ifExists?: IfExists;
  /**
   * Called after the file was written and flushed, just before it gets its final name; throwing
   * stops the publish (the temporary file is removed). Drivers check their abort signal and
   * `stillHeld()` here, so a caller that lost its lock publishes nothing — and, replicating,
   * the backend epoch, so a call overtaken by a failover publishes nothing on the old primary.
   */
  readonly checkpoint?: () => void | Promise<void>;
}

/** A fresh temporary name in the directory of `target`. */
export function tempPathFor(target: string): string {
  return join(dirname(target), `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
}

/**
 * Writes a new file with `write` (which gets the temporary path and must create the file
 * there), flushes it, and publishes it as `target` as {@link WriteAtomicallyOptions.ifExists}
 * says. The temporary file never survives the call.
 */
export async function writeAtomically(target: string, write: (tmp: string) => Promise<void>, options: WriteAtomicallyOptions = {}): Promise<PublishOutcome> {
  const tmp = tempPathFor(target);
  try {
    await write(tmp);
    await flushFile(tmp);
    await options.checkpoint?.();
    const outcome = await publish(tmp, target, options.ifExists ?? 'keep');
    await syncDir(dirname(target));
    return outcome;
  } finally {
    await rm(tmp, { force: true });
  }
}

/** True if something exists under `path` (a dangling symlink counts). */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Flushes a file's data and size to stable storage (a copy made by another process included). */
async function flushFile(path: string): Promise<void> {
  // Read-only is enough for fsync on Linux, and works when the file's mode is read-only.
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Flushes a directory so a new name in it survives a crash; best effort. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // Some file systems (and NFS clients) refuse fsync on a directory; the name is still made.
  } finally {
    await fh.close();
  }
}

/**
 * Gives `tmp` the name `target`. `keep`: a hard link, which fails instead of overwriting if
 * `target` exists; where hard links are not supported, a rename after checking that `target`
 * is absent (a narrow race, as good as such a file system allows). `replace`: a rename, atomic
 * over an existing file.
 */
async function publish(tmp: string, target: string, ifExists: IfExists): Promise<PublishOutcome> {
  if (ifExists === 'replace') {
    const existed = await pathExists(target);
    await rename(tmp, target);
    return existed ? 'replaced' : 'created';
  }
  try {
    await link(tmp, target);
    return 'created';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return 'existed';
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS' || code === 'EOPNOTSUPP') {
      if (await pathExists(target)) return 'existed';
      await rename(tmp, target);
      return 'created';
    }
    throw err;
  }
}
