// The API's hardening, in process (fastify inject): fixed-word 5xx bodies with a request id,
// Host and Origin checks, links from the public URL or a trusted proxy, body depth and
// prototype keys, microversion parsing, and the fault message bound.
import { describe, expect, it } from 'vitest';
import { checkJsonDepth, hasProtoKey, MAX_BODY_DEPTH, parseJsonBody } from '../../../src/api/body.js';
import { faultBody, MAX_FAULT_MESSAGE_CHARS } from '../../../src/api/faults.js';
import { defaultPublicUrl, HostCheck, parseHostHeader } from '../../../src/api/host-check.js';
import { MAX_VERSION, MIN_VERSION, negotiate } from '../../../src/api/microversion.js';
import { ApiServer } from '../../../src/api/server.js';
import { BackendUnavailableError, OutcomeUnknownError } from '../../../src/errors.js';
import { createLogger, silentLogger } from '../../../src/observability/logger.js';

function capturingLogger(): { logger: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) } });
  return { logger, lines };
}

describe('5xx answers', () => {
  it('name the failing dependency in fixed words with a request id; the log line with that id has the detail', async () => {
    const { logger, lines } = capturingLogger();
    const api = new ApiServer({ logger, maxBodyBytes: 65_536 });
    const detail = 'etcd get /hearth-secret-prefix/resources/volume/x failed: 14 UNAVAILABLE: No connection established to 10.1.2.3:2379 (dns:user:pw@etcd-0:2379)';
    api.app.get('/v3/:project_id/boom', async () => {
      throw new BackendUnavailableError('etcd', detail);
    });
    api.app.get('/v3/:project_id/unknown', async () => {
      throw new OutcomeUnknownError('/hearth/resources/volume/x', 'etcd txn on /hearth/resources/volume/x: deadline exceeded');
    });
    api.app.get('/v3/:project_id/bug', async () => {
      throw new TypeError('Cannot read properties of undefined (reading "x")');
    });
    const res = await api.app.inject({ url: '/v3/admin/boom' });
    expect(res.statusCode).toBe(503);
    const requestId = res.headers['x-openstack-request-id'] as string;
    expect(requestId).toMatch(/^req-[0-9a-f-]{36}$/);
    expect(res.json()).toEqual({ serviceUnavailable: { code: 503, message: `The state store is unavailable. (request ${requestId})` } });
    for (const secret of ['hearth-secret-prefix', '10.1.2.3', 'pw@', 'UNAVAILABLE']) expect(res.body).not.toContain(secret);
    const line = lines.find((l) => l.requestId === requestId);
    expect(line).toMatchObject({ level: 'error', msg: 'API request failed' });
    expect(JSON.stringify(line)).toContain('10.1.2.3:2379');
    expect(JSON.stringify(line)).not.toContain('pw@');
    expect((await api.app.inject({ url: '/v3/admin/unknown' })).json()).toMatchObject({ serviceUnavailable: { message: expect.stringMatching(/^The state store did not confirm the change/) as string } });
    const bug = await api.app.inject({ url: '/v3/admin/bug' });
    expect(bug.statusCode).toBe(500);
    expect(bug.body).not.toContain('Cannot read');
    await api.close();
  });

  it('bound every fault message', () => {
    const message = (faultBody(400, 'x'.repeat(10_000)).badRequest as { message: string }).message;
    expect(message).toHaveLength(MAX_FAULT_MESSAGE_CHARS);
  });
});

describe('the Host and Origin checks (noauth)', () => {
  it('parse Host headers', () => {
    expect(parseHostHeader('LOCALHOST:8776')).toEqual({ name: 'localhost', port: 8776 });
    expect(parseHostHeader('[::1]:8776')).toEqual({ name: '::1', port: 8776 });
    expect(parseHostHeader('127.0.0.1')).toEqual({ name: '127.0.0.1', port: 80 });
    for (const bad of ['', 'a b', 'host:99999', 'user@host', 'host:port', 'http://host']) expect(parseHostHeader(bad)).toBeUndefined();
  });

  it('accept loopback names on the listen port and listed hosts, nothing else', () => {
    const check = new HostCheck(['localhost:18776']);
    for (const ok of ['localhost:8776', '127.0.0.1:8776', '127.1.2.3:8776', '[::1]:8776', 'localhost:18776', 'LOCALHOST:18776']) expect(check.accepts(ok, 8776)).toBe(true);
    for (const bad of [undefined, '', 'rebind.attacker.example:8776', '127.0.0.1.nip.io:8776', '127.0.0.1:8777', '127.0.0.1', '10.0.0.1:8776', 'localhost.evil:8776']) {
      expect(check.accepts(bad, 8776)).toBe(false);
    }
    expect(check.acceptsOrigin(undefined, 8776)).toBe(true);
    expect(check.acceptsOrigin('http://localhost:8776', 8776)).toBe(true);
    for (const bad of ['null', 'http://evil.example', 'https://localhost:8776', 'http://localhost:3000']) expect(check.acceptsOrigin(bad, 8776)).toBe(false);
  });

  it('apply in noauth mode only', async () => {
    const noauth = new ApiServer({ logger: silentLogger(), maxBodyBytes: 65_536 });
    expect((await noauth.app.inject({ url: '/', headers: { host: 'evil.example' } })).statusCode).toBe(400);
    expect((await noauth.app.inject({ url: '/', headers: { host: 'localhost', origin: 'http://evil.example' } })).statusCode).toBe(403);
    const token = new ApiServer({ logger: silentLogger(), maxBodyBytes: 65_536, auth: { mode: 'token', admin: { digest: async () => Buffer.alloc(32) } } });
    expect((await token.app.inject({ url: '/', headers: { host: 'evil.example' } })).statusCode).toBe(300);
    await Promise.all([noauth.close(), token.close()]);
  });
});

