import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { requireTool, run, runHearthCli } from '../deploy/tools.js';

const cinder = requireTool('cinder', 'python3-cinderclient');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearth-auth-it-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** python-cinderclient against hearth, with no Keystone and no stray OS_* settings. */
async function cinderList(args: readonly string[]): Promise<{ code: number; output: string }> {
  const r = await run('cinder', [...args, 'list'], { env: { PATH: process.env.PATH, HOME: dir } });
  return { code: r.code, output: r.stdout + r.stderr };
}

describe('hearth serve with an API token', () => {
  const token = randomBytes(24).toString('hex');
  let hearth: HearthProcess;

  beforeAll(async () => {
    const tokenFile = join(dir, 'api-token');
    await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
    hearth = await startHearth({ name: 'token-auth', env: { HEARTH_API_TOKEN_FILE: tokenFile } });
  });
  afterAll(async () => {
    expect(await hearth?.stop()).toEqual({ code: 0, signal: null });
  });

  it('answers 401 with a Bearer challenge and Cinder\'s fault body without a token', async () => {
    const res = await fetch(`${hearth.apiUrl}/v3/admin/no-such-resource`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="hearth"');
    expect(await res.json()).toMatchObject({ unauthorized: { code: 401 } });
  });

  it('answers 401 to a wrong token, and routes requests with the right one as X-Auth-Token or Bearer', async () => {
    const wrong = await fetch(`${hearth.apiUrl}/v3/admin/no-such-resource`, { headers: { 'X-Auth-Token': `${token}0` } });
    expect(wrong.status).toBe(401);
    for (const headers of [{ 'X-Auth-Token': token }, { Authorization: `Bearer ${token}` }]) {
      const res = await fetch(`${hearth.apiUrl}/v3/admin/no-such-resource`, { headers });
      expect(res.status, Object.keys(headers)[0]).toBe(404);
      expect(await res.json()).toMatchObject({ itemNotFound: { code: 404 } });
    }
  });

  it('serves the version document to anyone, as Cinder does', async () => {
    const res = await fetch(`${hearth.apiUrl}/`);
    expect(res.status).toBe(300);
    expect(await res.json()).toMatchObject({ versions: [{ id: 'v3.0' }] });
  });

  it.skipIf(!cinder)('accepts python-cinderclient\'s admin_token auth, which sends X-Auth-Token', async () => {
    const common = ['--os-auth-type', 'admin_token', '--os-endpoint', `${hearth.apiUrl}/v3/admin`, '--os-project-id', 'admin'];
    const refused = await cinderList([...common, '--os-token', `wrong-${token}`]);
    expect(refused.code).not.toBe(0);
    expect(refused.output).toContain('the token was not accepted. (HTTP 401)');
    // Authenticated, the request reaches the volume API (a list, or 404 where it is not built yet).
    const accepted = await cinderList([...common, '--os-token', token]);
    expect(accepted.output).not.toContain('HTTP 401');
    expect(accepted.code === 0 || accepted.output.includes('(HTTP 404)'), accepted.output).toBe(true);
  });
});

describe('hearth serve in Cinder\'s noauth mode', () => {
  it('is the default on loopback and takes the user:project token cinderclient\'s noauth sends', async () => {
    const hearth = await startHearth({ name: 'noauth' });
    try {
      const res = await fetch(`${hearth.apiUrl}/v3/admin/no-such-resource`, { headers: { 'X-Auth-Token': 'admin:admin' } });
      expect(res.status).toBe(404);
      if (cinder) {
        const cli = await cinderList(['--os-auth-type', 'noauth', '--os-user-id', 'admin', '--os-project-id', 'admin', '--os-endpoint', `${hearth.apiUrl}/v3/admin`]);
        expect(cli.output).not.toContain('HTTP 401');
      }
    } finally {
      expect(await hearth.stop()).toEqual({ code: 0, signal: null });
    }
  });

  it('is refused on a non-loopback address: exit 2 and a message naming the way out', async () => {
    // Refused while the configuration is checked, before anything listens.
    const res = await runHearthCli(['serve'], { HEARTH_DATA_DIR: join(dir, 'exposed'), HEARTH_API_LISTEN: '0.0.0.0:0', HEARTH_OPS_LISTEN: '127.0.0.1:0' });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('api.auth (HEARTH_API_AUTH): noauth (every request is admin) is allowed only on a loopback api.listen');
    expect(res.stderr).toContain('api.allowRemoteNoauth');
    expect(res.stdout).not.toContain('hearth started');
  });
});

describe('hearth serve with an unusable token file', () => {
  it('exits 2 before listening, naming the file', async () => {
    const missing = join(dir, 'no-such-token');
    const res = await runHearthCli(['serve'], {
      HEARTH_DATA_DIR: join(dir, 'bad'),
      HEARTH_API_TOKEN_FILE: missing,
      HEARTH_API_LISTEN: '127.0.0.1:0',
      HEARTH_OPS_LISTEN: '127.0.0.1:0',
    });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`api.tokenFile (HEARTH_API_TOKEN_FILE): ${missing} cannot be read (no such file, ENOENT)`);
    expect(res.stdout).not.toContain('hearth started');
  });
});
