// The composition root's two adapter sets: what each mode opens, the sessions and lock services
// they hand the incarnation supervisor, and that closing the closer releases everything.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { CompositionContext } from '../../../src/composition/backends.js';
import { openClusterBackends } from '../../../src/composition/cluster.js';
import { openSingleNodeBackends } from '../../../src/composition/single-node.js';
import { loadConfig } from '../../../src/config/load.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { Closer } from '../../../src/lifecycle/closer.js';
import { Backoff } from '../../../src/lifecycle/retry.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { useEtcd } from '../../support/context.js';

async function context(env: Record<string, string>): Promise<CompositionContext> {
  const config = await loadConfig({ env });
  return { config, clock: systemClock, registry: new Registry(), logger: silentLogger(), closer: new Closer(), retry: Backoff.constant(100) };
}

describe('the composition root picks one adapter set per mode', () => {
  it('cluster: etcd store and membership, a session per call, a lock service per session, metrics on the registry', async () => {
    const etcd = useEtcd();
    const ctx = await context({
      HEARTH_ETCD_ENDPOINTS: etcd.endpoints.join(','),
      HEARTH_ETCD_PREFIX: etcd.prefix,
      HEARTH_AMQP_URL: 'amqp://127.0.0.1:1',
      HEARTH_HOST: 'node1',
      HEARTH_BACKEND: 'rbd',
      HEARTH_LEASE_TTL_MS: '3000',
      HEARTH_LEASE_MARGIN_MS: '1000',
    });
    const backends = await openClusterBackends(ctx);
    expect(backends.mode).toBe('cluster');
    expect(backends.jobBus.distributed).toBe(true);
    const session = await backends.openSession(AbortSignal.timeout(10_000));
    expect(session.distributed).toBe(true);
    expect(session.incarnation).toBe(`node1@rbd:${session.leaseHex}`);
    const locks = backends.lockServiceFor(session);
    expect(locks.distributed).toBe(true);
    const handle = await locks.acquire('3f2a1b4c-0000-4000-8000-00000000000a-delete_volume');
    const text = await ctx.registry.metrics();
    expect(text).toContain('hearth_etcd_session_up 1');
    expect(text).toContain('hearth_locks_held{lock_type="delete_volume"} 1');
    expect((await backends.lockTable.list()).map((l) => l.name)).toEqual(['3f2a1b4c-0000-4000-8000-00000000000a-delete_volume']);
    await handle.release();
    await locks.close();
    await session.close();
    expect(session.state).toBe('closed');
    await ctx.closer.close();
    await etcd.close();
  });

  it('single node: the data-dir lock first, SQLite and local membership, one local session and a node-local lock service', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'hearth-composition-'));
    const ctx = await context({ HEARTH_DATA_DIR: dataDir, HEARTH_HOST: 'solo', HEARTH_BACKEND: 'file' });
    const backends = await openSingleNodeBackends(ctx);
    expect(backends.mode).toBe('single-node');
    expect(backends.jobBus.distributed).toBe(false);
    expect(backends.healthy()).toEqual({ ok: true });
    // A second daemon on the same data dir is refused while the first holds it.
    const other = await context({ HEARTH_DATA_DIR: dataDir });
    await expect(openSingleNodeBackends(other)).rejects.toMatchObject({ code: 'DATA_DIR_LOCKED' });
    const session = await backends.openSession(AbortSignal.timeout(1_000));
    expect(session.distributed).toBe(false);
    const locks = backends.lockServiceFor(session);
    expect(locks.distributed).toBe(false);
    await locks.withLock('x', async ({ fence }) => {
      expect(fence.holds()).toBe(true);
      expect((await backends.lockTable.list()).map((l) => l.name)).toEqual(['x']);
    });
    await locks.close();
    await session.close();
    await ctx.closer.close();
    // Closed: the data dir is free again.
    const again = await context({ HEARTH_DATA_DIR: dataDir });
    await openSingleNodeBackends(again);
    await again.closer.close();
  });
});
