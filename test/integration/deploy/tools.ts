import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasBinary } from '../../support/binaries.js';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Absolute path of a repository file. */
export function repoPath(relative: string): string {
  return join(ROOT, relative);
}

/**
 * Whether a command-line tool these checks need (kubectl, promtool, cinder, openssl) is
 * installed. Under CI a missing tool fails the test file at once, since a skipped check would
 * pass unnoticed; elsewhere the caller skips with a message naming the package to install.
 */
export function requireTool(name: string, debianPackage: string): boolean {
  if (hasBinary(name)) return true;
  const hint = `${name} is not installed (Debian package ${debianPackage}; scripts/install-system-deps.sh installs it)`;
  if (process.env.CI === 'true') throw new Error(`${hint}. CI never skips this check.`);
  console.warn(`skipping: ${hint}`);
  return false;
}

/** The outcome of one command. */
export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to completion (never through a shell) and returns its exit code and output. */
export function run(command: string, args: readonly string[], options: { input?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      [...args],
      { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, maxBuffer: 32 * 1024 * 1024, timeout: 60_000 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') {
          reject(new Error(`${command} could not run: ${err.message}`, { cause: err }));
          return;
        }
        resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/**
 * Runs the hearth CLI from source (the harness's `test/support/hearth-main.ts` through tsx)
 * with PATH and `env` only, so that no HEARTH_* variable of the test's environment leaks in.
 */
export function runHearthCli(args: readonly string[], env: Record<string, string> = {}): Promise<RunResult> {
  return run(process.execPath, ['--import', 'tsx', 'test/support/hearth-main.ts', ...args], { env: { PATH: process.env.PATH, ...env } });
}
