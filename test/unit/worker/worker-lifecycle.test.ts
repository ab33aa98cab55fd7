// The worker's lifecycle on the single-node adapters: start-up hooks, pause and resume across
// incarnations, drain and hand-back, the republish sweeper.
import { afterEach, describe, expect, it } from 'vitest';
import { AbortedError } from '../../../src/errors.js';
import type { OwnerRef } from '../../../src/identity.js';
import { JobBusPublisher } from '../../../src/volumes/job-bus-publisher.js';
import type { BusMessage, JobBus, JobInput } from '../../../src/routing/job-bus.js';
import { ADMIT_ALL } from '../../../src/volumes/cluster-admission.js';
import { QueueOnlyJobPublisher } from '../../../src/volumes/job-publisher.js';
import { VolumeService } from '../../../src/volumes/volume-service.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { Slots } from '../../../src/concurrency/slots.js';
import { SWEEPER_LOCK } from '../../../src/worker/sweeper.js';
import type { BeforeConsumeContext } from '../../../src/worker/worker.js';
import { ADMIN, CLUSTER, type LocalWorker, localWorker } from './local-harness.js';

let w: LocalWorker | undefined;
afterEach(async () => {
  await w?.close();
  w = undefined;
});

const status = async (worker: LocalWorker, id: string) => (await worker.store.get({ type: 'volume', id }))?.status;

/** The volume API of `worker` without publishing: ops are recorded only (the API died in between). */
function recordOnly(worker: LocalWorker): VolumeService {
  return new VolumeService({ store: worker.store, publisher: new QueueOnlyJobPublisher(), stamps: { add: () => undefined }, admission: ADMIT_ALL, clock: systemClock, logger: silentLogger(), cluster: CLUSTER, availabilityZone: 'nova' });
}

describe('start-up hooks', () => {
  it('run before any message is consumed, and again (with the previous incarnation) after a lost session; no work meanwhile', async () => {
    const calls: { reason: string; previous: OwnerRef | undefined; queuedOwner: unknown }[] = [];
    let volumeId = '';
    w = await localWorker({
      start: false,
      beforeConsume: [
        async (ctx: BeforeConsumeContext) => {
          const op = volumeId ? await w!.store.getOp({ type: 'volume', id: volumeId }) : undefined;
          calls.push({ reason: ctx.reason, previous: ctx.previous, queuedOwner: op?.owner });
          await new Promise((r) => setTimeout(r, 50));
        },
      ],
    });
    volumeId = (await w.api.createVolume(ADMIN, { size: 1 })).id;
    expect(w.worker.ready).toBe(false);
    await w.worker.start();
    expect(w.worker.ready).toBe(true);
    expect(calls).toEqual([{ reason: 'start', previous: undefined, queuedOwner: null }]);
    await expect.poll(() => status(w!, volumeId)).toBe('available');

    const ended = await w.incarnations.end();
    await expect.poll(() => w!.worker.state).toBe('paused');
    expect(w.worker.ready).toBe(false);
    const second = (await w.api.createVolume(ADMIN, { size: 1 })).id;
    volumeId = second;
    await new Promise((r) => setTimeout(r, 200));
    expect(await w.store.getOp({ type: 'volume', id: second })).toMatchObject({ owner: null });

    await w.incarnations.join();
    await expect.poll(() => status(w!, second)).toBe('available');
    expect(calls[1]).toEqual({ reason: 'session-lost', previous: ended, queuedOwner: null });
    expect(w.worker.ready).toBe(true);
  });

  it('a hook that throws is logged; the worker consumes anyway', async () => {
    w = await localWorker({ beforeConsume: [async () => Promise.reject(new Error('cleanup failed'))] });
    const volume = await w.api.createVolume(ADMIN, { size: 1 });
    await expect.poll(() => status(w!, volume.id)).toBe('available');
  });
});

