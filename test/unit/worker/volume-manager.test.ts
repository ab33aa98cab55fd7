// The volume manager on the single-node adapters: the same manager a cluster runs.
import { afterEach, describe, expect, it } from 'vitest';
import { dispositions, type JobDelivery } from '../../../src/routing/job-bus.js';
import type { JobMessage } from '../../../src/routing/job-message.js';
import type { OpRecord } from '../../../src/state/records.js';
import { newVolume } from '../../contract/state-store.contract.js';
import { ADMIN, CLUSTER, HOST, type LocalWorker, localWorker } from './local-harness.js';

let w: LocalWorker | undefined;
afterEach(async () => {
  await w?.close();
  w = undefined;
});

async function settled(worker: LocalWorker, type: 'volume' | 'snapshot', id: string): Promise<string | undefined> {
  await expect.poll(async () => worker.store.getOp({ type, id }), { timeout: 5_000, interval: 10 }).toBeUndefined();
  return (await worker.store.get({ type, id }))?.status;
}

function delivery(job: JobMessage, deliveryCount = 1): JobDelivery {
  return { job, via: 'cluster', deliveryCount, redelivered: deliveryCount > 1, signal: new AbortController().signal };
}

function jobOf(op: OpRecord): JobMessage {
  return { v: 1, type: op.type, id: op.id, opId: op.opId, kind: op.kind, cluster: op.cluster, attempt: op.attempt, publishedAt: Date.now() };
}

describe('the volume manager runs every kind to its final status', () => {
  it('create, extend, snapshot create and delete, delete: final statuses, host, size, no ops left, one driver call each', async () => {
    w = await localWorker();
    const volume = await w.api.createVolume(ADMIN, { size: 1, name: 'v' });
    expect(await settled(w, 'volume', volume.id)).toBe('available');
    // The final write names its writer: this incarnation (the fault suite checks it in etcd's history).
    const me = w.incarnations.current()?.member.owner.incarnation;
    expect(me).toMatch(/^n1@rbd:/);
    expect(await w.store.get({ type: 'volume', id: volume.id })).toMatchObject({ host: HOST, size: 1, updated_by: me });

    await w.api.extendVolume(ADMIN, volume.id, 3, false);
    expect(await settled(w, 'volume', volume.id)).toBe('available');
    expect(await w.store.get({ type: 'volume', id: volume.id })).toMatchObject({ size: 3 });

    const snapshot = await w.api.createSnapshot(ADMIN, { volumeId: volume.id, name: 's' });
    expect(await settled(w, 'snapshot', snapshot.id)).toBe('available');
    expect(await w.store.get({ type: 'snapshot', id: snapshot.id })).toMatchObject({ host: HOST, progress: '100%', updated_by: me });

    await w.api.deleteSnapshot(ADMIN, snapshot.id);
    expect(await settled(w, 'snapshot', snapshot.id)).toBeUndefined();
    await w.api.deleteVolume(ADMIN, volume.id);
    expect(await settled(w, 'volume', volume.id)).toBeUndefined();

    expect(await w.store.listOps()).toEqual([]);
    const report = await w.journal();
    expect(report.ok).toBe(true);
    expect(report.calls.map((c) => `${c.call}:${c.ok}`)).toEqual(['createVolume:true', 'extendVolume:true', 'createSnapshot:true', 'deleteSnapshot:true', 'deleteVolume:true']);
    expect(new Set(report.calls.map((c) => c.opId)).size).toBe(5);
    expect(await w.metric('hearth_operations_total', { operation: 'create_volume', result: 'success' })).toBe(1);
    expect(await w.metric('hearth_operations_total', { operation: 'delete_volume', result: 'success' })).toBe(1);
    expect(await w.metric('hearth_operations_in_progress', { operation: 'create_volume' })).toBe(0);
  });

  it('driver failures end in Cinder\'s error statuses, never thrown', async () => {
    w = await localWorker();
    const ok = await w.api.createVolume(ADMIN, { size: 1 });
    expect(await settled(w, 'volume', ok.id)).toBe('available');
    const snap = await w.api.createSnapshot(ADMIN, { volumeId: ok.id });
    expect(await settled(w, 'snapshot', snap.id)).toBe('available');
    // From now on every driver call fails (random() is 0, below any rate).
    (w.driver as unknown as { failureRate: number }).failureRate = 1;
    const failed = await w.api.createVolume(ADMIN, { size: 1 });
    expect(await settled(w, 'volume', failed.id)).toBe('error');
    await w.api.extendVolume(ADMIN, ok.id, 2, false);
    expect(await settled(w, 'volume', ok.id)).toBe('error_extending');
    expect((await w.store.get({ type: 'volume', id: ok.id }))?.size).toBe(1);
    await w.api.deleteSnapshot(ADMIN, snap.id);
    expect(await settled(w, 'snapshot', snap.id)).toBe('error_deleting');
    const snap2 = await w.api.createSnapshot(ADMIN, { volumeId: failed.id, allowInUse: false }).catch((e: unknown) => e);
    expect(snap2).toBeInstanceOf(Error); // an errored volume cannot be snapshotted
    await w.api.deleteVolume(ADMIN, failed.id);
    expect(await settled(w, 'volume', failed.id)).toBe('error_deleting');
    expect(await w.metric('hearth_operations_total', { operation: 'create_volume', result: 'error' })).toBe(1);
    expect(await w.metric('hearth_operations_total', { operation: 'extend_volume', result: 'error' })).toBe(1);
  });
});

