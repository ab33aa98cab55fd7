// Real child processes for the fencing tests: started here, stopped by their own pid.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import type { ProcessIdentity } from '../../src/identity.js';
import { readProcess } from '../../src/fencing/process-identity.js';
import { waitFor } from './wait.js';

const started = new Set<ChildProcess>();

/** `sleep 30` as a child of this process, with its pid; stopped by {@link stopChildren}. */
export async function sleeper(): Promise<ChildProcess & { pid: number }> {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  started.add(child);
  await once(child, 'spawn');
  return child as ChildProcess & { pid: number };
}

/** Kills what {@link sleeper} started and is still running. */
export function stopChildren(): void {
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  started.clear();
}

/** The identity hearth would have recorded for `pid` on this machine, given this process's own. */
export async function identityOf(pid: number, self: ProcessIdentity): Promise<ProcessIdentity> {
  const state = await readProcess(pid);
  if (!state) throw new Error(`process ${pid} is not running`);
  return { ...self, pid, startTicks: state.startTicks };
}

/** Resolves once `pid` has no /proc entry or has exited (bounded). */
export async function waitUntilGone(pid: number): Promise<void> {
  await waitFor(async () => {
    const state = await readProcess(pid);
    return state === undefined || state.exited;
  }, { what: `process ${pid} to be gone`, timeoutMs: 10_000 });
}

/** Whether `pid` has no /proc entry or has exited, now. */
export async function isGone(pid: number): Promise<boolean> {
  const state = await readProcess(pid);
  return state === undefined || state.exited;
}