describe('backend down', () => {
  it('a worker whose backend is down consumes nothing but stays joined; it resumes by itself when the backend is up', async () => {
    const listeners = new Set<() => void>();
    const backend = { up: false, onChange: (l: () => void) => (listeners.add(l), () => listeners.delete(l)) };
    const flip = (up: boolean): void => {
      backend.up = up;
      for (const l of listeners) l();
    };
    w = await localWorker({ backend });
    expect(w.worker.state).toBe('holding');
    expect(w.incarnations.current()?.member.joined).toBe(true);
    const first = (await w.api.createVolume(ADMIN, { size: 1 })).id;
    await new Promise((r) => setTimeout(r, 100));
    expect(await w.store.getOp({ type: 'volume', id: first })).toMatchObject({ owner: null });
    flip(true);
    await expect.poll(() => status(w!, first)).toBe('available');
    expect(w.worker.state).toBe('consuming');
    flip(false);
    await expect.poll(() => w!.worker.state).toBe('holding');
    const second = (await w.api.createVolume(ADMIN, { size: 1 })).id;
    await new Promise((r) => setTimeout(r, 100));
    expect(await w.store.getOp({ type: 'volume', id: second })).toMatchObject({ owner: null });
    expect(w.incarnations.current()?.member.joined).toBe(true);
    flip(true);
    await expect.poll(() => status(w!, second)).toBe('available');
  });
});

describe('graceful drain', () => {
  it('an operation that finishes within the grace period finishes; nothing is handed back', async () => {
    w = await localWorker({ latencyMs: 300 });
    const volume = await w.api.createVolume(ADMIN, { size: 1 });
    await expect.poll(async () => (await w!.journal()).calls.length, { interval: 5 }).toBe(1);
    expect(await w.worker.drain(5_000)).toEqual({ finished: 1, stopped: 0 });
    expect(await status(w, volume.id)).toBe('available');
    expect(w.worker.state).toBe('stopped');
  });

  it('an operation still running after the grace period is aborted and handed back: owner none, re-published', async () => {
    w = await localWorker({ latencyMs: 10_000 });
    const volume = await w.api.createVolume(ADMIN, { size: 1 });
    await expect.poll(async () => (await w!.journal()).calls.length, { interval: 5 }).toBe(1);
    const started = Date.now();
    expect(await w.worker.drain(100)).toEqual({ finished: 0, stopped: 1 });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await w.store.getOp({ type: 'volume', id: volume.id })).toMatchObject({ owner: null, attempt: 1, publishedAt: expect.any(Number) as number });
    expect(await status(w, volume.id)).toBe('creating');
    expect(w.queued()).toBe(1);
    expect((await w.journal()).calls).toEqual([expect.objectContaining({ call: 'createVolume', ok: false })]);
    expect(await w.metric('hearth_operations_total', { operation: 'create_volume', result: 'handed_back' })).toBe(1);
    // Another member takes it from the queue at once.
    const other = w.busFor('n2@rbd');
    const taken = await new Promise<BusMessage>((resolve) => void other.consume(async (d) => (resolve(d.job), { type: 'ack' })));
    expect(taken).toMatchObject({ opId: (await w.store.getOp({ type: 'volume', id: volume.id }))!.opId, attempt: 1 });
    await other.close();
  });

  it('jobs not claimed yet when the drain begins are handed back to the queue untouched', async () => {
    w = await localWorker({ latencyMs: 400, maxConcurrentOps: 1 });
    const first = await w.api.createVolume(ADMIN, { size: 1 });
    const second = await w.api.createVolume(ADMIN, { size: 1 });
    await expect.poll(async () => (await w!.journal()).calls.length, { interval: 5 }).toBe(1);
    expect(await w.worker.drain(5_000)).toEqual({ finished: 1, stopped: 0 });
    expect(await status(w, first.id)).toBe('available');
    expect(await w.store.getOp({ type: 'volume', id: second.id })).toMatchObject({ owner: null, attempt: 0 });
    expect(w.queued()).toBe(1);
  });
});

