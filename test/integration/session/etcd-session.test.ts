import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { EtcdLockService } from '../../../src/locks/etcd-lock-service.js';
import { EtcdSession } from '../../../src/session/etcd-session.js';
import { SessionMetrics } from '../../../src/session/metrics.js';
import { SessionSupervisor } from '../../../src/session/session-source.js';
import { useEtcd, type EtcdTestContext } from '../../support/context.js';
import { waitFor } from '../../support/wait.js';
import { etcdConfig } from '../locks/fixtures.js';

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

  it('SessionSupervisor replaces a lost session with a new incarnation', async () => {
    const client = createEtcdClient(etcdConfig(ctx.endpoints, ctx.prefix));
    const supervisor = new SessionSupervisor({
      open: (signal) => EtcdSession.open({ client, host: 'node2@rbd', leaseTtlMs: 2_000, leaseMarginMs: 600, callTimeoutMs: 2_000, signal }),
    });
    supervisor.start();
    const first = await supervisor.next(AbortSignal.timeout(10_000));
    await ctx.client.leaseClient.leaseRevoke({ ID: first.leaseId });
    await waitFor(() => first.state === 'lost', { timeoutMs: 5_000 });
    const second = await supervisor.next(AbortSignal.timeout(10_000));
    expect(second.leaseId).not.toBe(first.leaseId);
    expect(second.incarnation).toBe(`node2@rbd:${second.leaseHex}`);
    await supervisor.close();
    expect(second.state).toBe('closed');
    client.close();
  });
});
