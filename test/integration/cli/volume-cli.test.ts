// `hearth volume …` against a real `hearth serve`, run in-process through runCli.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/program.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';

async function cliWith(env: NodeJS.ProcessEnv, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(argv, { out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`) }, env);
  return { code, out, err };
}

function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  return cliWith({}, ...argv);
}

describe('hearth volume', () => {
  let hearth: HearthProcess;
  let url: string[];
  beforeAll(async () => {
    hearth = await startHearth({ name: 'volume-cli' });
    url = ['--url', hearth.apiUrl];
  });
  afterAll(async () => {
    await hearth?.stop();
  });

  /** `hearth volume show --json`, polled until `done` holds (or the volume is gone, for `undefined`). */
  async function eventually(id: string, done: (v: { status: string; size: number } | undefined) => boolean): Promise<{ status: string; size: number } | undefined> {
    let last: { status: string; size: number } | undefined;
    await expect
      .poll(
        async () => {
          const shown = await cli('volume', 'show', id, '--json', ...url);
          last = shown.code === 0 ? (JSON.parse(shown.out) as { status: string; size: number }) : undefined;
          return done(last);
        },
        { timeout: 20_000, interval: 100 },
      )
      .toBe(true);
    return last;
  }

  it('creates, lists, shows, extends and deletes, with tables for people and JSON for scripts', async () => {
    const created = await cli('volume', 'create', '1', '--name', 'cli-vol', '--json', ...url);
    expect(created.code, created.err).toBe(0);
    const volume = JSON.parse(created.out) as { id: string; status: string; size: number; name: string };
    expect(volume).toMatchObject({ status: 'creating', size: 1, name: 'cli-vol' });
    await eventually(volume.id, (v) => v?.status === 'available');

    const table = await cli('volume', 'show', volume.id, ...url);
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/│ status\s+│ available\s+│/);
    expect(table.out).toContain(volume.id);

    const list = await cli('volume', 'list', '--json', ...url);
    expect((JSON.parse(list.out) as { id: string }[]).map((v) => v.id)).toContain(volume.id);
    expect((await cli('volume', 'list', ...url)).out).toMatch(/ID\s+│ Name\s+│ Status/);

    const extended = await cli('volume', 'extend', volume.id, '2', ...url);
    expect(extended).toMatchObject({ code: 0, out: `Request to extend volume ${volume.id} to 2 GiB has been accepted.\n` });
    expect(await eventually(volume.id, (v) => v?.status === 'available' && v.size === 2)).toMatchObject({ status: 'available', size: 2 });

    const notLarger = await cli('volume', 'extend', volume.id, '2', ...url);
    expect(notLarger.code).toBe(1);
    expect(notLarger.err).toContain('New size for extend must be greater than current size. (current: 2, extended: 2).');

    const deleted = await cli('volume', 'delete', volume.id, '--json', ...url);
    expect(deleted.code, deleted.err).toBe(0);
    expect(JSON.parse(deleted.out)).toEqual({ id: volume.id, accepted: 'delete' });
    await eventually(volume.id, (v) => v === undefined);
    const gone = await cli('volume', 'show', volume.id, ...url);
    expect(gone).toMatchObject({ code: 1, err: expect.stringContaining(`Volume ${volume.id} could not be found. (HTTP 404)`) as string });
  });

  it('escapes control and bidi characters of names in every table cell', async () => {
    const name = 'evil\u202egnp.exe\u001b[2J\nrow';
    const created = await cli('volume', 'create', '1', '--name', name, '--json', ...url);
    expect(created.code).toBe(0);
    const id = (JSON.parse(created.out) as { id: string; name: string }).id;
    expect((JSON.parse(created.out) as { name: string }).name).toBe(name);
    for (const out of [(await cli('volume', 'list', ...url)).out, (await cli('volume', 'show', id, ...url)).out]) {
      expect(out).toContain('evil\\u202egnp.exe\\u001b[2J\\nrow');
      expect(out.includes('\u001b') || out.includes('\u202e')).toBe(false);
    }
  });

  it('refuses a delete while the volume is not in a deletable status, naming it', async () => {
    const volume = JSON.parse((await cli('volume', 'create', '1', '--json', ...url)).out) as { id: string };
    await eventually(volume.id, (v) => v?.status === 'available');
    await fetch(`${hearth.apiUrl}/v3/admin/volumes/${volume.id}/action`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ 'os-reset_status': { status: 'in-use' } }),
    });
    const refused = await cli('volume', 'delete', volume.id, ...url);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('(status is in-use)');
  });

  it('prints the fault message and exits 1 for a missing volume; exits 2 for bad usage', async () => {
    const missing = await cli('volume', 'show', 'nope', ...url);
    expect(missing).toMatchObject({ code: 1, err: expect.stringContaining('Volume nope could not be found. (HTTP 404)') as string });
    const badSize = await cli('volume', 'create', '-3', ...url);
    expect(badSize.code).toBe(2);
    const zero = await cli('volume', 'extend', 'x', '0', ...url);
    expect(zero).toMatchObject({ code: 2, err: expect.stringContaining("size must be a whole number of GiB from 1 to 1048576, got '0'") as string });
    expect((await cli('volume', 'show', ...url)).code).toBe(2);
  });

  it('finds the API from api.listen when no --url is given', async () => {
    const listen = new URL(hearth.apiUrl).host;
    const res = await cliWith({ HEARTH_API_LISTEN: listen }, 'volume', 'list', '--json');
    expect(res.code, res.err).toBe(0);
    expect(Array.isArray(JSON.parse(res.out))).toBe(true);
    expect((await cliWith({ HEARTH_API_LISTEN: 'nonsense' }, 'volume', 'list')).code).toBe(2);
  });

  it('fails with exit 1 and a clear message when the API is unreachable', async () => {
    const res = await cli('volume', 'list', '--url', 'http://127.0.0.1:9');
    expect(res.code).toBe(1);
    expect(res.err).toContain('cannot reach the hearth API at http://127.0.0.1:9');
  });
});

describe('hearth volume with token auth', () => {
  let hearth: HearthProcess;
  let tokenFile: string;
  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-cli-token-'));
    tokenFile = join(dir, 'token');
    await writeFile(tokenFile, 'correct-horse-battery-staple\n', { mode: 0o600 });
    hearth = await startHearth({ name: 'volume-cli-token', env: { HEARTH_API_TOKEN_FILE: tokenFile } });
  });
  afterAll(async () => {
    await hearth?.stop();
  });

  it('sends the token from --token-file (or api.tokenFile) and is refused without it', async () => {
    const refused = await cli('volume', 'list', '--url', hearth.apiUrl);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('(HTTP 401)');
    const created = await cli('volume', 'create', '1', '--json', '--url', hearth.apiUrl, '--token-file', tokenFile);
    expect(created.code, created.err).toBe(0);
    expect(JSON.parse(created.out)).toMatchObject({ status: 'creating', user_id: 'token' });
    const viaConfig = await cliWith({ HEARTH_API_TOKEN_FILE: tokenFile, HEARTH_API_LISTEN: new URL(hearth.apiUrl).host }, 'volume', 'list', '--json');
    expect(viaConfig.code, viaConfig.err).toBe(0);
    expect(JSON.parse(viaConfig.out)).toHaveLength(1);
    const missing = await cli('volume', 'list', '--url', hearth.apiUrl, '--token-file', join(tokenFile, 'nope'));
    expect(missing).toMatchObject({ code: 2, err: expect.stringContaining('cannot read the token file') as string });
  });
});