describe('claim, then ack', () => {
  it('drops a duplicate of a running op, a job whose op is gone, and a stale job', async () => {
    w = await localWorker({ latencyMs: 300 });
    const volume = await w.api.createVolume(ADMIN, { size: 1 });
    await expect.poll(async () => (await w!.store.getOp({ type: 'volume', id: volume.id }))?.owner?.host, { interval: 5 }).toBe(HOST);
    const op = (await w.store.getOp({ type: 'volume', id: volume.id }))!;
    expect(await w.manager.handle(delivery(jobOf(op), 2))).toEqual(dispositions.drop('already running here'));
    expect(await settled(w, 'volume', volume.id)).toBe('available');
    expect(await w.manager.handle(delivery(jobOf(op)))).toMatchObject({ type: 'drop', reason: expect.stringContaining('gone') as string });
    await w.api.extendVolume(ADMIN, volume.id, 2, false);
    expect(await w.manager.handle(delivery(jobOf(op)))).toMatchObject({ type: 'drop', reason: expect.stringContaining('stale job') as string });
    expect(await settled(w, 'volume', volume.id)).toBe('available');
    expect((await w.journal()).calls.filter((c) => c.call === 'createVolume')).toHaveLength(1);
  });

  it('dead-letters a job whose kind disagrees with its op; the worker goes on', async () => {
    w = await localWorker({ start: false });
    const volume = await w.api.createVolume(ADMIN, { size: 1 });
    const op = (await w.store.getOp({ type: 'volume', id: volume.id }))!;
    expect(await w.manager.handle(delivery({ ...jobOf(op), kind: 'delete_volume' }))).toMatchObject({ type: 'dead-letter', reason: 'rejected' });
    expect((await w.store.getOp({ type: 'volume', id: volume.id }))?.owner).toBeNull();
    await w.worker.start();
    expect(await settled(w, 'volume', volume.id)).toBe('available');
  });

  it('two claimers of one queued op: exactly one wins', async () => {
    w = await localWorker({ start: false });
    const volume = await w.api.createVolume(ADMIN, { size: 1 });
    const op = (await w.store.getOp({ type: 'volume', id: volume.id }))!;
    const me = w.incarnations.current()!.member;
    const results = await Promise.all([w.claimer.claimOp(op, me), w.claimer.claimOp(op, me), w.claimer.claimOp(op, me)]);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok).map((r) => !r.ok && r.reason)).toEqual(['conflict', 'conflict']);
    expect(await w.store.getOp({ type: 'volume', id: volume.id })).toMatchObject({ owner: me.owner, attempt: 1 });
  });

  it('a dead incarnation\'s op is claimed with the proof it is dead and fenced; a live owner\'s is not; a dead claimer is fenced', async () => {
    w = await localWorker({ start: false });
    const volume = await w.api.createVolume(ADMIN, { size: 1 });
    const first = w.incarnations.current()!.member;
    const claimed = await w.claimer.claimOp((await w.store.getOp({ type: 'volume', id: volume.id }))!, first);
    expect(claimed.ok).toBe(true);
    const owned = (await w.store.getOp({ type: 'volume', id: volume.id }))!;
    // While its owner lives, a takeover is refused: not an orphan.
    expect(await w.claimer.claimOp(owned, first, { ownerDead: true })).toEqual({ ok: false, reason: 'owner-alive' });
    await w.incarnations.end();
    // The old incarnation can claim nothing any more.
    const fenced = await w.claimer.claimOp(owned, first, { ownerDead: true });
    expect(fenced).toMatchObject({ ok: false, reason: 'fenced' });
    const second = await w.incarnations.join();
    // Dead, but nothing says its runs have stopped: the takeover waits for its fence.
    expect(await w.claimer.claimOp(owned, second, { ownerDead: true })).toEqual({ ok: false, reason: 'awaiting-fence' });
    const end = { incarnation: first.owner.incarnation, host: first.owner.host, how: 'manual' as const, by: 'operator', atMs: Date.now(), detail: 'test' };
    expect(await w.membership.recordEnd(end)).toMatchObject({ ok: true, created: true });
    const takeover = await w.claimer.claimOp(owned, second, { ownerDead: true });
    expect(takeover).toMatchObject({ ok: true, op: { owner: second.owner, attempt: 2 } });
  });

  it('a redelivered job whose op this incarnation owns but does not run is resumed', async () => {
    w = await localWorker({ start: false });
    const volume = await w.api.createVolume(ADMIN, { size: 1 });
    const me = w.incarnations.current()!.member;
    const claimed = await w.claimer.claimOp((await w.store.getOp({ type: 'volume', id: volume.id }))!, me);
    if (!claimed.ok) throw new Error('claim failed');
    // As if the claim's answer was lost: the op is ours, nothing runs it.
    expect(await w.manager.handle(delivery(jobOf(claimed.op), 2))).toEqual(dispositions.ack());
    expect(await settled(w, 'volume', volume.id)).toBe('available');
  });
});

