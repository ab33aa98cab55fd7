// The API as an attacker and a careless client meet it, on a real `hearth serve` over real
// sockets: DNS rebinding, slow clients, refused clients that declare a body, bodies nested
// 10,000 deep, project mismatches, bodyless DELETEs, Cinder's answers at the edges, and the ops
// port's probes and parse errors (docs/security.md).
import { mkdtemp, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { VolumeClient } from '../../support/volume-client.js';

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One request with full control of the headers (fetch would not send a chosen Host). */
function send(base: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, headers: { ...headers, ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }) }, setHost: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Writes `head` on a raw socket, then one byte every `trickleMs` (if given); resolves with what came back once the server closes it. */
function rawClient(base: string, head: string, trickleMs?: number): Promise<string> {
  const url = new URL(base);
  return new Promise((resolve) => {
    let received = '';
    let timer: NodeJS.Timeout | undefined;
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.write(head);
      if (trickleMs !== undefined) timer = setInterval(() => socket.writable && socket.write('a'), trickleMs);
    });
    socket.on('data', (d: Buffer) => (received += d.toString('utf8')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      resolve(received);
    });
  });
}

function deep(depth: number, leaf = '1'): string {
  return `${'{"a":'.repeat(depth)}${leaf}${'}'.repeat(depth)}`;
}

