import { Registry } from 'prom-client';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { VOLUME_BINARY } from '../../../src/identity.js';
import type { Incarnation } from '../../../src/incarnation/incarnation.js';
import { IncarnationSupervisor } from '../../../src/incarnation/supervisor.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { Backoff } from '../../../src/lifecycle/retry.js';
import { EtcdLockService } from '../../../src/locks/etcd-lock-service.js';
import { EtcdMembership } from '../../../src/membership/etcd-membership.js';
import { MembershipMetrics } from '../../../src/membership/metrics.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { EtcdSession } from '../../../src/session/etcd-session.js';
import { SessionMetrics } from '../../../src/session/metrics.js';
import { useEtcd, type EtcdTestContext } from '../../support/context.js';
import { waitFor } from '../../support/wait.js';
import { describeSession } from '../../contract/session.contract.js';
import { etcdConfig } from '../locks/fixtures.js';

describeSession('etcd (one lease per incarnation)', true, async () => {
  const ctx = useEtcd();
  const client = createEtcdClient(etcdConfig(ctx.endpoints, ctx.prefix));
  return {
    open: (host) => EtcdSession.open({ client, host, leaseTtlMs: 2_000, leaseMarginMs: 600, callTimeoutMs: 2_000 }),
    close: async () => {
      client.close();
      await ctx.close();
    },
  };
});

describe('EtcdSession', () => {
  let ctx: EtcdTestContext;
  beforeAll(() => {
    ctx = useEtcd();
  });
  afterAll(() => ctx.close());

  const open = (extra: { registry?: Registry; leaseTtlMs?: number } = {}) => {
    const client = createEtcdClient(etcdConfig(ctx.endpoints, ctx.prefix));
    return EtcdSession.open({
      client,
      host: 'node1@rbd',
      leaseTtlMs: extra.leaseTtlMs ?? 2_000,
      leaseMarginMs: 600,
      callTimeoutMs: 2_000,
      ...(extra.registry ? { metrics: new SessionMetrics(extra.registry) } : {}),
    }).then((session) => ({ session, client }));
  };

  it('grants one lease, names the incarnation after it, and keeps it alive well past its TTL', async () => {
    const registry = new Registry();
    const { session, client } = await open({ registry });
    expect(session.distributed).toBe(true);
    expect(session.leaseHex).toBe(BigInt(session.leaseId).toString(16));
    expect(session.incarnation).toBe(`node1@rbd:${session.leaseHex}`);
    const safe = session.safeUntil();
    expect(safe).toBeGreaterThan(Date.now());
    expect(safe).toBeLessThanOrEqual(Date.now() + 2_000 - 600);
    await new Promise((r) => setTimeout(r, 4_500)); // more than two TTLs
    expect(session.state).toBe('held');
    expect(session.safeUntil()).toBeGreaterThan(safe + 3_000);
    const ttl = await ctx.client.leaseClient.leaseTimeToLive({ ID: session.leaseId });
    expect(Number(ttl.TTL)).toBeGreaterThan(0);
    const text = await registry.metrics();
    expect(text).toContain('hearth_etcd_session_up 1');
    expect(text).toContain('hearth_session_state{state="held"} 1');
    expect(text).toMatch(/hearth_session_keepalive_rtt_seconds_count [1-9]/);
    await session.close();
    expect(session.state).toBe('closed');
    expect(session.signal.aborted).toBe(true);
    expect(await registry.metrics()).toContain('hearth_etcd_session_up 0');
    client.close();
  });

  it('is lost at once (not at safeUntil) when etcd answers that the lease is gone', async () => {
    const registry = new Registry();
    const { session, client } = await open({ registry, leaseTtlMs: 6_000 });
    const changes: string[] = [];
    session.onStateChange((c) => changes.push(c.state));
    const revokedAt = Date.now();
    await ctx.client.leaseClient.leaseRevoke({ ID: session.leaseId });
    await waitFor(() => session.state === 'lost', { timeoutMs: 5_000, what: 'the session to notice the revoked lease' });
    // The next keepalive (every 2 s) hears TTL 0; safeUntil would have been ~4 s later.
    expect(Date.now() - revokedAt).toBeLessThan(3_000);
    expect(changes).toEqual(['lost']);
    expect(await registry.metrics()).toContain('hearth_session_lost_total 1');
    await session.close();
    client.close();
  });

  it('a blocked event loop makes a lease past safeUntil read lost at once, before any timer runs', async () => {
    const { session, client } = await open({ leaseTtlMs: 2_000 });
    const locks = new EtcdLockService({ client, keys: new KeyLayout(ctx.prefix), session, callTimeoutMs: 2_000 });
    const handle = await locks.acquire('stalled');
    const safeUntil = session.safeUntil();
    while (Date.now() < safeUntil + 50) {
      // Busy-wait: no timer, no keepalive answer can run.
    }
    expect(handle.fence.holds()).toBe(false);
    expect(handle.state).toBe('lost');
    expect(handle.signal.aborted).toBe(true);
    expect(session.state).toBe('lost');
    await locks.close();
    await session.close();
    client.close();
  });

  it('the incarnation supervisor replaces a lost etcd session with a new incarnation on a new lease', async () => {
    const client = createEtcdClient(etcdConfig(ctx.endpoints, ctx.prefix));
    const keys = new KeyLayout(ctx.prefix);
    const membership = new EtcdMembership({ client, keys, clock: systemClock, logger: silentLogger() });
    const supervisor = new IncarnationSupervisor({
      openSession: (signal) => EtcdSession.open({ client, host: 'node2@rbd', leaseTtlMs: 2_000, leaseMarginMs: 600, callTimeoutMs: 2_000, signal }),
      lockServiceFor: (session) => new EtcdLockService({ client, keys, session, callTimeoutMs: 2_000 }),
      membership,
      join: { identity: { cluster: 'c@rbd', host: 'node2@rbd', zone: 'nova' }, binary: VOLUME_BINARY, version: '1' },
      clock: systemClock,
      logger: silentLogger(),
      metrics: new MembershipMetrics(new Registry()),
      reportIntervalMs: 500,
      previousIncarnationWaitMs: 3_000,
      retry: Backoff.constant(100),
    });
    const first = await supervisor.start(AbortSignal.timeout(10_000));
    const next = new Promise<Incarnation>((resolve) => supervisor.subscribe((e) => e.type === 'started' && resolve(e.incarnation)));
    await ctx.client.leaseClient.leaseRevoke({ ID: first.session.leaseId });
    const second = await next;
    expect(first.session.state).not.toBe('held');
    expect(second.session.leaseId).not.toBe(first.session.leaseId);
    expect(second.session.incarnation).toBe(`node2@rbd:${second.session.leaseHex}`);
    expect(second.member.owner.incarnation).toBe(second.session.incarnation);
    await supervisor.close();
    expect(second.session.state).toBe('closed');
    await membership.close();
    client.close();
  });
});
