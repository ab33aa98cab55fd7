import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bearerToken, noauthCaller, type ApiAuthOptions } from '../../../src/api/auth.js';
import { ApiServer } from '../../../src/api/server.js';
import { TokenFile } from '../../../src/api/token-file.js';
import { ConfigError } from '../../../src/errors.js';
import { silentLogger, type Logger } from '../../../src/observability/logger.js';

const ADMIN = 'admin-token-0123456789abcdef';
const READER = 'reader-token-0123456789abcdef';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearth-auth-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function tokenFile(name: string, text: string, options: { recheckMs?: number; logger?: Logger } = {}): Promise<TokenFile> {
  const path = join(dir, name);
  await writeFile(path, text);
  const file = new TokenFile(path, { option: 'api.tokenFile', env: 'HEARTH_API_TOKEN_FILE', logger: options.logger ?? silentLogger(), ...options });
  await file.load();
  return file;
}

/** An API with one read and one write route that echo who the caller is. */
function server(auth?: ApiAuthOptions): ApiServer {
  const api = new ApiServer({ logger: silentLogger(), maxBodyBytes: 65_536, ...(auth ? { auth } : {}) });
  api.register((app) => {
    app.get('/v3/:project/whoami', async (req) => req.auth);
    app.post('/v3/:project/whoami', async (req) => req.auth);
  });
  return api;
}

describe('API auth, noauth mode (Cinder NoAuthMiddleware)', () => {
  it('is the default and treats X-Auth-Token user:project as an admin caller', async () => {
    const api = server();
    const res = await api.app.inject({ method: 'POST', url: '/v3/p1/whoami', headers: { 'x-auth-token': 'alice:p1' } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ mode: 'noauth', userId: 'alice', projectId: 'p1', role: 'admin' });
  });

  it('defaults the project to the user and a missing token to admin:admin', () => {
    expect(noauthCaller('bob')).toMatchObject({ userId: 'bob', projectId: 'bob', role: 'admin' });
    expect(noauthCaller(':admin')).toMatchObject({ userId: '', projectId: 'admin' });
    expect(noauthCaller(undefined)).toMatchObject({ userId: 'admin', projectId: 'admin', role: 'admin' });
  });
});

describe('API auth, token mode', () => {
  it('keeps the version documents public, as Cinder does', async () => {
    const api = server({ mode: 'token', admin: await tokenFile('t', ADMIN) });
    expect((await api.app.inject({ url: '/' })).statusCode).toBe(300);
    expect((await api.app.inject({ url: '/v3/' })).statusCode).toBe(200);
  });

  it('answers a request without a token with 401, a Bearer challenge and Cinder\'s fault body', async () => {
    const api = server({ mode: 'token', admin: await tokenFile('t', ADMIN) });
    const res = await api.app.inject({ url: '/v3/p1/whoami' });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="hearth"');
    expect(res.json()).toEqual({
      unauthorized: { code: 401, message: 'Authentication required: send the API token as X-Auth-Token or as Authorization: Bearer.' },
    });
  });

  it('refuses wrong tokens of any length, and prefixes or extensions of the right one', async () => {
    const api = server({ mode: 'token', admin: await tokenFile('t', ADMIN) });
    for (const wrong of ['x', ADMIN.slice(0, -1), `${ADMIN}x`, ADMIN.toUpperCase(), 'admin:admin', 'z'.repeat(4096)]) {
      const res = await api.app.inject({ url: '/v3/p1/whoami', headers: { 'x-auth-token': wrong } });
      expect(res.statusCode, wrong).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="hearth", error="invalid_token"');
      expect(Object.keys(res.json<object>())).toEqual(['unauthorized']);
    }
  });

  it('accepts the token as X-Auth-Token and as Authorization: Bearer (any case of the scheme)', async () => {
    const api = server({ mode: 'token', admin: await tokenFile('t', `${ADMIN}\n`) });
    for (const headers of [{ 'x-auth-token': ADMIN }, { authorization: `Bearer ${ADMIN}` }, { authorization: `bearer  ${ADMIN} ` }]) {
      const res = await api.app.inject({ method: 'POST', url: '/v3/p1/whoami', headers });
      expect(res.statusCode, JSON.stringify(headers)).toBe(200);
      expect(res.json()).toEqual({ mode: 'token', userId: 'token', role: 'admin' });
    }
  });

  it('prefers a Bearer token over X-Auth-Token and ignores other Authorization schemes', async () => {
    const api = server({ mode: 'token', admin: await tokenFile('t', ADMIN) });
    const wrongBearer = await api.app.inject({ url: '/v3/p/whoami', headers: { authorization: 'Bearer nope-nope-nope-nope', 'x-auth-token': ADMIN } });
    expect(wrongBearer.statusCode).toBe(401);
    const basic = await api.app.inject({ url: '/v3/p/whoami', headers: { authorization: 'Basic YTpi', 'x-auth-token': ADMIN } });
    expect(basic.statusCode).toBe(200);
  });

  it('authenticates before routing and version negotiation, so strangers learn nothing', async () => {
    const api = server({ mode: 'token', admin: await tokenFile('t', ADMIN) });
    expect((await api.app.inject({ url: '/v3/p1/no-such-thing' })).statusCode).toBe(401);
    const badVersion = await api.app.inject({ url: '/v3/p1/whoami', headers: { 'openstack-api-version': 'volume 9.99' } });
    expect(badVersion.statusCode).toBe(401);
    const known = await api.app.inject({ url: '/v3/p1/no-such-thing', headers: { 'x-auth-token': ADMIN } });
    expect(known.statusCode).toBe(404);
  });

  it('lets the read-only token GET but answers anything else with 403 and Cinder\'s forbidden fault', async () => {
    const api = server({ mode: 'token', admin: await tokenFile('a', ADMIN), reader: await tokenFile('r', READER) });
    const get = await api.app.inject({ url: '/v3/p1/whoami', headers: { 'x-auth-token': READER } });
    expect(get.statusCode).toBe(200);
    expect(get.json()).toMatchObject({ role: 'reader', userId: 'reader-token' });
    const post = await api.app.inject({ method: 'POST', url: '/v3/p1/whoami', headers: { 'x-auth-token': READER } });
    expect(post.statusCode).toBe(403);
    expect(post.json()).toEqual({
      forbidden: { code: 403, message: "Policy doesn't allow POST /v3/p1/whoami to be performed: the token is read-only." },
    });
    const admin = await api.app.inject({ method: 'POST', url: '/v3/p1/whoami', headers: { 'x-auth-token': ADMIN } });
    expect(admin.statusCode).toBe(200);
    expect(admin.json()).toMatchObject({ role: 'admin' });
  });
});