describe('a job that carries its op', () => {
  /** Counts the store's reads from now on (the real store answers them). */
  function countReads(worker: LocalWorker): { readonly reads: string[] } {
    const seen = { reads: [] as string[] };
    const store = worker.store as unknown as Record<'get' | 'getOp', (...args: unknown[]) => Promise<unknown>>;
    for (const method of ['get', 'getOp'] as const) {
      const real = store[method].bind(worker.store);
      store[method] = (...args: unknown[]) => (seen.reads.push(method), real(...args));
    }
    return seen;
  }

  async function recorded(worker: LocalWorker): Promise<{ job: JobMessage; id: string }> {
    const created = await worker.store.create('volume', { record: newVolume({ cluster: CLUSTER }), op: { kind: 'create_volume', params: { size: 1 } } });
    if (!created.ok || !created.op || created.stored === undefined) throw new Error('create failed');
    return { job: { ...jobOf(created.op), op: created.stored }, id: created.record.id };
  }

  it('is claimed under its locks, taken before the claim: no read of the op, no re-read under the locks', async () => {
    w = await localWorker({ start: false });
    const { job, id } = await recorded(w);
    const seen = countReads(w);
    expect(await w.manager.handle(delivery(job))).toEqual(dispositions.ack());
    await expect.poll(() => w!.manager.inFlight, { interval: 5 }).toBe(0);
    expect(seen.reads).toEqual([]);
    expect(await w.store.get({ type: 'volume', id })).toMatchObject({ status: 'available' });
    expect(await w.store.getOp({ type: 'volume', id })).toBeUndefined();
  });

  it('whose lock is busy goes the ordinary way: claimed and acknowledged at once, run once the lock is free', async () => {
    w = await localWorker({ start: false });
    const { job, id } = await recorded(w);
    const held = await w.incarnations.current()!.locks.acquire(`${id}-delete_volume`);
    expect(await w.manager.handle(delivery(job))).toEqual(dispositions.ack());
    expect(await w.store.getOp({ type: 'volume', id })).toMatchObject({ owner: { host: HOST }, attempt: 1 });
    expect((await w.journal()).calls).toHaveLength(0);
    await held.release();
    expect(await settled(w, 'volume', id)).toBe('available');
  });

  it('whose carried op is stale is decided on the op as it is (here: finished meanwhile, so dropped)', async () => {
    w = await localWorker({ start: false });
    const { job, id } = await recorded(w);
    await w.store.transition({ type: 'volume', id }, { expect: { status: 'creating' }, set: { status: 'error' }, op: 'remove', by: 'worker' });
    expect(await w.manager.handle(delivery(job))).toMatchObject({ type: 'drop', reason: expect.stringContaining('gone') as string });
    expect(await w.store.get({ type: 'volume', id })).toMatchObject({ status: 'error' });
    expect((await w.journal()).calls).toHaveLength(0);
    // Its locks were given back: the volume's lock is free.
    const free = await w.incarnations.current()!.locks.tryAcquire(`${id}-delete_volume`);
    expect(free.ok).toBe(true);
    if (free.ok) await free.handle.release();
  });
});

