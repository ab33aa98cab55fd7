import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { repoPath, ROOT } from './tools.js';

/** One JSON log line of hearth (the fields these tests read). */
export interface LogLine {
  readonly level?: string;
  readonly msg?: string;
  readonly api?: { port: number };
  readonly ops?: { port: number };
  readonly [key: string]: unknown;
}

/** A hearth process started by a test. Stop it with `stop()`; the test owns its PID. */
export interface SpawnedHearth {
  readonly child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** The JSON log lines written so far. */
  lines(): LogLine[];
  /** Resolves with the exit code once the process has exited (null if a signal killed it). */
  readonly exited: Promise<number | null>;
  /** True once the process has exited. */
  hasExited(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

/** A `hearth serve` that logged "hearth started", with the ports it bound. */
export interface HearthProcess extends SpawnedHearth {
  readonly apiPort: number;
  readonly opsPort: number;
}

function assertBuilt(): void {
  if (!existsSync(repoPath('dist/main.js'))) {
    throw new Error('dist/main.js is missing: build first (`make build`, or `npx tsc -p tsconfig.json`)');
  }
}

/**
 * Runs `node bin/hearth.js <args>` with PATH and `env` only, so that no HEARTH_* variable of
 * the test's own environment leaks in.
 */
export function spawnHearth(args: readonly string[], env: Record<string, string> = {}): SpawnedHearth {
  assertBuilt();
  const child = spawn(process.execPath, ['bin/hearth.js', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const hasExited = (): boolean => child.exitCode !== null || child.signalCode !== null;
  const exited = new Promise<number | null>((resolve) => {
    if (hasExited()) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
  return {
    child,
    output: () => out,
    lines: () =>
      out.split('\n').flatMap((line) => {
        try {
          return [JSON.parse(line) as LogLine];
        } catch {
          return [];
        }
      }),
    exited,
    hasExited,
    async stop(graceMs = 15_000) {
      if (hasExited()) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Waits until a log line matches, the process exits, or `timeoutMs` passes; returns the line if one matched. */
export async function waitForLine(proc: SpawnedHearth, match: (line: LogLine) => boolean, timeoutMs: number): Promise<LogLine | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = proc.lines().find(match);
    if (found || proc.hasExited() || Date.now() >= deadline) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts `hearth serve` with the API and ops listeners on 127.0.0.1:0 and waits for its
 * "hearth started" log line, which names the ports it bound.
 *
 * @throws Error with the process's output when it exits or does not start in `timeoutMs`.
 */
export async function startHearth(options: { args?: readonly string[]; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<HearthProcess> {
  const proc = spawnHearth(['serve', '--api-listen', '127.0.0.1:0', '--ops-listen', '127.0.0.1:0', ...(options.args ?? [])], options.env);
  const started = await waitForLine(proc, (l) => l.msg === 'hearth started', options.timeoutMs ?? 20_000);
  if (!started?.ops) {
    await proc.stop(2_000);
    throw new Error(`hearth serve did not start:\n${proc.output()}`);
  }
  return Object.assign(proc, { apiPort: started.api?.port ?? 0, opsPort: started.ops.port });
}

/** Runs a hearth command to completion (or kills it after `timeoutMs`). */
export async function runHearth(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 20_000): Promise<{ code: number | null; output: string }> {
  const proc = spawnHearth(args, env);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), timeoutMs);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, output: proc.output() };
}
