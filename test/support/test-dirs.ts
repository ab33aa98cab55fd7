/**
 * The temp dirs of the servers the harness starts (etcd members, RabbitMQ nodes, hearth
 * processes): made under the OS temp dir, and removed when their server is stopped for good —
 * never on a restart, which keeps its data. An etcd member's dir alone is a few hundred MB, so
 * dirs left behind by every run filled the disk.
 *
 * `HEARTH_KEEP_TEST_DIRS=1` keeps every dir, to read a server's log or data after a run.
 */
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** True when `HEARTH_KEEP_TEST_DIRS=1`: no dir is removed. */
export function keepTestDirs(): boolean {
  return process.env.HEARTH_KEEP_TEST_DIRS === '1';
}

/** A new temp dir named `<prefix><random>`, e.g. `makeTestDir('hearth-etcd-')`. */
export function makeTestDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/**
 * Removes a server's dir, best effort: errors are ignored (the dir is in the OS temp dir, and a
 * leftover costs disk, not a test). Does nothing with `HEARTH_KEEP_TEST_DIRS=1`.
 */
export async function removeTestDir(dir: string): Promise<void> {
  if (keepTestDirs()) return;
  await rm(dir, { recursive: true, force: true, maxRetries: 2 }).catch(() => undefined);
}

/** {@link removeTestDir}, synchronously: for a process `exit` handler, where nothing async runs. */
export function removeTestDirSync(dir: string): void {
  if (keepTestDirs()) return;
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // Best effort, as removeTestDir.
  }
}

/** Dirs removed once idle (see {@link removeWhenIdle}), each with the processes that ran on it. */
const idle = new Map<string, { readonly alive: boolean }[]>();
let exitHookInstalled = false;

/**
 * Removes `dir` once every process recorded on it ({@link usesDir}) has exited, at the end of
 * the test file (test/support/remove-dirs.setup.ts, a vitest setup file) or of the script (on
 * `exit`). For a dir that outlives its first process: a test may start another process on it
 * (a restart on the same data) and reads a process's log from it after stopping it.
 */
export function removeWhenIdle(dir: string): void {
  if (!idle.has(dir)) idle.set(dir, []);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Scripts (make bench, chaos, fuzz) end by exiting; vitest ends a test file's worker with
  // SIGTERM, which runs no exit handler: there the setup file's afterAll removes them.
  process.once('exit', () => {
    for (const [dir, procs] of idle) if (!procs.some((p) => p.alive)) removeTestDirSync(dir);
  });
}

/** Records that `proc` runs on `dir`: a dir given to {@link removeWhenIdle} (or one in it) stays while it lives. */
export function usesDir(dir: string, proc: { readonly alive: boolean }): void {
  for (const [registered, procs] of idle) {
    if (dir === registered || dir.startsWith(`${registered}/`)) procs.push(proc);
  }
}

/** Removes every dir given to {@link removeWhenIdle} whose processes have all exited. */
export async function removeIdleDirs(): Promise<void> {
  for (const [dir, procs] of [...idle]) {
    if (procs.some((p) => p.alive)) continue;
    idle.delete(dir);
    await removeTestDir(dir);
  }
}
