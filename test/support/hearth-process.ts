import { join, resolve } from 'node:path';
import { freePort } from './ports.js';
import { ManagedProcess } from './process.js';
import { makeTestDir, removeWhenIdle, usesDir } from './test-dirs.js';
import { GiveUp, waitFor } from './wait.js';

const REPO = resolve(import.meta.dirname, '../..');

/** Options of {@link startHearth}. */
export interface HearthProcessOptions {
  /**
   * `HEARTH_*` settings for the process (ports and data dir are filled in when absent). A data
   * dir made here is removed at the end of the test file (or script) once every process that ran
   * on it has exited (test-dirs.ts); one passed in is the caller's.
   */
  readonly env?: Readonly<Record<string, string>>;
  /** Extra command-line arguments after `serve`. */
  readonly args?: readonly string[];
  /** Extra arguments to node itself, before the script (e.g. `--cpu-prof`, which NODE_OPTIONS refuses). */
  readonly nodeArgs?: readonly string[];
  /** A name for logs, e.g. `worker-1`. */
  readonly name?: string;
  /**
   * `source` runs `src/` through tsx (always the current code); `built` runs `bin/hearth.js`
   * (what a deployer runs; needs `make build`).
   */
  readonly mode?: 'source' | 'built';
  /**
   * Another built tree to run (e.g. a release from test/support/release-build.ts): implies
   * `built` mode, with that tree's `bin/hearth.js` and the tree as working directory.
   */
  readonly root?: string;
  /** Wait until `/readyz` answers 200 (default), `/livez` answers, or not at all. */
  readonly waitFor?: 'ready' | 'live' | 'none';
  readonly startTimeoutMs?: number;
}

/** A `hearth serve` child process on free loopback ports. */
export interface HearthProcess {
  readonly name: string;
  readonly pid: number;
  readonly apiUrl: string;
  readonly opsUrl: string;
  readonly dataDir: string;
  readonly process: ManagedProcess;
  /** Everything it logged so far (JSON lines). */
  output(): string;
  /** Parsed JSON log lines. */
  logs(): Record<string, unknown>[];
  /** SIGTERM and wait; resolves with how it exited. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL and wait. */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT. */
  pause(): void;
  resume(): void;
}

/**
 * Starts `hearth serve` as a real child process and waits until it is ready. When the ports were
 * picked here and another process took one first (EADDRINUSE), it starts again on new ports.
 */
export async function startHearth(options: HearthProcessOptions = {}): Promise<HearthProcess> {
  const portsPicked = !options.env?.HEARTH_API_LISTEN || !options.env.HEARTH_OPS_LISTEN;
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (err) {
      const raced = err instanceof GiveUp && err.message.includes('EADDRINUSE');
      if (!raced || !portsPicked || attempt >= 3) throw err;
    }
  }
}

async function startOnce(options: HearthProcessOptions): Promise<HearthProcess> {
  const name = options.name ?? 'hearth';
  const given = options.env?.HEARTH_DATA_DIR;
  const dataDir = given ?? (await makeTestDir(`hearth-${name}-`));
  if (given === undefined) removeWhenIdle(dataDir);
  const apiListen = options.env?.HEARTH_API_LISTEN ?? `127.0.0.1:${await freePort()}`;
  const opsListen = options.env?.HEARTH_OPS_LISTEN ?? `127.0.0.1:${await freePort()}`;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_OPTIONS: process.env.NODE_OPTIONS,
    HEARTH_LOG_LEVEL: 'debug',
    ...options.env,
    HEARTH_DATA_DIR: dataDir,
    HEARTH_API_LISTEN: apiListen,
    HEARTH_OPS_LISTEN: opsListen,
  };
  const command = process.execPath;
  const root = options.root ?? REPO;
  const mode = options.root === undefined ? (options.mode ?? 'source') : 'built';
  const args = [
    ...(options.nodeArgs ?? []),
    ...(mode === 'source'
      ? ['--import', 'tsx', join(REPO, 'test/support/hearth-main.ts'), 'serve', ...(options.args ?? [])]
      : ['--enable-source-maps', join(root, 'bin/hearth.js'), 'serve', ...(options.args ?? [])]),
  ];
  const child = ManagedProcess.start({ command, args, env, cwd: root, logDir: dataDir, name });
  // Also when the dir came from an earlier process's handle (a restart on the same data).
  usesDir(dataDir, child);
  const opsUrl = `http://${opsListen}`;
  const handle: HearthProcess = {
    name,
    pid: child.pid,
    apiUrl: `http://${apiListen}`,
    opsUrl,
    dataDir,
    process: child,
    output: () => child.output(),
    logs: () =>
      child
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    stop: (graceMs) => child.stop(graceMs),
    kill: async () => {
      child.killNow();
      await child.waitForExit();
    },
    pause: () => child.signal('SIGSTOP'),
    resume: () => child.signal('SIGCONT'),
  };
  const probe = options.waitFor ?? 'ready';
  if (probe !== 'none') {
    const path = probe === 'ready' ? '/readyz' : '/livez';
    await waitFor(
      async () => {
        if (!child.alive) throw new GiveUp(`${name} exited (${JSON.stringify(child.exit)}):\n${child.tail()}`);
        const res = await fetch(`${opsUrl}${path}`, { signal: AbortSignal.timeout(1_000) });
        return res.status === 200;
      },
      { timeoutMs: options.startTimeoutMs ?? 30_000, intervalMs: 100, what: `${name} ${path}` },
    ).catch((err: unknown) => {
      child.killNow();
      throw err;
    });
  }
  return handle;
}
