// test/support/fence-kill.mjs, the fault suite's fence command, run as hearth runs it: through
// an exec fence, as an executable found by its path (shebang and mode as committed).
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { ExecFence } from '../../../src/fencing/exec-method.js';
import type { FenceTarget } from '../../../src/fencing/method.js';
import { currentProcess } from '../../../src/fencing/process-identity.js';
import type { ProcessIdentity } from '../../../src/identity.js';
import { identityOf, isGone, sleeper, stopChildren } from '../../support/fence-children.js';
import { type RecordedLine, recordingLogger } from '../../support/recording-logger.js';

const FENCE_KILL = join(import.meta.dirname, '../../support/fence-kill.mjs');

let self: ProcessIdentity;
beforeAll(async () => {
  self = await currentProcess(await loadConfig({ env: {} }));
});
afterEach(() => stopChildren());

function fenceKill(args: string[] = []): { fence: ExecFence; lines: RecordedLine[] } {
  const lines: RecordedLine[] = [];
  return { fence: new ExecFence({ command: FENCE_KILL, args, timeoutMs: 20_000 }, recordingLogger([], lines)), lines };
}

function target(process: ProcessIdentity | undefined): FenceTarget {
  return { incarnation: 'node1:7587', host: 'node1@rbd', cluster: 'c1@rbd', process, diedAtMs: Date.now() };
}

const never = new AbortController().signal;

describe('fence-kill.mjs', () => {
  it('kills a frozen (SIGSTOPped) process by its pid and start time, and exits 0; again, it exits 0 as already gone', async () => {
    const child = await sleeper();
    child.kill('SIGSTOP');
    const t = target(await identityOf(child.pid, self));
    const exited = once(child, 'exit');

    const first = fenceKill();
    expect(await first.fence.fence(t, never)).toEqual({ fenced: true, detail: 'command exited 0' });
    expect(await exited).toEqual([null, 'SIGKILL']);
    expect(await isGone(child.pid)).toBe(true);
    expect(first.lines[0]?.fields.stdout).toContain(`sent SIGKILL to process ${child.pid}`);

    const second = fenceKill();
    expect(await second.fence.fence(t, never)).toEqual({ fenced: true, detail: 'command exited 0' });
    expect(second.lines[0]?.fields.stdout).toContain(`process ${child.pid} was already gone`);
  });

  it('leaves a process alone whose pid was reused (other start ticks): already gone', async () => {
    const child = await sleeper();
    const t = target({ ...(await identityOf(child.pid, self)), startTicks: '1' });
    const { fence, lines } = fenceKill();
    expect(await fence.fence(t, never)).toEqual({ fenced: true, detail: 'command exited 0' });
    expect(lines[0]?.fields.stdout).toContain('now belongs to a later process');
    expect(await isGone(child.pid)).toBe(false);
  });

  it('refuses (exit 1) a process of another boot, and one it has no record of', async () => {
    const child = await sleeper();
    const elsewhere = target({ ...(await identityOf(child.pid, self)), bootId: '00000000-0000-4000-8000-000000000000' });
    expect(await fenceKill().fence.fence(elsewhere, never)).toMatchObject({ fenced: false, reason: expect.stringMatching(/exited 1: .*not this machine$/) as unknown });
    expect(await fenceKill().fence.fence(target(undefined), never)).toMatchObject({ fenced: false, reason: expect.stringMatching(/exited 1: .*no process recorded/) as unknown });
    expect(await isGone(child.pid)).toBe(false);
  });

  it('with --refuse-dir, refuses while a file named like the host is there, and fences once it is gone', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-fence-refuse-'));
    try {
      const child = await sleeper();
      child.kill('SIGSTOP');
      const t = target(await identityOf(child.pid, self));
      await writeFile(join(dir, 'node1@rbd'), 'power switch out of reach\n');
      await writeFile(join(dir, 'node2@rbd'), 'another host\n');
      expect(await fenceKill(['--refuse-dir', dir]).fence.fence(t, never)).toMatchObject({ fenced: false, reason: expect.stringMatching(/exited 1: .*refused for node1@rbd: power switch out of reach$/) as unknown });
      expect(await isGone(child.pid)).toBe(false);
      await rm(join(dir, 'node1@rbd'));
      const exited = once(child, 'exit');
      expect(await fenceKill(['--refuse-dir', dir]).fence.fence(t, never)).toEqual({ fenced: true, detail: 'command exited 0' });
      expect(await exited).toEqual([null, 'SIGKILL']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
