import { waitFor } from '../../support/wait.js';
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { LocalLockService } from '../../../src/locks/local-lock-service.js';
import { LockMetrics } from '../../../src/locks/metrics.js';
import { lockServiceContract } from '../../contract/lock-service.contract.js';

lockServiceContract('local (in-process FIFO mutex)', false, async () => {
  const service = new LocalLockService({ incarnation: 'node1@rbd:test' });
  return {
    contender: async () => service,
    queued: async (name, count) => void (await waitFor(() => service.queueLength(name) >= count, { intervalMs: 2, what: `${count} contenders on ${name}` })),
    commit: async (fence) => fence.holds(),
    close: () => service.close(),
  };
});

describe('LocalLockService specifics', () => {
  it('names this incarnation as the holder of a contended lock', async () => {
    const service = new LocalLockService({ incarnation: 'node1@rbd:abc' });
    const held = await service.acquire('vol');
    const attempt = await service.tryAcquire('vol');
    expect(attempt).toEqual({ ok: false, holder: { key: 'locks/vol', incarnation: 'node1@rbd:abc' } });
    await held.release();
    await service.close();
  });

  it('reports a lock as lost (signal aborted, counted) when the service closes under it', async () => {
    const registry = new Registry();
    const service = new LocalLockService({ metrics: new LockMetrics(registry) });
    const held = await service.acquire('00000000-0000-4000-8000-000000000001-delete_volume');
    const reasons: unknown[] = [];
    held.signal.addEventListener('abort', () => reasons.push(held.signal.reason));
    await service.close();
    expect(held.state).toBe('lost');
    expect(reasons).toHaveLength(1);
    expect((reasons[0] as { code?: string }).code).toBe('LOCK_LOST');
    const lost = await registry.getSingleMetric('hearth_locks_lost_total')?.get();
    expect(lost?.values).toEqual([{ labels: { lock_type: 'delete_volume' }, value: 1 }]);
  });
});
