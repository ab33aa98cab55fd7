// GET /hearth/v1/fences and POST /hearth/v1/fences/{incarnation}/confirm over the single-node
// adapters (local membership in a real file, the memory fence queue): what an operator sees when
// HearthFenceFailing fires, and what a confirmation records and refuses.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fenceRoutes } from '../../../src/api/fences.js';
import { ApiServer } from '../../../src/api/server.js';
import { LocalFenceQueue } from '../../../src/fencing/local-fence-queue.js';
import { VOLUME_BINARY } from '../../../src/identity.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { LocalMembership } from '../../../src/membership/local-membership.js';
import { LocalRecordFile } from '../../../src/membership/local-store.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { TestSession } from '../../support/test-session.js';

const HOST = 'n1@be';
const CLUSTER = 'c1@be';
const PROCESS = { pid: 4242, startTicks: '1', bootId: 'b', pidNamespace: 'pid:[1]', hostname: 'm', addresses: [] };

const servers: ApiServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function setup() {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-fence-routes-'));
  const membership = new LocalMembership(await LocalRecordFile.open(join(dir, 'membership.json')), systemClock);
  const join1 = (session = TestSession.local(HOST)) =>
    membership.join({ identity: { cluster: CLUSTER, host: HOST, zone: 'nova' }, binary: VOLUME_BINARY, version: '1', session, process: PROCESS });
  const dead = await join1();
  await dead.leave();
  const alive = await join1();
  const queue = new LocalFenceQueue(() => Date.now());
  await queue.request({ incarnation: dead.owner.incarnation, host: HOST, cluster: CLUSTER, diedAtMs: Date.now() - 5000, observedLive: true });
  const server = new ApiServer({ logger: silentLogger(), maxBodyBytes: 65_536 });
  servers.push(server);
  server.register(fenceRoutes({ membership, queue, logger: silentLogger() }));
  const confirm = (incarnation: string, payload?: unknown) =>
    server.app.inject({ method: 'POST', url: `/hearth/v1/fences/${encodeURIComponent(incarnation)}/confirm`, ...(payload === undefined ? {} : { payload: JSON.stringify(payload), headers: { 'content-type': 'application/json' } }) });
  return { membership, queue, server, dead: dead.owner.incarnation, alive: alive.owner.incarnation, confirm };
}

describe('fence routes', () => {
  it('list a dead incarnation awaiting its fence, and nothing ended yet', async () => {
    const { server, dead } = await setup();
    const res = await server.app.inject({ method: 'GET', url: '/hearth/v1/fences' });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ awaiting: Record<string, unknown>[]; ended: unknown[] }>();
    expect(body.ended).toEqual([]);
    expect(body.awaiting).toEqual([
      expect.objectContaining({ incarnation: dead, host: HOST, cluster: CLUSTER, seen_dying: true, runner: null, attempts: 0, last_error: null }),
    ]);
    expect(body.awaiting[0]?.died_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
  });

  it('confirm records a manual end with the reason, removes the fence operation, and answers the same end again', async () => {
    const { server, queue, membership, dead, confirm } = await setup();
    const first = await confirm(dead, { reason: 'machine powered off by hand' });
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({ created: true, fence: { incarnation: dead, host: HOST, how: 'manual', by: 'operator', detail: 'machine powered off by hand' } });
    expect(await queue.get(dead)).toBeUndefined();
    expect((await membership.incarnation(dead)).end).toMatchObject({ how: 'manual' });
    const again = await confirm(dead);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ created: false, fence: { how: 'manual', detail: 'machine powered off by hand' } });
    const list = (await server.app.inject({ method: 'GET', url: '/hearth/v1/fences' })).json<{ awaiting: unknown[]; ended: unknown[] }>();
    expect(list.awaiting).toEqual([]);
    expect(list.ended).toEqual([expect.objectContaining({ incarnation: dead, how: 'manual' })]);
  });

  it('confirm refuses a live incarnation (409) and an unknown one (404), recording nothing', async () => {
    const { membership, alive, confirm } = await setup();
    const live = await confirm(alive);
    expect(live.statusCode).toBe(409);
    expect(live.json()).toMatchObject({ conflictingRequest: { code: 409 } });
    expect((await membership.incarnation(alive)).end).toBeUndefined();
    const unknown = await confirm(`${HOST}:00000000-0000-4000-8000-000000000000`);
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ itemNotFound: { code: 404 } });
  });

  it.each([[[1]], ['text'], [{ reason: '' }], [{ reason: 'x'.repeat(256) }], [{ reason: 7 }], [{ why: 'x' }]])('confirm refuses the body %j with a 400 fault and records nothing', async (payload) => {
    const { membership, queue, dead, confirm } = await setup();
    const res = await confirm(dead, payload);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ badRequest: { code: 400 } });
    expect((await membership.incarnation(dead)).end).toBeUndefined();
    expect(await queue.get(dead)).toBeDefined();
  });
});
