/**
 * The process-gone fence: a dead incarnation whose process ran on this very machine, in this
 * pid namespace, needs no power switch when /proc shows that process is over. Whatever the
 * configured method, the fence runner can try this first; elsewhere it says so and the runner
 * moves on to the configured method.
 */
import type { ProcessIdentity } from '../identity.js';
import type { FenceMethod, FenceOutcome, FenceTarget } from './method.js';
import { type ProcessState, readProcess } from './process-identity.js';

/**
 * True when `target`'s recorded process ran where this process runs: the same boot of the
 * same machine (boot id) and the same pid namespace, so its pid names the same process here.
 */
export function onThisMachine(target: FenceTarget, self: ProcessIdentity): boolean {
  const p = target.process;
  return p !== undefined && p.bootId === self.bootId && p.pidNamespace === self.pidNamespace;
}

/** Reads another process's state; {@link readProcess} in production. */
export type ProcessReader = (pid: number) => Promise<ProcessState | undefined>;

/** Fenced when the recorded process has no /proc entry, has exited, or its pid now belongs to another process. */
export class ProcessGoneFence implements FenceMethod {
  readonly name = 'process-gone';

  /**
   * @param self this process's identity ({@link currentProcess}), which says where "here" is
   * @param read how another process is looked up (tests may pass their own)
   */
  constructor(
    private readonly self: ProcessIdentity,
    private readonly read: ProcessReader = readProcess,
  ) {}

  /** One look at /proc; never throws (an unreadable entry is a reason, not an error). */
  async fence(target: FenceTarget, signal: AbortSignal): Promise<FenceOutcome> {
    const p = target.process;
    if (p === undefined) return { fenced: false, reason: 'no record of its process' };
    if (!onThisMachine(target, this.self)) return { fenced: false, reason: 'not on this machine' };
    if (signal.aborted) return { fenced: false, reason: 'aborted' };
    let now: ProcessState | undefined;
    try {
      now = await this.read(p.pid);
    } catch (err) {
      return { fenced: false, reason: `cannot look at process ${p.pid}: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (now === undefined) return { fenced: true, detail: `process ${p.pid} is gone` };
    if (now.startTicks !== p.startTicks) return { fenced: true, detail: `process ${p.pid} is gone (the pid now belongs to a later process)` };
    if (now.exited) return { fenced: true, detail: `process ${p.pid} has exited (not yet reaped)` };
    return { fenced: false, reason: `process ${p.pid} still runs` };
  }
}
