/**
 * The exec fence: the operator's command — typically a wrapper around a power-fencing agent
 * such as `fence_ipmilan` — run once per attempt with what is known of the dead incarnation in
 * its environment. Exit status 0 means fenced; anything else, a timeout included, is a failed
 * attempt the fence runner retries with back-off.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { childSearchPath } from '../config/environment.js';
import { redactText } from '../config/redact.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { FenceMethod, FenceOutcome, FenceTarget } from './method.js';

/** How much of each output stream is kept: the end, where a failing command says why. */
export const MAX_OUTPUT_BYTES = 4_096;

/**
 * How long a killed command's output is waited for: a process that left the group (its own
 * `setsid`) can hold it open for ever, and in uninterruptible sleep even SIGKILL waits.
 */
const DRAIN_AFTER_KILL_MS = 1_000;

/** The longest stderr line quoted in a failure's reason. */
const MAX_REASON_LINE_CHARS = 200;

/**
 * The whole environment of a fence command: `PATH`, and what is known of the incarnation.
 * Nothing else of hearth's environment is passed on, so secrets given to hearth as environment
 * variables (`HEARTH_ETCD_PASSWORD`, …) never reach the command or its /proc/<pid>/environ.
 * A value that is not known (no record of the process, not a pod) is the empty string, so a
 * script under `set -u` can still test it.
 */
export function fenceEnvironment(target: FenceTarget, path: string): Record<string, string> {
  const p = target.process;
  return {
    PATH: path,
    HEARTH_FENCE_INCARNATION: target.incarnation,
    HEARTH_FENCE_HOST: target.host,
    HEARTH_FENCE_CLUSTER: target.cluster,
    HEARTH_FENCE_DIED_AT: new Date(target.diedAtMs).toISOString(),
    HEARTH_FENCE_PID: p ? String(p.pid) : '',
    HEARTH_FENCE_START_TICKS: p?.startTicks ?? '',
    HEARTH_FENCE_BOOT_ID: p?.bootId ?? '',
    HEARTH_FENCE_PID_NAMESPACE: p?.pidNamespace ?? '',
    HEARTH_FENCE_HOSTNAME: p?.hostname ?? '',
    HEARTH_FENCE_ADDRESSES: p ? p.addresses.join(',') : '',
    HEARTH_FENCE_POD_NAME: p?.pod?.name ?? '',
    HEARTH_FENCE_POD_UID: p?.pod?.uid ?? '',
    HEARTH_FENCE_POD_NAMESPACE: p?.pod?.namespace ?? '',
    HEARTH_FENCE_POD_NODE: p?.pod?.node ?? '',
  };
}

/** The last {@link MAX_OUTPUT_BYTES} bytes of a stream, and whether earlier ones were dropped. */
class OutputTail {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private dropped = false;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    if (this.bytes > 2 * MAX_OUTPUT_BYTES) this.compact();
  }

  /** The kept text, redacted; starts with `…` when the beginning was dropped. */
  text(): string {
    this.compact();
    const text = Buffer.concat(this.chunks).toString('utf8');
    return redactText(this.dropped ? `…${text}` : text);
  }

  private compact(): void {
    if (this.bytes <= MAX_OUTPUT_BYTES) return;
    const all = Buffer.concat(this.chunks);
    this.chunks = [all.subarray(all.length - MAX_OUTPUT_BYTES)];
    this.bytes = MAX_OUTPUT_BYTES;
    this.dropped = true;
  }
}

/** How the command's run ended, before it is judged. */
type Ending =
  | { readonly kind: 'exit'; readonly code: number | null; readonly signal: NodeJS.Signals | null }
  | { readonly kind: 'spawn-error'; readonly err: NodeJS.ErrnoException }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'abort' };

/** Runs `fencing.exec.command`; one {@link fence} call is one attempt. */
export class ExecFence implements FenceMethod {
  readonly name = 'exec';

  /**
   * @param options `fencing.exec` of the configuration: the command (an absolute path or a name
   *   on PATH, run without a shell), its arguments, and how long one run may take
   * @param logger where the command's output goes: info when it fenced, warn when it did not
   */
  constructor(
    private readonly options: Pick<Config['fencing']['exec'], 'command' | 'args' | 'timeoutMs'>,
    private readonly logger: Logger,
  ) {}

