// `make run` (hearth serve with no configuration), then the `hearth volume` CLI as separate
// processes, as a user would type it: the single-node daemon runs the same volume manager over
// the in-process bus and the file driver.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../../..');

describe('single node: hearth serve, then hearth volume …', () => {
  let hearth: HearthProcess;
  let hearthCli: (...args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>;

  beforeAll(async () => {
    hearth = await startHearth({ name: 'single-node-cli' });
    // The CLI finds the API from api.listen, as after `make run` (here on a test port).
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, HEARTH_API_LISTEN: new URL(hearth.apiUrl).host };
    hearthCli = async (...args) => {
      try {
        const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', join(REPO, 'test/support/hearth-main.ts'), ...args], { cwd: REPO, env, timeout: 60_000 });
        return { code: 0, stdout, stderr };
      } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
      }
    };
  });
  afterAll(async () => {
    await hearth?.stop();
  });

  it('volume create 1, volume list, volume delete <id>: the volume becomes available, then is gone', async () => {
    const created = await hearthCli('volume', 'create', '1', '--json');
    expect(created.code, created.stderr).toBe(0);
    const { id } = JSON.parse(created.stdout) as { id: string };
    let list = '';
    await expect
      .poll(
        async () => {
          list = (await hearthCli('volume', 'list')).stdout;
          return new RegExp(`${id}\\s*│\\s*│ available`).test(list);
        },
        { timeout: 20_000, interval: 200 },
      )
      .toBe(true);
    expect(list).toMatch(/Host/);
    expect(existsSync(join(hearth.dataDir, 'volumes', `volume-${id}`))).toBe(true);

    const deleted = await hearthCli('volume', 'delete', id);
    expect(deleted).toMatchObject({ code: 0, stdout: `Request to delete volume ${id} has been accepted.\n` });
    await expect.poll(async () => (await hearthCli('volume', 'list', '--json')).stdout.includes(id), { timeout: 20_000, interval: 200 }).toBe(false);
    expect(existsSync(join(hearth.dataDir, 'volumes', `volume-${id}`))).toBe(false);
  });

  it('an operation handed back at shutdown is carried out after a restart (the in-process queue is rebuilt from the op records)', async () => {
    const env = { HEARTH_DRIVER_NAME: 'fake', HEARTH_SHUTDOWN_GRACE_MS: '0' };
    const slow = await startHearth({ name: 'single-node-slow', env: { ...env, HEARTH_DRIVER_FAKE_LATENCY_MS: '60000' } });
    const res = await fetch(`${slow.apiUrl}/v3/admin/volumes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ volume: { size: 1 } }) });
    const { volume } = (await res.json()) as { volume: { id: string } };
    await expect.poll(() => slow.logs().some((l) => l.msg === 'operation started' && l.resource === `volume:${volume.id}`), { timeout: 10_000 }).toBe(true);
    expect(await slow.stop()).toEqual({ code: 0, signal: null });
    expect(slow.logs().some((l) => l.msg === 'handed the op back for another member')).toBe(true);
    const again = await startHearth({ name: 'single-node-again', env: { ...env, HEARTH_DATA_DIR: slow.dataDir } });
    try {
      await expect
        .poll(async () => ((await (await fetch(`${again.apiUrl}/v3/admin/volumes/${volume.id}`)).json()) as { volume: { status: string } }).volume.status, { timeout: 20_000, interval: 100 })
        .toBe('available');
      expect(again.logs().some((l) => l.msg === 'republished queued ops')).toBe(true);
    } finally {
      await again.stop();
    }
  });
});
