/**
 * Probes of shared storage run in a child process, at most one at a time.
 *
 * A stale NFS mount or a server that stopped answering hangs every file-system call on it, and
 * in Node such a call occupies one of the four threads of libuv's pool until the kernel gives
 * up — a few hung probes and every `fs` call of the process (the SQLite store, the data-dir
 * lock, the other drivers' calls) waits behind them. A probe therefore runs as a small shell
 * script in a process group of its own: a hung probe hangs that process, never a thread of
 * ours, and never the event loop.
 *
 * At most one probe is in flight. One still running after its timeout is killed (SIGKILL to
 * its group; a process in uninterruptible sleep dies when its call returns) and *stays
 * outstanding* until it has exited: until then every new probe is refused at once as
 * `outstanding`, so a hung mount costs one process, however long it hangs. The child is
 * unreferenced: it never keeps the process from exiting, and {@link ProbeRunner.close} kills it
 * without waiting.
 */
import { type ChildProcess, spawn } from 'node:child_process';

/** How one probe ended. */
export type ProbeResult =
  /** The script exited 0; `stdout` is what it printed. */
  | { readonly type: 'ok'; readonly stdout: string }
  /** The script exited with `code` (or was killed by `signal`); `stderr` is its last words. */
  | { readonly type: 'failed'; readonly code: number | null; readonly signal: string | null; readonly stderr: string }
  /** Still running after `timeoutMs`: killed, and outstanding until it exits. */
  | { readonly type: 'timeout'; readonly timeoutMs: number }
  /** An earlier probe is still outstanding (hung); none was started. */
  | { readonly type: 'outstanding'; readonly sinceMs: number }
  /** The script could not be started at all (no `sh`), or the runner is closed. */
  | { readonly type: 'error'; readonly message: string };

/** Keep this much of a probe's output: enough for a path and an errno text. */
const MAX_OUTPUT = 4_096;

/** See the module doc. */
export class ProbeRunner {
  private current: { readonly child: ChildProcess; readonly startedAt: number } | undefined;
  private closed = false;

  /** @param shell the POSIX shell that runs the scripts (default `sh` on `PATH`). */
  constructor(private readonly shell = 'sh') {}

  /** True while a probe (perhaps a hung one) has not exited. */
  get outstanding(): boolean {
    return this.current !== undefined;
  }

  /**
   * Runs `script` with positional arguments `args` (`$1`, `$2`, …) and resolves with how it
   * ended; never rejects. `signal` aborting counts as a timeout now (the probe is killed).
   */
  run(script: string, args: readonly string[], timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
    if (this.closed) return Promise.resolve({ type: 'error', message: 'the probe runner is closed' });
    if (this.current) return Promise.resolve({ type: 'outstanding', sinceMs: this.current.startedAt });
    let child: ChildProcess;
    try {
      child = spawn(this.shell, ['-c', script, 'hearth-probe', ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      return Promise.resolve({ type: 'error', message: err instanceof Error ? err.message : String(err) });
    }
    const entry = { child, startedAt: Date.now() };
    this.current = entry;
    child.unref();
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout = (stdout + d).slice(-MAX_OUTPUT)));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-MAX_OUTPUT)));
    return new Promise<ProbeResult>((resolve) => {
      let settled = false;
      const settle = (result: ProbeResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(result);
      };
      const expire = (): void => {
        this.kill(child);
        // Neither the pipes nor the handle may keep the event loop alive while it hangs.
        child.stdout?.destroy();
        child.stderr?.destroy();
        settle({ type: 'timeout', timeoutMs });
      };
      const onAbort = (): void => expire();
      const timer = setTimeout(expire, timeoutMs);
      timer.unref();
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) expire();
      child.once('error', (err) => {
        if (this.current === entry) this.current = undefined;
        settle({ type: 'error', message: err.message });
      });
      child.once('close', (code, sig) => {
        if (this.current === entry) this.current = undefined;
        settle(code === 0 ? { type: 'ok', stdout } : { type: 'failed', code, signal: sig, stderr: stderr.trim() });
      });
    });
  }

  /** Kills an outstanding probe (without waiting for it) and refuses further ones. Idempotent. */
  close(): void {
    this.closed = true;
    if (this.current) this.kill(this.current.child);
  }

  private kill(child: ChildProcess): void {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}
