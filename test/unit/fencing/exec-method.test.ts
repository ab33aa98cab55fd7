import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ExecFence, MAX_OUTPUT_BYTES } from '../../../src/fencing/exec-method.js';
import type { FenceTarget } from '../../../src/fencing/method.js';
import type { ProcessIdentity } from '../../../src/identity.js';
import { isGone, waitUntilGone } from '../../support/fence-children.js';
import { type RecordedLine, recordingLogger } from '../../support/recording-logger.js';
import { waitFor } from '../../support/wait.js';

const PROCESS: ProcessIdentity = {
  pid: 4242,
  startTicks: '453332',
  bootId: 'fb6b09a2-cdab-428e-a20f-32be8cc9f943',
  pidNamespace: 'pid:[4026531836]',
  hostname: 'node1.example',
  addresses: ['10.0.0.7', '2001:db8::7'],
  pod: { name: 'hearth-1', uid: 'u-1', namespace: 'storage', node: 'node-3' },
};
const DIED_AT_MS = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
const TARGET: FenceTarget = { incarnation: 'node1:7587', host: 'node1@rbd', cluster: 'c1@rbd', process: PROCESS, diedAtMs: DIED_AT_MS };

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearth-exec-fence-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.unstubAllEnvs();
});

/** An exec fence running `sh -c script`, and the lines it logs. */
function shFence(script: string, timeoutMs = 20_000): { fence: ExecFence; lines: RecordedLine[] } {
  const lines: RecordedLine[] = [];
  return { fence: new ExecFence({ command: 'sh', args: ['-c', script], timeoutMs }, recordingLogger([], lines)), lines };
}

const never = new AbortController().signal;

