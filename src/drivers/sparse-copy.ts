/**
 * Copies that cost the data, not the size: a file is copied by GNU coreutils
 * `cp --sparse=always --reflink=auto`, run as a child process (no shell), into a temporary file
 * in the target's directory that is then published atomically (see `atomic-file.ts`).
 *
 * `cp` first asks for a reflink (`FICLONE`): on XFS and Btrfs the copy shares the source's
 * extents and costs nothing whatever the size. Elsewhere it walks the source's data regions with
 * `SEEK_DATA`/`SEEK_HOLE`, copies only those, and leaves holes (and, with `--sparse=always`, any
 * run of zeros inside the data) unallocated. An empty 100 GiB volume copies in milliseconds and
 * the copy allocates no more blocks than the source. Node.js has neither `SEEK_DATA` nor
 * `FIEMAP`, so an in-process copy has to read every block to find the zeros (about 2.6 s per
 * GiB on ext4); docs/drivers.md says why `cp` rather than copy-on-write images or an addon.
 *
 * Abort: the caller's signal (combine it with `AbortSignal.timeout()` for a deadline) kills
 * `cp` with SIGKILL; the call settles only once the child has exited, then removes the
 * temporary file. A finished copy is the only thing that ever carries the target name, so an
 * idempotent retry sees either nothing (and copies) or the finished copy (and stops).
 */
import { execFile, spawn } from 'node:child_process';
import { childSearchPath } from '../config/environment.js';
import { AbortedError, CoordinatorError, CopyError, type CopyFailure } from '../errors.js';
import { type IfExists, pathExists, type PublishOutcome, TRANSIENT_FS_CODES, writeAtomically } from './atomic-file.js';

/** Options of {@link copySparseFile}. */
export interface SparseCopyOptions {
  /** Aborts the copy: `cp` is killed, the temporary file removed, and AbortedError thrown. */
  readonly signal: AbortSignal;
  /**
   * Let `cp` make a reflink where the file system can (default true: `--reflink=auto`); false
   * forces a real copy (`--reflink=never`), for tests of the copy itself.
   */
  readonly reflink?: boolean;
  /**
   * When `target` exists: `keep` (default) returns `existed` at once without copying — a
   * finished copy is the only thing that carries the name; `replace` copies and replaces it.
   */
  readonly ifExists?: IfExists;
  /**
   * Called before `cp` starts and again before the copy gets its final name; throwing stops
   * the copy. Drivers pass their own abort check (which also reads `stillHeld()`).
   */
  readonly checkpoint?: () => void | Promise<void>;
  /** The copy program: default `cp`, looked up on `PATH`. */
  readonly command?: string;
}

/** The system error texts of glibc's C locale that `cp` prints, and their Node.js codes. */
const ERRNO_TEXTS: readonly (readonly [string, string])[] = [
  ['Input/output error', 'EIO'],
  ['Stale file handle', 'ESTALE'],
  ['Resource temporarily unavailable', 'EAGAIN'],
  ['Device or resource busy', 'EBUSY'],
  ['Connection timed out', 'ETIMEDOUT'],
  ['Interrupted system call', 'EINTR'],
  ['No space left on device', 'ENOSPC'],
  ['Disk quota exceeded', 'EDQUOT'],
  ['No such file or directory', 'ENOENT'],
  ['Permission denied', 'EACCES'],
  ['Operation not permitted', 'EPERM'],
  ['Read-only file system', 'EROFS'],
  ['Is a directory', 'EISDIR'],
  ['Not a directory', 'ENOTDIR'],
];
const UNSUPPORTED_OPTION = /unrecognized option|invalid option|illegal option|unknown option/i;
const MAX_STDERR_CHARS = 4_096;

/**
 * Copies `source` to `target` (both regular files' paths; `target`'s directory must exist),
 * keeping holes, atomically, abortably. Returns `created`, `existed` (kept, nothing copied) or
 * `replaced`.
 *
 * @throws AbortedError when `signal` aborts or `checkpoint` throws it (nothing is left behind)
 * @throws CopyError when `cp` is missing (`tool-missing`), is not GNU `cp` (`tool-unsupported`)
 *   or fails (`failed`, with `errno` when it named one; retryable for a share briefly away)
 */
