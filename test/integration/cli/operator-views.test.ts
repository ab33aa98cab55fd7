// `GET /hearth/v1/locks`, `/hearth/v1/members` and `hearth locks|members|dead-letters`, against real
// `hearth serve` processes: a single node, and a cluster on real etcd and RabbitMQ.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/program.js';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { ClusterClient, memberEnv, startWorker } from '../../support/orphans-cluster.js';
import { freePort } from '../../support/ports.js';
import { waitFor } from '../../support/wait.js';

type Row = Record<string, unknown>;

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(argv, { out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`) }, {});
  return { code, out, err };
}

async function getJson(url: string): Promise<{ status: number; body: Row }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Row };
}

/** Deletes a fresh volume through `client` and waits until `apiUrl`'s lock view shows its delete lock. */
async function heldDeleteLock(client: ClusterClient, apiUrl: string): Promise<{ id: string; lock: Row }> {
  const id = await client.createVolume();
  await client.waitStatus('volume', id, 'available');
  await client.deleteVolume(id);
  let lock: Row | undefined;
  await waitFor(
    async () => {
      const { body } = await getJson(`${apiUrl}/hearth/v1/locks`);
      lock = (body.locks as Row[]).find((l) => l.name === `${id}-delete_volume`);
      return lock !== undefined;
    },
    { timeoutMs: 15_000, intervalMs: 50, what: `the delete lock of ${id}` },
  );
  return { id, lock: lock as Row };
}

describe('operator views on a single node', () => {
  let hearth: HearthProcess;
  let client: ClusterClient;
  beforeAll(async () => {
    hearth = await startHearth({ name: 'views-single', env: { HEARTH_DRIVER_NAME: 'fake', HEARTH_DRIVER_FAKE_LATENCY_MS: '3000' } });
    client = new ClusterClient(hearth);
  });
  afterAll(async () => {
    await hearth?.stop();
  });

  it('GET /hearth/v1/members: the node itself, up, with its incarnation and heartbeat, no lease', async () => {
    const { status, body } = await getJson(`${hearth.apiUrl}/hearth/v1/members`);
    expect(status).toBe(200);
    const members = body.members as Row[];
    expect(members).toHaveLength(1);
    expect(members[0]).toMatchObject({ state: 'up', status: 'enabled', binary: 'cinder-volume', lease_id: null, lease_ttl_seconds: null });
    expect(String(members[0]?.incarnation)).toMatch(new RegExp(`^${String(members[0]?.host)}:`));
    expect(members[0]?.heartbeat_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
  });

  it('GET /hearth/v1/locks: a lock held by a running delete, from the local lock table, with since and revision', async () => {
    const before = Date.now();
    const { lock } = await heldDeleteLock(client, hearth.apiUrl);
    expect(lock).toMatchObject({ type: 'delete_volume', lease: null, waiters: 0 });
    const members = (await getJson(`${hearth.apiUrl}/hearth/v1/members`)).body.members as Row[];
    expect(lock.holder_incarnation).toBe(members[0]?.incarnation);
    expect(lock.holder_host).toBe(members[0]?.host);
    expect(Date.parse(`${String(lock.since)}Z`)).toBeGreaterThanOrEqual(before - 1_000);
    expect(String(lock.fencing_revision)).toMatch(/^\d+$/);
    const { body } = await getJson(`${hearth.apiUrl}/hearth/v1/locks?type=extend_volume`);
    expect(body).toEqual({ distributed: false, locks: [] });
  });

  it('refuses an unknown or empty filter with 400 and Cinder\'s fault body', async () => {
    const bad = await getJson(`${hearth.apiUrl}/hearth/v1/locks?holder=x`);
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ badRequest: { code: 400, message: expect.stringContaining('Invalid filter keys: holder') as string } });
    const empty = await getJson(`${hearth.apiUrl}/hearth/v1/members?host=`);
    expect(empty.status).toBe(400);
    expect(empty.body).toMatchObject({ badRequest: { code: 400 } });
  });

  it('hearth locks / hearth members: table and --json; exit 2 on a bad flag; exit 1 naming the URL when the API is unreachable', async () => {
    const url = ['--url', hearth.apiUrl];
    const members = await cli('members', ...url);
    expect(members.code).toBe(0);
    expect(members.out).toContain('Incarnation');
    expect(members.out).toMatch(/│ up\s+│/);
    const json = await cli('members', '--json', ...url);
    expect(JSON.parse(json.out)).toEqual([expect.objectContaining({ state: 'up' })]);
    const locks = await cli('locks', '--json', ...url);
    expect(locks.code).toBe(0);
    expect(Array.isArray(JSON.parse(locks.out))).toBe(true);
    const none = await cli('locks', '--type', 'attach_volume', ...url);
    expect(none.out.trim()).toBe('No locks held.');

    const bad = await cli('members', '--host', '', ...url);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--host needs a non-empty value');
    const unknown = await cli('locks', '--holder', 'x', ...url);
    expect(unknown.code).toBe(2);

    const closed = `http://127.0.0.1:${await freePort()}`;
    const down = await cli('locks', '--url', closed);
    expect(down.code).toBe(1);
    expect(down.err).toContain(`cannot reach the hearth API at ${closed}`);
  });

  it('hearth dead-letters: none on a healthy node; exit 2 on a bad --limit, before any request', async () => {
    const url = ['--url', hearth.apiUrl];
    const none = await cli('dead-letters', ...url);
    expect(none.code).toBe(0);
    expect(none.out.trim()).toBe('No dead-lettered messages.');
    const json = await cli('dead-letters', '--json', '--limit', '5', ...url);
    expect(JSON.parse(json.out)).toEqual([]);
    const bad = await cli('dead-letters', '--limit', '0', ...url);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--limit needs a whole number from 1 to 1000');
  });
});

