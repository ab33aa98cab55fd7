/**
 * The storage half of the backend epoch fence: a marker, `.hearth/epoch`, in every directory a
 * replicating file driver writes (the primary and each target). A failover writes the new epoch
 * there before it copies or serves anything; every driver call reads the marker of each
 * directory it is about to write and refuses, writing nothing, when its own epoch is older. So a
 * member that missed a failover — down, or partitioned from the cluster store but not from the
 * storage — cannot change the old primary or a target once the failover reached it.
 *
 * The marker is one line of JSON: `{"epoch":2,"active":"dr-site","from":"default"}` — the epoch,
 * the backend promoted at it, and the backend that served before (so a failover run again after
 * its runner died copies from the same side). It only ever goes up: a write of a lower epoch is
 * a no-op. Markers are written by the one runner of a failover (the cluster serialises
 * failovers), so read-then-replace needs no lock.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DriverError } from '../errors.js';
import { writeAtomically } from './atomic-file.js';

/** The marker's path under a backend directory. */
export const EPOCH_FILE = join('.hearth', 'epoch');

/** What an epoch marker says. */
export interface EpochMarker {
  readonly epoch: number;
  /** The backend promoted at `epoch`. */
  readonly active: string;
  /** The backend that served before `epoch`. */
  readonly from: string;
}

/**
 * A call (or a failover) under an epoch older than the storage's: the member missed a failover.
 * Never retryable — the same call under the same epoch is refused for ever; the op must be
 * re-run under the cluster's current epoch. `reason` is `stale-epoch` (the `code` is
 * `DRIVER_ERROR`, as for every driver failure).
 */
export class StaleEpochError extends DriverError {
  readonly reason = 'stale-epoch';

  constructor(
    driver: string,
    call: string,
    /** The epoch the call ran under (0 when it named none). */
    readonly callEpoch: number,
    /** The epoch it met: the marker's, or the epoch this member serves. */
    readonly currentEpoch: number,
    where: string,
  ) {
    super(driver, call, `stale backend epoch ${callEpoch}: ${where} is at epoch ${currentEpoch} (a replication failover happened); nothing was written`, { retryable: false });
  }
}

/** The marker of `dir`, or undefined when it has none (never failed over). @throws on I/O errors */
export async function readEpochMarker(dir: string): Promise<EpochMarker | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, EPOCH_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const value = parseMarker(text);
  if (value === undefined) throw new Error(`${join(dir, EPOCH_FILE)} is not an epoch marker: ${JSON.stringify(text.slice(0, 200))}`);
  return value;
}

/** Writes `marker` in `dir` unless the marker there has a higher epoch already; returns the marker now there. */
export async function raiseEpochMarker(dir: string, marker: EpochMarker): Promise<EpochMarker> {
  const now = await readEpochMarker(dir);
  if (now !== undefined && now.epoch >= marker.epoch) return now;
  await mkdir(join(dir, '.hearth'), { recursive: true });
  await writeAtomically(join(dir, EPOCH_FILE), (tmp) => writeFile(tmp, `${JSON.stringify(marker)}\n`, { flag: 'wx', flush: true }), { ifExists: 'replace' });
  return marker;
}

function parseMarker(text: string): EpochMarker | undefined {
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    if (typeof v.epoch === 'number' && Number.isSafeInteger(v.epoch) && v.epoch >= 0 && typeof v.active === 'string' && typeof v.from === 'string') {
      return { epoch: v.epoch, active: v.active, from: v.from };
    }
  } catch {
    // Not JSON: reported by the caller.
  }
  return undefined;
}