describe('the API hardened (noauth on loopback, the default)', () => {
  let hearth: HearthProcess;
  let host: string;
  let client: VolumeClient;
  const ok = (): Record<string, string> => ({ host, 'content-type': 'application/json' });

  beforeAll(async () => {
    hearth = await startHearth({
      name: 'hardened',
      env: { HEARTH_DRIVER_NAME: 'fake', HEARTH_API_REQUEST_TIMEOUT_MS: '2000', HEARTH_API_HEADERS_TIMEOUT_MS: '1000' },
    });
    host = new URL(hearth.apiUrl).host;
    client = new VolumeClient(hearth.apiUrl);
  });
  afterAll(() => hearth.stop());

  it('refuses a DNS-rebinding request: another Host gets 400, and the volume stays', async () => {
    const id = await client.createVolume(1);
    await client.until('volume', id, (v) => v?.status === 'available');
    const port = new URL(hearth.apiUrl).port;
    for (const attacker of [`rebind.attacker.example:${port}`, `127.0.0.1.nip.io:${port}`, '127.0.0.1']) {
      const res = await send(hearth.apiUrl, 'DELETE', `/v3/admin/volumes/${id}`, { host: attacker });
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body)).toMatchObject({ badRequest: { code: 400, message: expect.stringContaining('Invalid Host header') as string } });
    }
    expect(await client.show('volume', id)).toMatchObject({ status: 'available' });
    const crossSite = await send(hearth.apiUrl, 'DELETE', `/v3/admin/volumes/${id}`, { host, origin: 'http://attacker.example' });
    expect(crossSite.status).toBe(403);
    expect(await client.show('volume', id)).toMatchObject({ status: 'available' });
    for (const loopback of [host, `localhost:${port}`, `[::1]:${port}`]) {
      expect((await send(hearth.apiUrl, 'GET', `/v3/admin/volumes/${id}`, { host: loopback })).status).toBe(200);
    }
  });

  it('builds links from api.publicUrl (here: from api.listen), never from the Host header', async () => {
    const crafted = await send(hearth.apiUrl, 'GET', '/', { host: 'evil.example' });
    expect(crafted.status).toBe(400);
    expect(crafted.body).not.toContain('evil.example');
    const root = await send(hearth.apiUrl, 'GET', '/', { host: `localhost:${new URL(hearth.apiUrl).port}` });
    expect(root.status).toBe(300);
    expect((JSON.parse(root.body) as { versions: { links: { rel: string; href: string }[] }[] }).versions[0]?.links).toContainEqual({ rel: 'self', href: `${hearth.apiUrl}/v3/` });
  });

  it('refuses a noauth token whose project is not the URL\'s, as Cinder ("Malformed request url"), and creates nothing', async () => {
    const res = await send(hearth.apiUrl, 'POST', '/v3/admin/volumes', { ...ok(), 'x-auth-token': 'alice:other' }, '{"volume":{"size":1,"name":"mismatch"}}');
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toEqual({ badRequest: { code: 400, message: 'Malformed request url' } });
    for (const [project, token] of [['admin', 'admin:admin'], ['other', 'alice:other']] as const) {
      const list = await send(hearth.apiUrl, 'GET', `/v3/${project}/volumes?name=mismatch`, { host, 'x-auth-token': token });
      expect(JSON.parse(list.body)).toEqual({ volumes: [] });
    }
  });

  it('accepts a bodyless DELETE sent with Content-Type: application/json, and the vendor JSON type', async () => {
    const created = await send(hearth.apiUrl, 'POST', '/v3/admin/volumes', { host, 'content-type': 'application/vnd.openstack.volume+json' }, '{"volume":{"size":1}}');
    expect(created.status).toBe(202);
    const id = (JSON.parse(created.body) as { volume: { id: string } }).volume.id;
    await client.until('volume', id, (v) => v?.status === 'available');
    expect((await send(hearth.apiUrl, 'DELETE', `/v3/admin/volumes/${id}`, ok())).status).toBe(202);
    const ignored = await send(hearth.apiUrl, 'POST', '/v3/admin/volumes', { host, 'content-type': 'text/plain' }, '{"volume":{"size":1}}');
    expect(ignored.status).toBe(400); // Cinder ignores a body of a type it does not read
  });

  it('answers bodies nested 10,000 deep with 400 before validation, and logs no error', async () => {
    const id = await client.createVolume(1);
    await client.until('volume', id, (v) => v?.status === 'available');
    const bodies: [string, string][] = [
      ['/v3/admin/volumes', `{"volume":{"size":1,"metadata":${deep(10_000, '"x"')}}}`],
      [`/v3/admin/volumes/${id}/action`, `{"os-extend":${deep(5_000)}}`],
      ['/v3/admin/workers/cleanup', deep(10_000)],
      ['/v3/admin/volumes', `{"volume":{"size":1,"metadata":${'['.repeat(10_000)}${']'.repeat(10_000)}}}`],
    ];
    for (const [path, body] of bodies) {
      const res = await send(hearth.apiUrl, 'POST', path, { ...ok(), 'openstack-api-version': 'volume 3.24' }, body);
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body)).toEqual({ badRequest: { code: 400, message: 'Malformed request body: it is nested more than 32 levels deep.' } });
    }
    expect(hearth.logs().filter((l) => l.level === 'error' || l.level === 'fatal')).toEqual([]);
  });

  it('echoes a 60 kB value as a short preview', async () => {
    const res = await send(hearth.apiUrl, 'POST', '/v3/admin/volumes', ok(), JSON.stringify({ volume: { size: 'x'.repeat(60_000) } }));
    expect(res.status).toBe(400);
    const message = (JSON.parse(res.body) as { badRequest: { message: string } }).badRequest.message;
    expect(message.length).toBeLessThan(300);
    expect(message).toMatch(/Value: "x+…"/);
  });

  it('answers microversions as Cinder: 400 when malformed, 406 out of range (named exactly, never rounded)', async () => {
    const version = async (v: string): Promise<Answer> => send(hearth.apiUrl, 'GET', '/v3/admin/volumes', { host, 'openstack-api-version': v });
    for (const malformed of ['volume 3.07', 'volume 3', 'volume v3.1', 'volume']) {
      const res = await version(malformed);
      expect(res.status).toBe(400);
      expect(res.body).toContain('is of invalid format');
    }
    const huge = await version(`volume 3.${'1'.repeat(30)}`);
    expect(huge.status).toBe(406);
    expect(huge.body).toMatch(/Version \\"3\.1{10,}…\\" is not supported/);
    expect((await version('volume 3.71')).status).toBe(406);
  });

  it('answers bad URLs, over-long ids and unparseable requests with Cinder\'s fault body', async () => {
    const badUrl = await send(hearth.apiUrl, 'GET', '/v3/admin/volumes/%zz', { host });
    expect(badUrl.status).toBe(400);
    expect(JSON.parse(badUrl.body)).toMatchObject({ badRequest: { code: 400 } });
    const longId = await send(hearth.apiUrl, 'GET', `/v3/admin/volumes/${'a'.repeat(300)}`, { host });
    expect(longId.status).toBe(404);
    expect(JSON.parse(longId.body)).toEqual({ itemNotFound: { code: 404, message: 'The resource could not be found.' } });
    const garbage = await rawClient(hearth.apiUrl, 'NOT HTTP AT ALL\r\n\r\n');
    expect(garbage).toMatch(/^HTTP\/1\.1 400/);
    expect(garbage).toContain('{"badRequest":{"code":400,"message":"Malformed request."}}');
  });

  it('cuts off clients that trickle a declared body, by the request timeout, and keeps serving', async () => {
    const head = `POST /v3/admin/volumes HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{`;
    const answers = await Promise.all(Array.from({ length: 20 }, () => rawClient(hearth.apiUrl, head, 200)));
    for (const answer of answers) expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect((await send(hearth.apiUrl, 'GET', '/v3/admin/volumes', { host })).status).toBe(200);
  });

  it('shows only check names and states on /readyz?verbose, and answers an unreadable absolute URL with 400', async () => {
    const verbose = await (await fetch(`${hearth.opsUrl}/readyz?verbose`)).text();
    for (const line of verbose.trim().split('\n')) expect(line).toMatch(/^(\[[+-]\][\w-]+ (ok|failed)( \(not counted\))?|check (passed|failed))$/);
    const absolute = await rawClient(hearth.opsUrl, `GET http://[bad/readyz HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(absolute).toMatch(/^HTTP\/1\.1 400 /);
  });
});

describe('the API hardened (token mode)', () => {
  let hearth: HearthProcess;
  let host: string;
  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-token-'));
    await writeFile(join(dir, 'token'), 'a-token-that-is-long-enough\n');
    hearth = await startHearth({ name: 'hardened-token', env: { HEARTH_API_TOKEN_FILE: join(dir, 'token'), HEARTH_API_PUBLIC_URL: 'https://volumes.example.com:8776/' } });
    host = new URL(hearth.apiUrl).host;
  });
  afterAll(() => hearth.stop());

  it('closes the connection after a 401, so a client cannot hold it with a declared body', async () => {
    const head = `POST /v3/admin/volumes HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{"vol`;
    const answer = await rawClient(hearth.apiUrl, head);
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    expect(answer.toLowerCase()).toContain('connection: close');
  });

  it('takes links from api.publicUrl whatever the Host header says', async () => {
    const root = await send(hearth.apiUrl, 'GET', '/', { host: 'evil.example' });
    expect(root.status).toBe(300);
    expect(root.body).not.toContain('evil.example');
    expect((JSON.parse(root.body) as { versions: { links: { rel: string; href: string }[] }[] }).versions[0]?.links).toContainEqual({ rel: 'self', href: 'https://volumes.example.com:8776/v3/' });
  });
});
