/**
 * Keeping a file driver's replica directory equal to its active one, file by file: a
 * `volume-*` or `snapshot-*` file is copied (sparse, `sparse-copy.ts`, replacing the old copy
 * atomically) when the replica's differs in size or modification time, and removed from the
 * replica when the active directory no longer has it. After a copy the replica's file gets the
 * source's modification time, so an unchanged file is never copied again (one `stat` each) and
 * a volume written by its consumer since (its modification time moved) is.
 */
import { readdir, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { AbortedError } from '../errors.js';
import { copySparseFile } from './sparse-copy.js';

/** How copies are made. */
export interface ReplicaCopyOptions {
  readonly signal: AbortSignal;
  /** `--reflink=auto` (default true). */
  readonly reflink?: boolean;
  /** The copy program (default `cp`). */
  readonly command?: string;
  /** Called before each step; throwing stops the sync. */
  readonly checkpoint?: () => void;
}

/** What a sync did. */
export interface SyncCount {
  copied: number;
  removed: number;
}

/** Names of the files a driver keeps in a directory (volumes and snapshots). */
export const REPLICATED_NAME = /^(volume|snapshot)-[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Makes `replicaDir/name` what `sourceDir/name` is now: a copy, or nothing. Returns what it did. */
export async function syncFile(sourceDir: string, replicaDir: string, name: string, options: ReplicaCopyOptions): Promise<'copied' | 'removed' | 'same'> {
  check(options);
  const source = join(sourceDir, name);
  const replica = join(replicaDir, name);
  const from = await statOrUndefined(source);
  const to = await statOrUndefined(replica);
  if (from === undefined) {
    if (to === undefined) return 'same';
    await rm(replica, { force: true });
    return 'removed';
  }
  if (to !== undefined && to.size === from.size && sameMicros(to.mtimeNs, from.mtimeNs)) return 'same';
  await copySparseFile(source, replica, {
    signal: options.signal,
    ifExists: 'replace',
    ...(options.reflink === undefined ? {} : { reflink: options.reflink }),
    ...(options.command === undefined ? {} : { command: options.command }),
    ...(options.checkpoint === undefined ? {} : { checkpoint: options.checkpoint }),
  });
  // A consumer may have written the source during the copy: then its time moved past `from`,
  // and the next sync copies again. Stamping `from`'s time (not the time now) keeps that true.
  await utimes(replica, seconds(from.atimeNs), seconds(from.mtimeNs));
  return 'copied';
}

/** Makes every volume and snapshot file of `replicaDir` what `sourceDir` has (see {@link syncFile}). */
export async function syncDirectory(sourceDir: string, replicaDir: string, options: ReplicaCopyOptions): Promise<SyncCount> {
  const names = new Set([...(await listReplicated(sourceDir)), ...(await listReplicated(replicaDir))]);
  const count: SyncCount = { copied: 0, removed: 0 };
  for (const name of [...names].sort()) {
    const did = await syncFile(sourceDir, replicaDir, name, options);
    if (did === 'copied') count.copied++;
    else if (did === 'removed') count.removed++;
  }
  return count;
}

async function listReplicated(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => REPLICATED_NAME.test(name));
}

function check(options: ReplicaCopyOptions): void {
  if (options.signal.aborted) throw new AbortedError('replica sync', { cause: options.signal.reason });
  options.checkpoint?.();
}

async function statOrUndefined(path: string): Promise<{ size: bigint; mtimeNs: bigint; atimeNs: bigint } | undefined> {
  try {
    const s = await stat(path, { bigint: true });
    return { size: s.size, mtimeNs: s.mtimeNs, atimeNs: s.atimeNs };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** `utimes` takes seconds as a double: microseconds survive the trip, nanoseconds may not. */
function sameMicros(a: bigint, b: bigint): boolean {
  const d = a / 1000n - b / 1000n;
  return d >= -1n && d <= 1n;
}

function seconds(ns: bigint): number {
  return Number(ns / 1000n) / 1e6;
}
