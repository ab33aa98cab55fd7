import { Backoff } from '../../../src/lifecycle/retry.js';
import type { Etcd3 } from 'etcd3';
import { afterAll, describe, expect, it } from 'vitest';
import { clusterRoutes } from '../../../src/api/clusters.js';
import { ApiServer } from '../../../src/api/server.js';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { VOLUME_BINARY } from '../../../src/identity.js';
import { ManualClock } from '../../../src/lifecycle/clock.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { EtcdMembership } from '../../../src/membership/etcd-membership.js';
import { describeMembership } from '../../contract/membership.contract.js';
import { etcdEndpoints, useEtcd } from '../../support/context.js';
import { etcdConfig, fenceHoldsOnEtcd } from '../../support/etcd-membership-helpers.js';
import { TestSession } from '../../support/test-session.js';
import { waitFor } from '../../support/wait.js';

describeMembership('etcd', async () => {
  const ctx = useEtcd();
  const clock = new ManualClock(Date.UTC(2024, 0, 1));
  const clients: Etcd3[] = [];
  const adapters: EtcdMembership[] = [];
  const make = (): EtcdMembership => {
    const client = createEtcdClient(etcdConfig(ctx.endpoints, ctx.prefix));
    clients.push(client);
    const m = new EtcdMembership({ client, keys: new KeyLayout(ctx.prefix), clock, logger: silentLogger(), retry: Backoff.constant(200) });
    adapters.push(m);
    return m;
  };
  const membership = make();
  return {
    membership,
    clock,
    second: async () => make(),
    restarted: async () => make(),
    openSession: (host) => TestSession.etcd(ctx.client, host, 5_000),
    fenceHolds: (fence) => fenceHoldsOnEtcd(ctx.client, fence),
    close: async () => {
      for (const a of adapters) await a.close();
      for (const c of clients) c.close();
      await ctx.close();
    },
  };
});