describe('the republish sweeper', () => {
  it('finds an op recorded but never published (the API died in between) and it is executed', async () => {
    w = await localWorker({ sweepIntervalMs: 100 });
    const volume = await recordOnly(w).createVolume(ADMIN, { size: 1 });
    expect(w.queued()).toBe(0);
    await expect.poll(() => status(w!, volume.id), { timeout: 5_000 }).toBe('available');
    expect((await w.journal()).calls).toHaveLength(1);
  });

  it('skips a round while another member sweeps (the hearth-sweeper lock)', async () => {
    w = await localWorker({ start: false, sweepIntervalMs: 1 });
    await recordOnly(w).createVolume(ADMIN, { size: 1 });
    await new Promise((r) => setTimeout(r, 10));
    const held = await w.incarnations.current()!.locks.tryAcquire(SWEEPER_LOCK);
    if (!held.ok) throw new Error('lock busy');
    expect(await w.sweeper.sweep()).toBe(0);
    await held.handle.release();
    expect(await w.sweeper.sweep()).toBe(1);
    expect(await w.sweeper.sweep()).toBe(0); // stamped now: not published twice
  });

  it('re-publishes an op whose job went out long ago and was never claimed (lost or dead-lettered), once per stale period', async () => {
    w = await localWorker({ start: false, sweepIntervalMs: 1, staleAfterMs: 500 });
    const volume = await recordOnly(w).createVolume(ADMIN, { size: 1 });
    const op = (await w.store.getOp({ type: 'volume', id: volume.id }))!;
    await w.store.updateOp({ type: 'volume', id: volume.id }, { expect: { opId: op.opId }, set: { publishedAt: Date.now() - 200 } });
    expect(await w.sweeper.sweep()).toBe(0); // published recently: its message may still be queued
    await w.store.updateOp({ type: 'volume', id: volume.id }, { expect: { opId: op.opId }, set: { publishedAt: Date.now() - 1_000 } });
    expect(await w.sweeper.sweep()).toBe(1);
    expect(w.queued()).toBe(1);
    expect((await w.store.getOp({ type: 'volume', id: volume.id }))!.publishedAt).toBeGreaterThan(Date.now() - 500);
    expect(await w.sweeper.sweep()).toBe(0);
  });

  it('with the in-process bus an unstamped op counts as published when recorded: not published again before the stale period', async () => {
    w = await localWorker({ start: false, sweepIntervalMs: 1, staleAfterMs: 60_000, publishedWhenRecorded: true });
    const volume = await recordOnly(w).createVolume(ADMIN, { size: 1 });
    await new Promise((r) => setTimeout(r, 10));
    // Older than sweepIntervalMs and unstamped — a cluster's sweeper would publish it (above).
    expect(await w.sweeper.sweep()).toBe(0);
    expect(w.queued()).toBe(0);
    expect((await w.store.getOp({ type: 'volume', id: volume.id }))!.publishedAt).toBeNull();
  });

  it('on a single node, start re-publishes every queued op: the in-process queue died with the last run', async () => {
    w = await localWorker({ start: false });
    const volume = await recordOnly(w).createVolume(ADMIN, { size: 1 });
    const op = (await w.store.getOp({ type: 'volume', id: volume.id }))!;
    // Published and stamped by the last run, whose queue is gone.
    await w.store.updateOp({ type: 'volume', id: volume.id }, { expect: { opId: op.opId }, set: { publishedAt: Date.now() } });
    await w.worker.start();
    await expect.poll(() => status(w!, volume.id)).toBe('available');
  });
});

describe('the API publish bound', () => {
  it('a publish that does not confirm within the bound fails (AbortedError); the op is left for the sweeper', async () => {
    const stuck = { publish: (_job: JobInput, o: { signal?: AbortSignal } = {}) => new Promise((_, reject) => o.signal?.addEventListener('abort', () => reject(new AbortedError('publish')))) } as unknown as JobBus;
    const started = Date.now();
    const op = { type: 'volume', id: 'v', opId: 'o', kind: 'create_volume', cluster: CLUSTER, attempt: 0 } as never;
    await expect(new JobBusPublisher(stuck, { timeoutMs: 100 }).publish(op)).rejects.toBeInstanceOf(AbortedError);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe('slots', () => {
  it('admit at most their size, FIFO, and an aborted wait holds nothing', async () => {
    const slots = new Slots(2);
    const a = await slots.acquire();
    await slots.acquire();
    const order: string[] = [];
    const c = slots.acquire().then((release) => (order.push('c'), release));
    const abort = new AbortController();
    const d = slots.acquire(abort.signal).then(() => order.push('d'), () => order.push('d aborted'));
    const e = slots.acquire().then((release) => (order.push('e'), release));
    abort.abort();
    await d;
    a();
    a(); // idempotent
    await c;
    expect(slots.inUse).toBe(2);
    (await c)();
    await e;
    expect(order).toEqual(['d aborted', 'c', 'e']);
    expect(() => new Slots(0)).toThrow(RangeError);
  });
});
