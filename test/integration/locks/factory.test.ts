import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { createClusterLocking, createSingleNodeLocking } from '../../../src/locks/factory.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { useEtcd } from '../../support/context.js';
import { etcdConfig } from './fixtures.js';

describe('locking factories', () => {
  it('cluster: sessions from the supervisor, a lock service per session, metrics on the given registry', async () => {
    const ctx = useEtcd();
    const etcd = etcdConfig(ctx.endpoints, ctx.prefix);
    const client = createEtcdClient(etcd);
    const registry = new Registry();
    const locking = createClusterLocking({
      client,
      config: { host: 'node1', backend: 'rbd', leaseTtlMs: 3_000, leaseMarginMs: 1_000, etcd },
      registry,
      logger: silentLogger(),
    });
    locking.sessions.start();
    const session = await locking.sessions.next(AbortSignal.timeout(10_000));
    expect(session.incarnation).toBe(`node1@rbd:${session.leaseHex}`);
    const locks = locking.lockServiceFor(session);
    expect(locks.distributed).toBe(true);
    const handle = await locks.acquire('3f2a1b4c-0000-4000-8000-00000000000a-delete_volume');
    const text = await registry.metrics();
    expect(text).toContain('hearth_etcd_session_up 1');
    expect(text).toContain('hearth_locks_held{lock_type="delete_volume"} 1');
    await handle.release();
    await locks.close();
    await locking.sessions.close();
    expect(session.state).toBe('closed');
    client.close();
    await ctx.close();
  });

  it('single node: one local session and a node-local lock service', async () => {
    const locking = createSingleNodeLocking({ config: { host: 'solo', backend: 'file' }, registry: new Registry() });
    const session = await locking.sessions.next();
    expect(session.distributed).toBe(false);
    const locks = locking.lockServiceFor(session);
    expect(locks.distributed).toBe(false);
    await locks.withLock('x', async ({ fence }) => expect(fence.holds()).toBe(true));
    await locks.close();
    await locking.sessions.close();
  });
});
