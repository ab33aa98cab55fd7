import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import type { FenceTarget } from '../../../src/fencing/method.js';
import { currentProcess, readProcess } from '../../../src/fencing/process-identity.js';
import { onThisMachine, ProcessGoneFence } from '../../../src/fencing/process-method.js';
import type { ProcessIdentity } from '../../../src/identity.js';
import { identityOf, sleeper, stopChildren, waitUntilGone } from '../../support/fence-children.js';
import { waitFor } from '../../support/wait.js';

let self: ProcessIdentity;
beforeAll(async () => {
  self = await currentProcess(await loadConfig({ env: {} }));
});
afterEach(() => stopChildren());

function target(process: ProcessIdentity | undefined): FenceTarget {
  return { incarnation: 'node1:7587', host: 'node1@rbd', cluster: 'c1@rbd', process, diedAtMs: Date.now() };
}

const signal = new AbortController().signal;

describe('ProcessGoneFence', () => {
  it('is not fenced while the recorded process runs, and fenced once it is killed', async () => {
    const child = await sleeper();
    const fence = new ProcessGoneFence(self);
    const t = target(await identityOf(child.pid, self));
    expect(await fence.fence(t, signal)).toEqual({ fenced: false, reason: `process ${child.pid} still runs` });

    // Stopped is not gone: a frozen process can wake up and write.
    child.kill('SIGSTOP');
    expect(await fence.fence(t, signal)).toEqual({ fenced: false, reason: `process ${child.pid} still runs` });

    child.kill('SIGKILL');
    await once(child, 'exit');
    await waitUntilGone(child.pid);
    expect(await fence.fence(t, signal)).toMatchObject({ fenced: true });
  });

  it('is fenced when the pid now belongs to a later process (other start ticks)', async () => {
    const child = await sleeper();
    const recorded = { ...(await identityOf(child.pid, self)), startTicks: '1' };
    expect(await new ProcessGoneFence(self).fence(target(recorded), signal)).toEqual({
      fenced: true,
      detail: `process ${child.pid} is gone (the pid now belongs to a later process)`,
    });
  });

  it('is fenced when the process has exited and only waits to be reaped (a zombie)', async () => {
    // `sh` starts a background sleep, then becomes a sleep that never reaps it: killed, it stays a zombie.
    const parent = spawn('sh', ['-c', 'sleep 30 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const [line] = (await once(parent.stdout, 'data')) as [Buffer];
      const pid = Number(line.toString().trim());
      const recorded = await identityOf(pid, self);
      process.kill(pid, 'SIGKILL');
      await waitFor(async () => (await readProcess(pid))?.exited, { what: `process ${pid} to become a zombie` });
      expect(await readProcess(pid)).toEqual({ startTicks: recorded.startTicks, exited: true });
      expect(await new ProcessGoneFence(self).fence(target(recorded), signal)).toEqual({ fenced: true, detail: `process ${pid} has exited (not yet reaped)` });
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('says "not on this machine" for another boot or another pid namespace, and cannot fence without a record', async () => {
    const child = await sleeper();
    const here = await identityOf(child.pid, self);
    const fence = new ProcessGoneFence(self);
    const elsewhere = { ...here, bootId: '00000000-0000-4000-8000-000000000000' };
    const otherNamespace = { ...here, pidNamespace: 'pid:[1]' };
    expect(await fence.fence(target(elsewhere), signal)).toEqual({ fenced: false, reason: 'not on this machine' });
    expect(await fence.fence(target(otherNamespace), signal)).toEqual({ fenced: false, reason: 'not on this machine' });
    expect(await fence.fence(target(undefined), signal)).toEqual({ fenced: false, reason: 'no record of its process' });
    expect(onThisMachine(target(here), self)).toBe(true);
    expect(onThisMachine(target(elsewhere), self)).toBe(false);
    expect(onThisMachine(target(otherNamespace), self)).toBe(false);
    expect(onThisMachine(target(undefined), self)).toBe(false);
  });
});