describe('EtcdMembership specifics', () => {
  const ctx = useEtcd();
  const keys = new KeyLayout(ctx.prefix);
  const clock = new ManualClock(Date.UTC(2024, 0, 1));
  const client = createEtcdClient(etcdConfig(etcdEndpoints(), ctx.prefix));
  const membership = new EtcdMembership({ client, keys, clock, logger: silentLogger() });
  afterAll(async () => {
    await membership.close();
    client.close();
    await ctx.close();
  });
  const identity = (host: string) => ({ cluster: 'c1@be', host, zone: 'nova' });

  it('lays out keys as DESIGN.md says: clusters/, services/<binary>/, alive/ on the session lease', async () => {
    const session = await TestSession.etcd(ctx.client, 'k1@be');
    const member = await membership.join({ identity: identity('k1@be'), binary: VOLUME_BINARY, version: '1', session });
    const [cluster, service, alive] = await Promise.all([
      ctx.client.get(`${ctx.prefix}/clusters/c1@be`).exec(),
      ctx.client.get(`${ctx.prefix}/services/${VOLUME_BINARY}/k1@be`).exec(),
      ctx.client.get(`${ctx.prefix}/alive/k1@be`).exec(),
    ]);
    expect(cluster.kvs[0]!.lease).toBe('0');
    expect(service.kvs[0]!.lease).toBe('0');
    expect(alive.kvs[0]!.lease).toBe(session.leaseId);
    expect(alive.kvs[0]!.create_revision).toBe(member.owner.aliveRevision);
    expect(JSON.parse(alive.kvs[0]!.value.toString())).toEqual({ host: 'k1@be', cluster: 'c1@be', incarnation: session.incarnation, heartbeatAtMs: clock.now() });
    expect(member.fence().guards).toEqual([{ key: `${ctx.prefix}/alive/k1@be`, createRevision: member.owner.aliveRevision, expect: 'equal' }]);
    expect(membership.ownerGone(member.owner).guards).toEqual([{ key: `${ctx.prefix}/alive/k1@be`, createRevision: member.owner.aliveRevision, expect: 'notEqual' }]);
    await session.close();
  });

  it('a heartbeat after the alive key was taken away reports eviction and ends the member', async () => {
    const session = await TestSession.etcd(ctx.client, 'k2@be');
    const member = await membership.join({ identity: identity('k2@be'), binary: VOLUME_BINARY, version: '1', session });
    await ctx.client.delete().key(keys.alive('k2@be')).exec();
    expect(await member.heartbeat()).toEqual({ ok: false, reason: 'evicted' });
    expect(member.joined).toBe(false);
    // The heartbeat wrote nothing: no alive key came back.
    expect((await ctx.client.get(keys.alive('k2@be')).exec()).kvs).toEqual([]);
    await session.close();
  });

  it('a heartbeat keeps a service-record change another writer made meanwhile', async () => {
    const session = await TestSession.etcd(ctx.client, 'k3@be');
    const member = await membership.join({ identity: identity('k3@be'), binary: VOLUME_BINARY, version: '1', session });
    const key = keys.service(VOLUME_BINARY, 'k3@be');
    const record = JSON.parse((await ctx.client.get(key).string())!) as Record<string, unknown>;
    await ctx.client.put(key).value(JSON.stringify({ ...record, disabled: true, disabledReason: 'by operator', modifiedAtMs: 1 }));
    await clock.advance(1_000);
    expect(await member.heartbeat()).toEqual({ ok: true, atMs: clock.now() });
    const after = JSON.parse((await ctx.client.get(key).string())!) as Record<string, unknown>;
    expect(after).toMatchObject({ disabled: true, disabledReason: 'by operator', heartbeatAtMs: clock.now() });
    await session.close();
  });

  it('when the lease expires the alive key goes, the member shows down, and watchers see it leave', async () => {
    const watchCtl = new AbortController();
    const events: string[] = [];
    const watching = (async () => {
      for await (const e of membership.watch(watchCtl.signal)) if (e.type !== 'member-heartbeat') events.push(`${e.type}:${'member' in e ? e.member.host : e.members.length}`);
    })();
    await waitFor(() => events.length > 0, { what: 'initial sync' });
    // A lease nobody keeps alive, as a killed process leaves it: the member is gone within its TTL.
    const session = await TestSession.etcd(ctx.client, 'k4@be', 2_000, false);
    await membership.join({ identity: identity('k4@be'), binary: VOLUME_BINARY, version: '1', session });
    await waitFor(() => events.includes('member-left:k4@be'), { timeoutMs: 30_000, what: 'k4 left' });
    // Gone because etcd expired its lease — nothing deleted it — so it goes within one TTL by
    // etcd's own rule (how long that takes is measured by make bench, not asserted here).
    expect((await ctx.client.leaseClient.leaseTimeToLive({ ID: session.leaseId })).TTL).toBe('-1');
    expect(events).toContain('member-joined:k4@be');
    const snap = await membership.snapshot();
    expect(snap.services.some((s) => s.host === 'k4@be')).toBe(true);
    expect(snap.alive.some((a) => a.host === 'k4@be')).toBe(false);
    watchCtl.abort();
    await watching;
  });
  it('the API answers 503 serviceUnavailable, not stale data, while etcd cannot be reached', async () => {
    const dead = createEtcdClient({ ...etcdConfig(['http://127.0.0.1:9'], ctx.prefix), callTimeoutMs: 500 });
    const unreachable = new EtcdMembership({ client: dead, keys, clock, logger: silentLogger() });
    const server = new ApiServer({ logger: silentLogger(), maxBodyBytes: 65_536 });
    server.register(clusterRoutes(unreachable, VOLUME_BINARY));
    try {
      const list = await server.app.inject({ method: 'GET', url: '/v3/admin/clusters', headers: { 'OpenStack-API-Version': 'volume 3.7' } });
      expect(list.statusCode).toBe(503);
      expect(Object.keys(list.json<object>())).toEqual(['serviceUnavailable']);
      const update = await server.app.inject({
        method: 'PUT',
        url: '/v3/admin/clusters/disable',
        headers: { 'OpenStack-API-Version': 'volume 3.7', 'content-type': 'application/json' },
        payload: { name: 'c1@be' },
      });
      expect(update.statusCode).toBe(503);
    } finally {
      await server.close();
      await unreachable.close();
      dead.close();
    }
  });
});
