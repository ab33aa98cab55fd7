import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BackendUnavailableError, type CoordinatorError } from '../../../src/errors.js';
import type { LockHandle, LockStateChange } from '../../../src/locks/lock-service.js';
import { useEtcd, type EtcdTestContext } from '../../support/context.js';
import { EtcdServer } from '../../support/etcd.js';
import { TcpProxy } from '../../support/tcp-proxy.js';
import { waitFor } from '../../support/wait.js';
import { startWorker, waitQueued, type Worker } from './fixtures.js';

/** Records a handle's state changes and when its signal fired (epoch ms). */
function observe(handle: LockHandle): { changes: string[]; signalAt: () => number | undefined } {
  const changes: string[] = [];
  let signalAt: number | undefined;
  handle.onStateChange((c: LockStateChange) => changes.push(`${c.previous}->${c.state}`));
  handle.signal.addEventListener('abort', () => (signalAt = Date.now()), { once: true });
  return { changes, signalAt: () => signalAt };
}

const port = (url: string): number => Number(new URL(url).port);

describe('the loss signal fires before etcd can hand the lock to someone else', () => {
  let ctx: EtcdTestContext;
  let proxy: TcpProxy;
  let workers: Worker[] = [];
  beforeAll(() => {
    ctx = useEtcd();
  });
  afterEach(async () => {
    proxy.heal();
    await Promise.all(workers.map((w) => w.close()));
    workers = [];
    await proxy.close();
  });
  afterAll(() => ctx.close());

  const scenario = async (partition: 'pause' | 'cut'): Promise<void> => {
    proxy = await TcpProxy.start({ port: port(ctx.endpoints[0]!) });
    // The holder talks to etcd through the proxy; the contender directly.
    const holder = await startWorker({ endpoints: [proxy.url], prefix: ctx.prefix, leaseTtlMs: 3_000, leaseMarginMs: 1_000, callTimeoutMs: 1_000 });
    const contender = await startWorker({ endpoints: ctx.endpoints, prefix: ctx.prefix });
    workers.push(holder, contender);
    const name = `${partition}-00000000-0000-4000-8000-000000000001-delete_volume`;
    const handle = await holder.locks.acquire(name);
    const seen = observe(handle);
    let acquiredAt = 0;
    const taken = contender.locks.acquire(name, { timeoutMs: 30_000 }).then((h) => {
      acquiredAt = Date.now();
      return h;
    });
    await waitQueued(ctx.client, ctx.prefix, name, 2);
    const partitionedAt = Date.now();
    if (partition === 'pause') proxy.pause();
    else proxy.cut();
    const next = await taken;
    const signalAt = seen.signalAt();
    console.log(
      `[loss signal, ${partition}] TTL 3000 ms, margin 1000 ms: signal fired at +${signalAt === undefined ? '∞' : signalAt - partitionedAt} ms, ` +
        `contender acquired at +${acquiredAt - partitionedAt} ms (lead ${signalAt === undefined ? '—' : acquiredAt - signalAt} ms)`,
    );
    expect(signalAt).toBeDefined();
    expect(signalAt!).toBeLessThan(acquiredAt);
    expect(handle.state).toBe('lost');
    expect(handle.fence.holds()).toBe(false);
    expect(seen.changes).toEqual(['held->jeopardy', 'jeopardy->lost']);
    expect((handle.signal.reason as CoordinatorError).code).toBe('LOCK_LOST');
    await next.release();
  };

  it('when the holder is partitioned by silence (proxy paused)', () => scenario('pause'));
  it('when the holder\'s connections are reset (proxy cut)', () => scenario('cut'));

  it('etcd unreachable: acquire fails typed and retryable within its deadline; held locks go jeopardy → lost; nothing hangs', async () => {
    proxy = await TcpProxy.start({ port: port(ctx.endpoints[0]!) });
    const w = await startWorker({ endpoints: [proxy.url], prefix: ctx.prefix, leaseTtlMs: 3_000, leaseMarginMs: 1_000, callTimeoutMs: 1_000 });
    workers.push(w);
    const handle = await w.locks.acquire('held-through-outage');
    const seen = observe(handle);
    proxy.pause();
    const started = Date.now();
    const err = (await w.locks.acquire('wanted', { timeoutMs: 5_000 }).catch((e: unknown) => e)) as CoordinatorError;
    const elapsed = Date.now() - started;
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(err.retryable).toBe(true);
    expect(elapsed).toBeLessThan(5_000);
    const withDeadline = Date.now();
    const short = (await w.locks.acquire('wanted-2', { timeoutMs: 400 }).catch((e: unknown) => e)) as CoordinatorError;
    expect(short.retryable).toBe(true);
    expect(Date.now() - withDeadline).toBeLessThan(1_000);
    await waitFor(() => handle.state === 'lost', { timeoutMs: 5_000, what: 'the held lock to be lost' });
    expect(seen.changes).toEqual(['held->jeopardy', 'jeopardy->lost']);
    expect(w.session.state).toBe('lost');
    // On a lost session, acquires fail at once and are not retryable on this incarnation.
    const afterLoss = (await w.locks.acquire('later').catch((e: unknown) => e)) as CoordinatorError;
    expect(afterLoss.code).toBe('LOCK_LOST');
    await handle.release();
    const closing = Date.now();
    await w.close();
    expect(Date.now() - closing).toBeLessThan(2_500);
  });
});

describe('an etcd restart', () => {
  let etcd: EtcdServer;
  const workers: Worker[] = [];
  beforeAll(async () => {
    etcd = await EtcdServer.start();
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.close()));
    await etcd.stop();
  });

  it('keeps held locks (the lease survives) and a waiter proceeds after the restart', async () => {
    const prefix = '/restart';
    const a = await startWorker({ endpoints: etcd.endpoints, prefix, leaseTtlMs: 8_000, leaseMarginMs: 1_000 });
    const b = await startWorker({ endpoints: etcd.endpoints, prefix, leaseTtlMs: 8_000, leaseMarginMs: 1_000 });
    workers.push(a, b);
    const held = await a.locks.acquire('survivor');
    const waiting = b.locks.acquire('survivor', { timeoutMs: 60_000 });
    waiting.catch(() => undefined); // asserted below
    await waitQueued(a.client, prefix, 'survivor', 2);
    await etcd.restart(200);
    await waitFor(() => a.session.state === 'held' && b.session.state === 'held', { timeoutMs: 15_000, what: 'both sessions held again' });
    expect(held.state).toBe('held');
    expect(held.signal.aborted).toBe(false);
    await held.release();
    const next = await waiting;
    expect(next.state).toBe('held');
    await next.release();
  });
});