describe('TokenFile', () => {
  it('takes a rotated token once the file changes, and drops the old one', async () => {
    const file = await tokenFile('t', ADMIN, { recheckMs: 0 });
    const api = server({ mode: 'token', admin: file });
    const rotated = 'rotated-token-0123456789abcdef';
    await writeFile(file.path, rotated);
    expect((await api.app.inject({ url: '/v3/p/whoami', headers: { 'x-auth-token': ADMIN } })).statusCode).toBe(401);
    expect((await api.app.inject({ url: '/v3/p/whoami', headers: { 'x-auth-token': rotated } })).statusCode).toBe(200);
  });

  it('keeps the last good token when the file turns bad after start', async () => {
    const warnings: unknown[] = [];
    const logger: Logger = { ...silentLogger(), warn: (obj: unknown) => warnings.push(obj), child: () => logger };
    const file = await tokenFile('t', ADMIN, { recheckMs: 0, logger });
    await writeFile(file.path, '');
    const api = server({ mode: 'token', admin: file });
    expect((await api.app.inject({ url: '/v3/p/whoami', headers: { 'x-auth-token': ADMIN } })).statusCode).toBe(200);
    expect(warnings).toHaveLength(1);
    expect(JSON.stringify(warnings)).not.toContain(ADMIN);
  });

  it('does not look at the file again before recheckMs has passed', async () => {
    let now = 1_000;
    const path = join(dir, 't');
    await writeFile(path, ADMIN);
    const file = new TokenFile(path, { option: 'api.tokenFile', env: 'E', logger: silentLogger(), recheckMs: 5_000, now: () => now });
    await file.load();
    const before = await file.digest();
    await writeFile(path, 'rotated-token-0123456789abcdef');
    expect((await file.digest()).equals(before)).toBe(true);
    now += 5_000;
    expect((await file.digest()).equals(before)).toBe(false);
  });

  it('refuses to start on a missing file, a short token or one with spaces, without printing the token', async () => {
    const missing = new TokenFile(join(dir, 'nope'), { option: 'api.tokenFile', env: 'HEARTH_API_TOKEN_FILE', logger: silentLogger() });
    const err = await missing.load().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues[0]).toMatchObject({ path: 'api.tokenFile', env: 'HEARTH_API_TOKEN_FILE' });
    expect((err as ConfigError).message).toContain(join(dir, 'nope'));
    for (const bad of ['short-token', 'has a space in the middle of it']) {
      const e = await tokenFile('bad', bad).catch((x: unknown) => x);
      expect(e, bad).toBeInstanceOf(ConfigError);
      expect((e as Error).message).not.toContain(bad);
    }
  });
});

describe('bearerToken', () => {
  it('reads only the Bearer scheme', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('BEARER   abc  ')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken('Bearer')).toBeUndefined();
    expect(bearerToken('Bearerabc')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});