describe('the runner under loss', () => {
  it('an incarnation that ends mid-operation aborts the driver call and writes nothing: the op is left owned (an orphan)', async () => {
    w = await localWorker({ latencyMs: 2_000 });
    const volume = await w.api.createVolume(ADMIN, { size: 1 });
    await expect.poll(async () => (await w!.journal()).calls.length, { interval: 5 }).toBe(1);
    const owner = await w.incarnations.end();
    await expect.poll(async () => w!.metric('hearth_operations_total', { operation: 'create_volume', result: 'fenced' }), { interval: 10 }).toBe(1);
    expect(await w.store.get({ type: 'volume', id: volume.id })).toMatchObject({ status: 'creating', host: null });
    expect(await w.store.getOp({ type: 'volume', id: volume.id })).toMatchObject({ owner, attempt: 1 });
    const [call] = (await w.journal()).calls;
    expect(call).toMatchObject({ ok: false });
    expect(call!.end! - call!.start).toBeLessThan(1_900);
  });

  it('an admin reset of the status meanwhile: the run finds its op gone and writes nothing', async () => {
    w = await localWorker({ latencyMs: 400 });
    const volume = await w.api.createVolume(ADMIN, { size: 1 });
    await expect.poll(async () => (await w!.journal()).calls.length, { interval: 5 }).toBe(1);
    await w.api.resetVolumeStatus(ADMIN, volume.id, { status: 'error' });
    await expect.poll(async () => w!.metric('hearth_operations_total', { operation: 'create_volume', result: 'gone' }), { interval: 10 }).toBe(1);
    expect(await w.store.get({ type: 'volume', id: volume.id })).toMatchObject({ status: 'error', host: null });
  });
});

describe('the backend epoch (replication failover)', () => {
  it('a run overtaken by a failover writes nothing and hands its op back; it runs again at the new epoch', async () => {
    let served = 0;
    w = await localWorker({ latencyMs: 300, epoch: (membership) => ({ current: () => served, fence: (e) => membership.epochFence(CLUSTER, e) }) });
    const worker = w;
    const volume = await worker.api.createVolume(ADMIN, { size: 1, name: 'v' });
    await expect.poll(async () => (await worker.journal()).calls.length, { timeout: 5_000, interval: 10 }).toBeGreaterThan(0);
    // The failover: the epoch key first, then this member serves the new epoch.
    expect(await worker.membership.advanceEpoch(CLUSTER, 1)).toEqual({ ok: true });
    served = 1;
    expect(await settled(worker, 'volume', volume.id)).toBe('available');
    expect(await worker.metric('hearth_operations_total', { operation: 'create_volume', result: 'handed_back' })).toBe(1);
    expect(await worker.metric('hearth_operations_total', { operation: 'create_volume', result: 'success' })).toBe(1);
    const report = await worker.journal();
    expect(report.calls.map((c) => `${c.call}:${c.ok}`)).toEqual(['createVolume:true', 'createVolume:true']);
  });
});