export async function copySparseFile(source: string, target: string, options: SparseCopyOptions): Promise<PublishOutcome> {
  const { signal } = options;
  const checkpoint = async (): Promise<void> => {
    if (signal.aborted) throw new AbortedError(`copying ${source}`, { cause: signal.reason });
    await options.checkpoint?.();
  };
  try {
    await checkpoint();
    const ifExists = options.ifExists ?? 'keep';
    if (ifExists === 'keep' && (await pathExists(target))) return 'existed';
    return await writeAtomically(target, (tmp) => runCp(source, tmp, target, options), { ifExists, checkpoint });
  } catch (err) {
    if (err instanceof CoordinatorError) throw err;
    const errno = (err as NodeJS.ErrnoException).code;
    throw new CopyError(
      { source, target, failure: 'failed', ...(errno ? { errno } : {}) },
      `copying ${source} to ${target} failed: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err, retryable: errno !== undefined && TRANSIENT_FS_CODES.has(errno) },
    );
  }
}

/**
 * Asks the copy program for its version (`cp --version`) and returns the first line, e.g.
 * `cp (GNU coreutils) 9.1`, so that a missing or foreign `cp` is reported when the driver starts
 * rather than at the first snapshot.
 *
 * @throws CopyError `tool-missing` when it cannot be run, `tool-unsupported` when it is not GNU's
 */
export async function probeCopyTool(command = 'cp'): Promise<string> {
  const details = { source: '', target: '' };
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(command, ['--version'], { env: cpEnvironment(), timeout: 10_000, shell: false }, (err, out) => {
      if (err?.code === 'ENOENT') reject(spawnFailure(command, details, err as NodeJS.ErrnoException));
      else resolve(err ? '' : out);
    });
  });
  const first = firstLine(stdout).trim();
  if (!/GNU coreutils/.test(first)) {
    throw new CopyError(
      { ...details, failure: 'tool-unsupported', stderr: first },
      `${command} is not GNU coreutils cp (${first ? `it says ${JSON.stringify(first)}` : '--version failed'}); sparse copies need GNU coreutils cp`,
    );
  }
  return first;
}

/** The arguments of the `cp` run that copies `source` to `dest`: options, then `--`, then the paths. */
export function cpArguments(source: string, dest: string, reflink: boolean): string[] {
  // -T: a `dest` that turned out to be a directory is an error, never a copy into it.
  return ['--sparse=always', `--reflink=${reflink ? 'auto' : 'never'}`, '--no-target-directory', '--', source, dest];
}

/** Runs `cp` once into `dest` (the temporary file of `target`); settles only after the child has exited (killed on abort). */
function runCp(source: string, dest: string, target: string, options: SparseCopyOptions): Promise<void> {
  const { signal } = options;
  const command = options.command ?? 'cp';
  const details = { source, target };
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) {
      reject(new AbortedError(`copying ${source}`, { cause: signal.reason }));
      return;
    }
    const child = spawn(command, cpArguments(source, dest, options.reflink ?? true), {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: cpEnvironment(),
      shell: false,
    });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      if (stderr.length < MAX_STDERR_CHARS) stderr += chunk.slice(0, MAX_STDERR_CHARS - stderr.length);
    });
    let spawnError: NodeJS.ErrnoException | undefined;
    const kill = (): void => {
      child.kill('SIGKILL');
    };
    signal.addEventListener('abort', kill, { once: true });
    child.on('error', (err: NodeJS.ErrnoException) => {
      // Spawn failures (ENOENT) are followed by 'close'; a failed kill of an exited child is harmless.
      spawnError ??= child.pid === undefined ? err : undefined;
    });
    child.once('close', (code: number | null, killedBy: NodeJS.Signals | null) => {
      signal.removeEventListener('abort', kill);
      if (spawnError) reject(spawnFailure(command, details, spawnError));
      else if (signal.aborted) reject(new AbortedError(`copying ${source}`, { cause: signal.reason }));
      else if (code === 0) resolve();
      else reject(cpFailure(command, details, code, killedBy, stderr.trim()));
    });
  });
}

/**
 * Only what cp needs: `PATH` to be found, and `LC_ALL=C` so that the system error it reports is
 * in English and can be classified. Nothing else is passed on, so secrets given to hearth as
 * environment variables (`HEARTH_ETCD_PASSWORD`, …) do not reach the child's /proc/<pid>/environ.
 */
function cpEnvironment(): NodeJS.ProcessEnv {
  return { PATH: childSearchPath(), LC_ALL: 'C' };
}

function spawnFailure(command: string, details: { source: string; target: string }, err: NodeJS.ErrnoException): CopyError {
  const missing = err.code === 'ENOENT';
  const failure: CopyFailure = missing ? 'tool-missing' : 'failed';
  const why = missing ? `the copy program ${JSON.stringify(command)} was not found` : `the copy program ${JSON.stringify(command)} could not be started (${err.code ?? err.message})`;
  return new CopyError(
    { ...details, failure, ...(err.code ? { errno: err.code } : {}) },
    `${details.source ? `cannot copy ${details.source}: ` : ''}${why}; sparse copies need GNU coreutils cp (Debian package coreutils) on PATH`,
    { cause: err },
  );
}

function cpFailure(command: string, details: { source: string; target: string }, code: number | null, killedBy: NodeJS.Signals | null, stderr: string): CopyError {
  if (killedBy !== null) {
    // Not our abort: something else (the OOM killer, an operator) stopped it; the data is fine.
    return new CopyError({ ...details, failure: 'failed', stderr }, `copying ${details.source} failed: ${command} was killed by ${killedBy}`, { retryable: true });
  }
  if (UNSUPPORTED_OPTION.test(stderr)) {
    return new CopyError(
      { ...details, failure: 'tool-unsupported', stderr },
      `cannot copy ${details.source}: ${command} does not accept --sparse=always --reflink (${firstLine(stderr)}); sparse copies need GNU coreutils cp`,
    );
  }
  const errno = ERRNO_TEXTS.find(([text]) => stderr.includes(text))?.[1];
  return new CopyError(
    { ...details, failure: 'failed', stderr, ...(errno ? { errno } : {}) },
    `copying ${details.source} failed: ${firstLine(stderr) || `${command} exited with ${String(code)}`}`,
    { retryable: errno !== undefined && TRANSIENT_FS_CODES.has(errno) },
  );
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0] ?? '';
}