describe('operator views on a cluster (etcd, RabbitMQ)', () => {
  let etcd: EtcdTestContext;
  let amqp: AmqpTestContext;
  let api: HearthProcess;
  let worker: HearthProcess;
  let client: ClusterClient;
  beforeAll(async () => {
    etcd = useEtcd();
    amqp = await useAmqp();
    const journal = join(await mkdtemp(join(tmpdir(), 'hearth-views-')), 'journal.jsonl');
    const env = memberEnv(etcd, amqp, 'ov', journal, { HEARTH_DRIVER_FAKE_LATENCY_MS: '3000' });
    api = await startHearth({ name: 'views-api', env: { ...env, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' } });
    worker = await startWorker(env, 'w1');
    client = new ClusterClient(api);
  });
  afterAll(async () => {
    await Promise.all([api?.stop(), worker?.stop()]);
    await etcd?.close();
    await amqp?.close();
  });

  it('members: the worker up with its incarnation, heartbeat and session lease (TTL and what is left)', async () => {
    const { body } = await getJson(`${api.apiUrl}/hearth/v1/members?cluster=ov`);
    const members = body.members as Row[];
    expect(members.map((m) => m.host)).toEqual(['w1@be']);
    const [w1] = members;
    expect(w1).toMatchObject({ cluster: 'ov@be', state: 'up', status: 'enabled', lease_ttl_seconds: 3 });
    const incarnation = String(w1?.incarnation);
    expect(incarnation).toMatch(/^w1@be:[0-9a-f]+$/);
    expect(w1?.lease_id).toBe(incarnation.slice(incarnation.lastIndexOf(':') + 1));
    expect(Number(w1?.lease_remaining_seconds)).toBeGreaterThanOrEqual(0);
    expect(Number(w1?.lease_remaining_seconds)).toBeLessThanOrEqual(3);
    expect(String(w1?.alive_revision)).toMatch(/^\d+$/);
  });

  it('locks: a lock a worker holds, read from etcd by an API-only process: holder, lease, fencing revision; since unknown', async () => {
    const { lock } = await heldDeleteLock(client, api.apiUrl);
    const members = (await getJson(`${api.apiUrl}/hearth/v1/members`)).body.members as Row[];
    expect(lock).toMatchObject({ type: 'delete_volume', holder_host: 'w1@be', holder_incarnation: members[0]?.incarnation, lease: members[0]?.lease_id, since: null, waiters: 0 });
    expect(Number(lock.fencing_revision)).toBeGreaterThan(Number(members[0]?.alive_revision));
    const cliOut = await cli('locks', '--host', 'w1', '--json', '--url', api.apiUrl);
    expect(cliOut.code).toBe(0);
    expect((JSON.parse(cliOut.out) as Row[]).map((l) => l.name)).toContain(lock.name);
  });

  it('a worker that stopped shows down: no incarnation, no lease, its last heartbeat kept', async () => {
    await worker.stop();
    const { body } = await getJson(`${api.apiUrl}/hearth/v1/members`);
    expect(body.members).toEqual([expect.objectContaining({ host: 'w1@be', state: 'down', incarnation: null, lease_id: null, heartbeat_at: expect.any(String) as string })]);
    const table = await cli('members', '--url', api.apiUrl);
    expect(table.out).toMatch(/│ down\s+│/);
  });
});