describe('links', () => {
  it('come from api.publicUrl, or from X-Forwarded-* of a trusted proxy only', async () => {
    const api = new ApiServer({ logger: silentLogger(), maxBodyBytes: 65_536, publicUrl: 'http://hearth.example:8776', trustedProxies: ['10.0.0.0/8'], auth: { mode: 'token', admin: { digest: async () => Buffer.alloc(32) } } });
    const self = async (remoteAddress: string, headers: Record<string, string>): Promise<string | undefined> =>
      (await api.app.inject({ url: '/', remoteAddress, headers })).json<{ versions: { links: { rel: string; href: string }[] }[] }>().versions[0]?.links.find((l) => l.rel === 'self')?.href;
    const forwarded = { host: 'evil.example', 'x-forwarded-host': 'volumes.example.com', 'x-forwarded-proto': 'https' };
    expect(await self('10.1.1.1', forwarded)).toBe('https://volumes.example.com/v3/');
    expect(await self('192.168.1.1', forwarded)).toBe('http://hearth.example:8776/v3/');
    expect(await self('10.1.1.1', { 'x-forwarded-host': 'bad host/x' })).toBe('http://hearth.example:8776/v3/');
    await api.close();
  });

  it('default to api.listen, wildcards read as loopback', () => {
    expect(defaultPublicUrl('', '127.0.0.1:8776')).toBe('http://127.0.0.1:8776');
    expect(defaultPublicUrl('', '0.0.0.0:8776')).toBe('http://127.0.0.1:8776');
    expect(defaultPublicUrl('', '[::]:8776')).toBe('http://[::1]:8776');
    expect(defaultPublicUrl('https://x.example/api/', '0.0.0.0:1')).toBe('https://x.example/api');
  });
});

describe('request bodies', () => {
  it('are refused past the depth limit before parsing, without recursion', () => {
    expect(() => checkJsonDepth('['.repeat(MAX_BODY_DEPTH) + ']'.repeat(MAX_BODY_DEPTH))).not.toThrow();
    expect(() => checkJsonDepth('['.repeat(MAX_BODY_DEPTH + 1))).toThrow(/nested more than 32 levels/);
    expect(() => checkJsonDepth(`{"a":"${'['.repeat(1_000)}"}`)).not.toThrow(); // brackets inside strings do not count
    expect(() => checkJsonDepth(`{"a":"\\"${'['.repeat(100)}`)).not.toThrow();
    expect(() => parseJsonBody('['.repeat(1_000_000))).toThrow(/nested more than/);
  });

  it('are empty when blank, and refused with a __proto__ key anywhere', () => {
    expect(parseJsonBody('')).toBeUndefined();
    expect(parseJsonBody(' \n')).toBeUndefined();
    expect(() => parseJsonBody('{"a":[{"__proto__":{}}]}')).toThrow(/__proto__/);
    expect(hasProtoKey(JSON.parse('{"constructor":{"prototype":1}}'))).toBe(false);
    expect(() => parseJsonBody('{')).toThrow(/not valid JSON/);
  });
});

describe('microversions', () => {
  it('are parsed as Cinder parses them', () => {
    expect(negotiate(undefined)).toEqual(MIN_VERSION);
    expect(negotiate('volume latest')).toEqual(MAX_VERSION);
    expect(negotiate('compute 2.1, volume 3.26')).toEqual({ major: 3, minor: 26 });
    for (const malformed of ['volume 3.07', 'volume 03.1', 'volume 3', 'volume 3.1.1', 'volume', 'volume 3.x']) {
      expect(() => negotiate(malformed)).toThrow(/is of invalid format/);
    }
    for (const outside of ['volume 2.0', 'volume 3.71', `volume 3.${'0'.repeat(0)}1${'0'.repeat(29)}`, `volume ${'9'.repeat(30)}.0`]) {
      expect(() => negotiate(outside)).toThrow(/is not supported by the API/);
    }
  });
});