  /**
   * Runs the command once, in a process group of its own so that a timeout or an abort kills
   * whatever it started too. Settles once the command has exited and its output is read (or
   * was given up on); never throws.
   */
  async fence(target: FenceTarget, signal: AbortSignal): Promise<FenceOutcome> {
    if (signal.aborted) return { fenced: false, reason: 'aborted before the fence command started' };
    const started = Date.now();
    const stdout = new OutputTail();
    const stderr = new OutputTail();
    const ending = await this.run(target, signal, stdout, stderr);
    const outcome = judge(ending, this.options, stderr);
    const fields = {
      incarnation: target.incarnation,
      host: target.host,
      command: this.options.command,
      ...(ending.kind === 'exit' ? { exitCode: ending.code, exitSignal: ending.signal } : {}),
      durationMs: Date.now() - started,
      stdout: stdout.text(),
      stderr: stderr.text(),
    };
    if (outcome.fenced) this.logger.info(fields, `fence command fenced ${target.incarnation}`);
    else if (ending.kind === 'spawn-error') this.logger.warn({ ...fields, err: ending.err, reason: outcome.reason }, `fence command failed for ${target.incarnation}`);
    else this.logger.warn({ ...fields, reason: outcome.reason }, `fence command failed for ${target.incarnation}`);
    return outcome;
  }

  private run(target: FenceTarget, signal: AbortSignal, stdout: OutputTail, stderr: OutputTail): Promise<Ending> {
    return new Promise<Ending>((resolve) => {
      let child: ChildProcess;
      try {
        child = spawn(this.options.command, [...this.options.args], {
          env: fenceEnvironment(target, childSearchPath()),
          stdio: ['ignore', 'pipe', 'pipe'],
          shell: false,
          // Its own process group (and session): `kill(-pid)` then reaches everything it started.
          detached: true,
        });
      } catch (err) {
        // Arguments spawn refuses outright (a NUL byte); the usual failures come as 'error'.
        resolve({ kind: 'spawn-error', err: err as NodeJS.ErrnoException });
        return;
      }
      child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
      child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));

      let exit: Ending | undefined;
      let stopped: Ending | undefined;
      let settled = false;
      let drain: NodeJS.Timeout | undefined;
      const finish = (ending: Ending): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(drain);
        signal.removeEventListener('abort', onAbort);
        // Output still held open by something that escaped the group is not waited for.
        child.stdout?.destroy();
        child.stderr?.destroy();
        resolve(ending);
      };
      const killGroup = (): void => {
        // Called only while the group exists: its leader is not reaped yet (no 'exit'), or it
        // was but something it started still holds the output open — and with it the group id.
        if (child.pid === undefined) return;
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // ESRCH: the group is already gone.
        }
      };
      const stop = (why: Ending): void => {
        if (stopped) return;
        stopped = why;
        killGroup();
        // Exited already, and what it left behind kept the output open: its status stands.
        if (exit) finish(exit);
        else drain = setTimeout(() => finish(why), DRAIN_AFTER_KILL_MS);
      };
      const timer = setTimeout(() => stop({ kind: 'timeout' }), this.options.timeoutMs);
      const onAbort = (): void => stop({ kind: 'abort' });
      signal.addEventListener('abort', onAbort, { once: true });

      child.on('error', (err: NodeJS.ErrnoException) => {
        // A start failure (ENOENT, EACCES) has no pid; an error after the start (a failed kill)
        // is not the outcome. Kept listening: a second 'error' without a listener would throw.
        if (child.pid === undefined) finish({ kind: 'spawn-error', err });
      });
      child.once('exit', (code, exitSignal) => {
        // Killed by us: the reason is ours. Else its status decides, even if what it left
        // behind keeps the output open until the timeout kills it.
        exit = stopped ?? { kind: 'exit', code, signal: exitSignal };
      });
      child.once('close', () => finish(exit ?? stopped ?? { kind: 'exit', code: null, signal: null }));
    });
  }
}

function judge(ending: Ending, options: Pick<Config['fencing']['exec'], 'command' | 'timeoutMs'>, stderr: OutputTail): FenceOutcome {
  const command = options.command;
  switch (ending.kind) {
    case 'spawn-error': {
      const code = ending.err.code;
      const why = code === 'ENOENT' ? 'was not found' : code === 'EACCES' ? 'is not executable' : `could not be started (${code ?? ending.err.message})`;
      return { fenced: false, reason: `fence command ${command} ${why}` };
    }
    case 'timeout':
      return { fenced: false, reason: `fence command ${command} did not finish within ${options.timeoutMs} ms and was killed` };
    case 'abort':
      return { fenced: false, reason: `fence command ${command} was stopped: aborted` };
    case 'exit': {
      if (ending.code === 0) return { fenced: true, detail: 'command exited 0' };
      const said = lastLine(stderr.text());
      const status = ending.code !== null ? `exited ${ending.code}` : `was killed by ${ending.signal ?? 'a signal'}`;
      return { fenced: false, reason: `fence command ${command} ${status}${said ? `: ${said}` : ''}` };
    }
  }
}

function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const last = lines[lines.length - 1] ?? '';
  return last.length > MAX_REASON_LINE_CHARS ? `${last.slice(0, MAX_REASON_LINE_CHARS - 1)}…` : last;
}
