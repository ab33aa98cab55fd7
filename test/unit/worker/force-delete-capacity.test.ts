// Force-delete of a resource whose operation is in flight, and the capacity gate, on the
// single-node adapters (SQLite, in-process locks and bus, the fake driver and its journal).
import { afterEach, describe, expect, it } from 'vitest';
import type { JournalCall } from '../../../src/drivers/fake-journal.js';
import type { Admission, AdmissionRequest } from '../../../src/worker/admission.js';
import { checkCapacity } from '../../../src/backend/capacity-filter.js';
import { ADMIN, type LocalWorker, localWorker } from './local-harness.js';

let w: LocalWorker | undefined;
afterEach(async () => {
  await w?.close();
  w = undefined;
});

const GIB = 1024 ** 3;
const status = async (worker: LocalWorker, id: string) => (await worker.store.get({ type: 'volume', id }))?.status ?? 'deleted';

/** No call of `oldOp` ended after a call of `newOp` began. */
function endedBefore(calls: readonly JournalCall[], oldOp: string, newOp: string): boolean {
  const firstNew = Math.min(...calls.filter((c) => c.opId === newOp).map((c) => c.start));
  return calls.filter((c) => c.opId === oldOp).every((c) => c.end !== undefined && c.end <= firstNew);
}

describe('force-delete of a volume whose operation is in flight', () => {
  it('the owner aborts its hanging driver call on the notice; the delete runs only after that call ended', async () => {
    w = await localWorker({ hang: ['createVolume'] });
    const volume = await w.api.createVolume(ADMIN, { size: 1 });
    const creating = (await w.store.getOp({ type: 'volume', id: volume.id }))!;
    await expect.poll(async () => (await w!.journal()).calls.length).toBe(1);
    await w.api.forceDeleteVolume(ADMIN, volume.id);
    await expect.poll(() => status(w!, volume.id)).toBe('deleted');
    const { calls } = await w.journal();
    const deleting = calls.find((c) => c.call === 'deleteVolume');
    expect(calls.find((c) => c.opId === creating.opId)).toMatchObject({ call: 'createVolume', ok: false });
    expect(deleting).toMatchObject({ ok: true });
    expect(endedBefore(calls, creating.opId, deleting!.opId)).toBe(true);
    expect(await w.store.getOp({ type: 'volume', id: volume.id })).toBeUndefined();
  });

  it('a call that ignores its abort: the delete waits up to its bound, then error_deleting, says why, and calls no driver', async () => {
    w = await localWorker({ hang: ['extendVolume'], hangIgnoresAbort: true, forceDeleteWaitMs: 300 });
    const volume = await w.api.createVolume(ADMIN, { size: 1 });
    await expect.poll(() => status(w!, volume.id)).toBe('available');
    await w.api.extendVolume(ADMIN, volume.id, 2, false);
    await expect.poll(async () => (await w!.journal()).calls.length).toBe(2);
    await w.api.forceDeleteVolume(ADMIN, volume.id);
    await expect.poll(() => status(w!, volume.id)).toBe('error_deleting');
    expect(w.forceTimeouts).toHaveLength(1);
    expect(w.forceTimeouts[0]).toMatch(/waited 0 s for the extend_volume operation it replaced .* and it did not/);
    const { calls } = await w.journal();
    expect(calls.map((c) => c.call)).toEqual(['createVolume', 'extendVolume']);
    expect(await w.store.getOp({ type: 'volume', id: volume.id })).toBeUndefined();
  });

  it('a snapshot being created: force-deleted once its copy was aborted', async () => {
    w = await localWorker({ hang: ['createSnapshot'] });
    const volume = await w.api.createVolume(ADMIN, { size: 1 });
    await expect.poll(() => status(w!, volume.id)).toBe('available');
    const snap = await w.api.createSnapshot(ADMIN, { volumeId: volume.id });
    await expect.poll(async () => (await w!.journal()).calls.length).toBe(2);
    await w.api.forceDeleteSnapshot(ADMIN, snap.id);
    await expect.poll(async () => (await w!.store.get({ type: 'snapshot', id: snap.id }))?.status ?? 'deleted').toBe('deleted');
    const { calls } = await w.journal();
    expect(calls.map((c) => `${c.call} ${String(c.ok)}`)).toEqual(['createVolume true', 'createSnapshot false', 'deleteSnapshot true']);
  });
});

describe('capacity gate', () => {
  /** A pool of `totalGiB` with nothing provisioned, no over-subscription. */
  function gate(totalGiB: number, told: AdmissionRequest[]): Admission {
    return {
      admit: async (r) => checkCapacity({ totalBytes: totalGiB * GIB, freeBytes: totalGiB * GIB, provisionedBytes: 0, thin: true, maxOverSubscriptionRatio: 1, reservedPercentage: 0 }, r.requestedGiB, 'cluster test'),
      refused: async (r) => void told.push(r),
      finished: () => undefined,
    };
  }

  it('a create that cannot fit ends in error and an extend returns to its previous status; the user is told; no driver call', async () => {
    const told: AdmissionRequest[] = [];
    w = await localWorker({ admission: gate(5, told) });
    const big = await w.api.createVolume(ADMIN, { size: 6 });
    await expect.poll(() => status(w!, big.id)).toBe('error');
    const small = await w.api.createVolume(ADMIN, { size: 2 });
    await expect.poll(() => status(w!, small.id)).toBe('available');
    await w.api.extendVolume(ADMIN, small.id, 8, false);
    await expect.poll(() => status(w!, small.id)).toBe('available');
    expect(await w.store.get({ type: 'volume', id: small.id })).toMatchObject({ size: 2, previous_status: null });
    expect(told.map((r) => [r.kind, r.volumeId, r.requestedGiB])).toEqual([
      ['create_volume', big.id, 6],
      ['extend_volume', small.id, 6],
    ]);
    expect((await w.journal()).calls.map((c) => c.resource)).toEqual([`volume:${small.id}`]);
    expect(await w.metric('hearth_operations_total', { operation: 'create_volume', result: 'refused' })).toBe(1);
  });
});
