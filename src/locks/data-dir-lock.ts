import { readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { lock } from 'proper-lockfile';
import { BackendUnavailableError } from '../errors.js';
import { DataDirLockedError } from './errors.js';

/** Options of {@link DataDirLock.acquire}. */
export interface DataDirLockOptions {
  /**
   * A lock whose holder stopped refreshing it for this long is stale and may be taken over
   * (e.g. after a SIGKILL); the holder refreshes every half of it. Default 10 s, minimum 2 s.
   */
  readonly staleMs?: number;
  /**
   * Called when the lock was lost while held: its directory vanished, or the event loop was
   * blocked past `staleMs` and another process may have taken it over. The daemon must stop.
   */
  readonly onCompromised?: (err: Error) => void;
}

/** Name of the lock directory inside the data directory. */
export const DATA_DIR_LOCK_NAME = 'hearth.lock';
/** Who holds the lock (pid, host, since), for the error a second daemon prints. */
const OWNER_FILE = 'hearth.lock.owner';

/**
 * One lock per data directory, so that two daemons never share one store (proper-lockfile:
 * an atomic `mkdir` of `<dataDir>/hearth.lock`, refreshed by mtime).
 *
 * Failure semantics: a second daemon on the same directory fails at once with
 * {@link DataDirLockedError} (`DATA_DIR_LOCKED`; `hearth serve` exits 1), naming the holder's
 * pid. A daemon that was SIGKILLed leaves the directory behind; it counts as stale after
 * `staleMs`, so a restart within that time is refused and the next one succeeds. A clean exit,
 * even through an uncaught exception, removes it (proper-lockfile's exit hook).
 */
export class DataDirLock {
  private released = false;
  private lost: Error | undefined;

  private constructor(
    readonly dataDir: string,
    readonly lockPath: string,
    private readonly unlock: () => Promise<void>,
  ) {}

  /** Takes the lock of `dataDir` (which must exist) or fails at once. */
  static async acquire(dataDir: string, options: DataDirLockOptions = {}): Promise<DataDirLock> {
    const dir = resolve(dataDir);
    const lockPath = join(dir, DATA_DIR_LOCK_NAME);
    const box: { holder?: DataDirLock } = {};
    let unlock: () => Promise<void>;
    try {
      unlock = await lock(dir, {
        lockfilePath: lockPath,
        stale: options.staleMs ?? 10_000,
        retries: 0,
        onCompromised: (err: Error) => {
          if (box.holder) box.holder.lost = err;
          options.onCompromised?.(err);
        },
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOCKED') {
        throw new DataDirLockedError(dir, lockPath, await readOwner(dir), { cause: err });
      }
      throw new BackendUnavailableError('filesystem', `cannot lock data directory ${dir}: ${(err as Error).message}`, { cause: err });
    }
    const holder = new DataDirLock(dir, lockPath, unlock);
    box.holder = holder;
    const owner = `pid ${process.pid} on ${hostname()} since ${new Date().toISOString()}`;
    await writeFile(join(dir, OWNER_FILE), `${owner}\n`).catch(() => undefined);
    return holder;
  }

  /** False once released or compromised. */
  get held(): boolean {
    return !this.released && this.lost === undefined;
  }

  /** Why the lock was lost while held, if it was. */
  get compromised(): Error | undefined {
    return this.lost;
  }

  /** Removes the lock. Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await rm(join(this.dataDir, OWNER_FILE), { force: true });
    if (this.lost === undefined) await this.unlock();
  }
}

async function readOwner(dir: string): Promise<string | undefined> {
  try {
    return (await readFile(join(dir, OWNER_FILE), 'utf8')).trim() || undefined;
  } catch {
    return undefined;
  }
}