describe('ExecFence', () => {
  it('exit 0 is fenced; the output is logged at info', async () => {
    const { fence, lines } = shFence('echo powered off; echo a note >&2');
    expect(await fence.fence(TARGET, never)).toEqual({ fenced: true, detail: 'command exited 0' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'info', fields: { incarnation: 'node1:7587', command: 'sh', exitCode: 0, stdout: 'powered off\n', stderr: 'a note\n' } });
  });

  it('a non-zero exit is not fenced: the status and the last line of stderr are the reason; logged at warn', async () => {
    const { fence, lines } = shFence('echo "connecting to bmc" >&2; echo "Failed: Unable to obtain correct plug status" >&2; exit 3');
    expect(await fence.fence(TARGET, never)).toEqual({ fenced: false, reason: 'fence command sh exited 3: Failed: Unable to obtain correct plug status' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', fields: { exitCode: 3 } });
  });

  it('a command killed by a signal is not fenced', async () => {
    const { fence } = shFence('kill -TERM $$');
    expect(await fence.fence(TARGET, never)).toEqual({ fenced: false, reason: 'fence command sh was killed by SIGTERM' });
  });

  it("gets what is known of the incarnation, PATH, and nothing else of hearth's environment", async () => {
    vi.stubEnv('HEARTH_ETCD_PASSWORD', 'pw-never-in-a-child-5c1d');
    vi.stubEnv('SOME_OTHER_VARIABLE', 'x');
    // A PATH without `@` in it: the logged output has URL-like runs redacted.
    vi.stubEnv('PATH', '/usr/local/bin:/usr/bin:/bin');
    const lines: RecordedLine[] = [];
    // `env` prints its whole environment, one NAME=value a line.
    const fence = new ExecFence({ command: 'env', args: [], timeoutMs: 20_000 }, recordingLogger([], lines));
    expect(await fence.fence(TARGET, never)).toMatchObject({ fenced: true });
    const stdout = String(lines[0]?.fields.stdout);
    expect(stdout).not.toContain('pw-never-in-a-child');
    const env = Object.fromEntries(stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(env).toEqual({
      PATH: '/usr/local/bin:/usr/bin:/bin',
      HEARTH_FENCE_INCARNATION: 'node1:7587',
      HEARTH_FENCE_HOST: 'node1@rbd',
      HEARTH_FENCE_CLUSTER: 'c1@rbd',
      HEARTH_FENCE_DIED_AT: '2026-01-02T03:04:05.678Z',
      HEARTH_FENCE_PID: '4242',
      HEARTH_FENCE_START_TICKS: '453332',
      HEARTH_FENCE_BOOT_ID: 'fb6b09a2-cdab-428e-a20f-32be8cc9f943',
      HEARTH_FENCE_PID_NAMESPACE: 'pid:[4026531836]',
      HEARTH_FENCE_HOSTNAME: 'node1.example',
      HEARTH_FENCE_ADDRESSES: '10.0.0.7,2001:db8::7',
      HEARTH_FENCE_POD_NAME: 'hearth-1',
      HEARTH_FENCE_POD_UID: 'u-1',
      HEARTH_FENCE_POD_NAMESPACE: 'storage',
      HEARTH_FENCE_POD_NODE: 'node-3',
    });
  });

  it('still runs without a record of the process, with its variables empty: the command decides', async () => {
    const { fence, lines } = shFence('echo "pid=[$HEARTH_FENCE_PID] host=$HEARTH_FENCE_HOST"; [ -z "$HEARTH_FENCE_BOOT_ID" ] && exit 4');
    expect(await fence.fence({ ...TARGET, process: undefined }, never)).toEqual({ fenced: false, reason: 'fence command sh exited 4' });
    expect(lines[0]?.fields.stdout).toBe('pid=[] host=node1@rbd\n');
  });

  it('kills a command that hangs at its timeout, with everything it started; that is not fenced', async () => {
    // The shell starts a background sleep (which keeps the output open) and waits for it.
    const { fence, lines } = shFence('sleep 30 & echo "$$ $!"; wait', 300);
    expect(await fence.fence(TARGET, never)).toEqual({ fenced: false, reason: 'fence command sh did not finish within 300 ms and was killed' });
    const pids = String(lines[0]?.fields.stdout).trim().split(' ').map(Number);
    expect(pids).toHaveLength(2);
    for (const pid of pids) await waitUntilGone(pid);
    expect(lines[0]?.level).toBe('warn');
  });

  it('does not wait for what left its process group and holds the output open', async () => {
    // `setsid` takes the background sleep out of the group the timeout kills; it keeps stdout open.
    const { fence, lines } = shFence('setsid sleep 30 & echo "$!"; wait', 300);
    try {
      expect(await fence.fence(TARGET, never)).toEqual({ fenced: false, reason: 'fence command sh did not finish within 300 ms and was killed' });
    } finally {
      const straggler = Number(String(lines[0]?.fields.stdout).trim());
      if (straggler > 0) process.kill(straggler, 'SIGKILL');
    }
  });

  it('an abort kills the command and its process group; that is not fenced', async () => {
    const pidFile = join(dir, 'abort.pid');
    // $0 is the pid file: the test waits for it before aborting.
    const lines: RecordedLine[] = [];
    const fence = new ExecFence({ command: 'sh', args: ['-c', 'sleep 30 & echo "$$ $!" > "$0"; wait', pidFile], timeoutMs: 60_000 }, recordingLogger([], lines));
    const abort = new AbortController();
    const outcome = fence.fence(TARGET, abort.signal);
    const pids = await waitFor(async () => {
      const text = await readFile(pidFile, 'utf8').catch(() => '');
      return /^\d+ \d+\n$/.test(text) ? text.trim().split(' ').map(Number) : undefined;
    }, { what: 'the fence command to start' });
    expect(await isGone(pids[1]!)).toBe(false);
    abort.abort();
    expect(await outcome).toEqual({ fenced: false, reason: 'fence command sh was stopped: aborted' });
    for (const pid of pids) await waitUntilGone(pid);
    // Already aborted: nothing is started.
    expect(await fence.fence(TARGET, abort.signal)).toEqual({ fenced: false, reason: 'aborted before the fence command started' });
  });

  it('keeps only the end of long output, and redacts secrets in it', async () => {
    const { fence, lines } = shFence('seq 1 5000; echo "login amqp://admin:hunter2@bmc1/ password=hunter2 --token hunter2" >&2; exit 1');
    const outcome = await fence.fence(TARGET, never);
    expect(outcome).toMatchObject({ fenced: false });
    expect(JSON.stringify(outcome)).not.toContain('hunter2');
    const { stdout, stderr } = lines[0]!.fields as { stdout: string; stderr: string };
    expect(stdout.startsWith('…')).toBe(true);
    expect(stdout.endsWith('4999\n5000\n')).toBe(true);
    expect(Buffer.byteLength(stdout.slice(1))).toBeLessThanOrEqual(MAX_OUTPUT_BYTES);
    expect(stderr).not.toContain('hunter2');
    expect(stderr).toBe('login amqp://admin:[REDACTED]@bmc1/ password=[REDACTED] --token [REDACTED]\n');
  });

  it('a command that does not exist is not fenced, and says so', async () => {
    const lines: RecordedLine[] = [];
    const fence = new ExecFence({ command: join(dir, 'no-such-fence'), args: [], timeoutMs: 20_000 }, recordingLogger([], lines));
    expect(await fence.fence(TARGET, never)).toEqual({ fenced: false, reason: `fence command ${join(dir, 'no-such-fence')} was not found` });
    expect(lines[0]).toMatchObject({ level: 'warn', fields: { err: { code: 'ENOENT' } } });
  });
});
