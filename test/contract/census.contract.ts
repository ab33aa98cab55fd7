import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Census } from '../../src/census/census.js';
import { ManualClock } from '../../src/lifecycle/clock.js';
import type { StateStore } from '../../src/state/state-store.js';
import { newSnapshot, newVolume } from './state-store.contract.js';

/** An empty state store with the census of the same backend; `cleanup` frees both. */
export interface CensusHarness {
  readonly store: StateStore;
  /** Opens a census of `store`'s backend (not started). */
  openCensus(): Census;
  cleanup(): Promise<void>;
}

/** Makes a harness whose store writes with `clock`. */
export type CensusFactory = (clock: ManualClock) => Promise<CensusHarness>;

/**
 * The Census contract, on SQLite (unit: counts kept by the store's triggers) and etcd
 * (integration: counts moved by a watch's events and their previous values). The census
 * follows the store's own writes — creates, transitions, op removals, deletes — whichever way
 * it learns of them; on etcd it learns asynchronously, so every check polls.
 */
export function describeCensus(name: string, make: CensusFactory): void {
  describe(`Census contract: ${name}`, () => {
    let h: CensusHarness;
    let store: StateStore;
    let clock: ManualClock;
    const open: Census[] = [];
    beforeEach(async () => {
      clock = new ManualClock(1_700_000_000_000);
      h = await make(clock);
      store = h.store;
    });
    afterEach(async () => {
      for (const census of open.splice(0)) await census.close();
      await store.close();
      await h.cleanup();
    });

    const started = async (): Promise<Census> => {
      const census = h.openCensus();
      open.push(census);
      await census.start(new AbortController().signal);
      return census;
    };
    const counts = async (census: Census): Promise<Record<string, number>> =>
      Object.fromEntries((await census.snapshot()).resources.filter((r) => r.count !== 0).map((r) => [`${r.type} ${r.status}`, r.count]));
    const operations = async (census: Census) => [...(await census.snapshot()).operations].sort((a, b) => a.kind.localeCompare(b.kind));

    async function created(): Promise<string> {
      const res = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
      if (!res.ok) throw new Error('create failed');
      return res.record.id;
    }
    async function available(): Promise<string> {
      const id = await created();
      const done = await store.transition({ type: 'volume', id }, { expect: { status: 'creating' }, set: { status: 'available' }, op: 'remove', by: 'worker' });
      if (!done.ok) throw new Error('completion failed');
      return id;
    }

    it('counts the records there when it starts, with the oldest unfinished op of each kind', async () => {
      await available();
      await available();
      await clock.advance(1_000);
      const pending = await created();
      await clock.advance(1_000);
      await created();
      const census = await started();
      expect(await counts(census)).toEqual({ 'volume available': 2, 'volume creating': 2 });
      const op = await store.getOp({ type: 'volume', id: pending });
      expect(await operations(census)).toEqual([{ cluster: 'ceph@rbd', kind: 'create_volume', count: 2, oldestCreatedAtMs: op?.createdAt }]);
    });

    it('follows every create, transition, op removal and delete after it started', async () => {
      const census = await started();
      const first = await available();
      const second = await created();
      await expect.poll(() => counts(census)).toEqual({ 'volume available': 1, 'volume creating': 1 });
      const snap = await store.create('snapshot', { record: newSnapshot(first), op: { kind: 'create_snapshot' }, parent: { ref: { type: 'volume', id: first }, expect: { status: 'available' } } });
      if (!snap.ok) throw new Error('snapshot create failed');
      await store.transition({ type: 'volume', id: second }, { expect: { status: 'creating' }, set: { status: 'error' }, op: 'remove', by: 'worker' });
      await expect.poll(() => counts(census)).toEqual({ 'volume available': 1, 'volume error': 1, 'snapshot creating': 1 });
      await expect.poll(() => operations(census)).toEqual([{ cluster: 'ceph@rbd', kind: 'create_snapshot', count: 1, oldestCreatedAtMs: snap.op?.createdAt }]);

      await store.transition({ type: 'snapshot', id: snap.record.id }, { expect: { status: 'creating' }, set: { status: 'available' }, op: 'remove', by: 'worker' });
      await store.transition({ type: 'volume', id: second }, { expect: {}, set: { status: 'deleting' }, op: { create: { kind: 'delete_volume' } }, by: 'api' });
      await expect.poll(() => counts(census)).toEqual({ 'volume available': 1, 'volume deleting': 1, 'snapshot available': 1 });
      await store.remove({ type: 'volume', id: second }, { expect: {}, by: 'worker' });
      await expect.poll(() => counts(census)).toEqual({ 'volume available': 1, 'snapshot available': 1 });
      await expect.poll(() => operations(census)).toEqual([]);
    });

    it('moves a record\'s count with each change of its status, and back', async () => {
      const census = await started();
      const id = await available();
      const vol = await store.get({ type: 'volume', id });
      await store.transition({ type: 'volume', id }, { expect: { status: 'available' }, set: { status: 'reserved' }, by: 'api' });
      await store.transition({ type: 'volume', id }, { expect: { status: 'reserved' }, set: { status: 'available' }, by: 'api' });
      await available();
      await expect.poll(() => counts(census)).toEqual({ 'volume available': 2 });
      expect((await store.get({ type: 'volume', id }))?.revision).not.toBe(vol?.revision);
    });

    it('counts the same when opened again', async () => {
      const census = await started();
      await available();
      await created();
      await expect.poll(() => counts(census)).toEqual({ 'volume available': 1, 'volume creating': 1 });
      await census.close();
      await census.close();
      const again = await started();
      expect(await counts(again)).toEqual({ 'volume available': 1, 'volume creating': 1 });
      expect((await operations(again)).map((o) => o.count)).toEqual([1]);
    });
  });
}
