import type { Etcd3 } from 'etcd3';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/schema.js';
import { FencedError, OutcomeUnknownError } from '../../../src/errors.js';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import type { Fence } from '../../../src/fence.js';
import { type Clock, systemClock } from '../../../src/lifecycle/clock.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { EtcdStateStore } from '../../../src/state/etcd-state-store.js';
import { createStateMetrics, type StateMetrics } from '../../../src/state/metrics.js';
import type { VolumeRecord } from '../../../src/state/records.js';
import { type EtcdTestContext, useEtcd } from '../../support/context.js';
import { waitFor } from '../../support/wait.js';
import { describeStateStore, newVolume, type StoredRef, type StateStoreFactory } from '../../contract/state-store.contract.js';
import { describeSourceHolds } from '../../contract/source-holds.contract.js';
import { LossyProxy } from './lossy-proxy.js';

function etcdConfig(endpoints: readonly string[], prefix: string, callTimeoutMs = 3_000): Config['etcd'] {
  return { endpoints, prefix, username: '', password: '', passwordFile: '', caFile: '', certFile: '', keyFile: '', callTimeoutMs };
}

function storeOn(client: Etcd3, prefix: string, clock: Clock, metrics: StateMetrics): EtcdStateStore {
  return new EtcdStateStore({ client, keys: new KeyLayout(prefix), clock, metrics, logger: silentLogger() });
}

/** Puts `alive/<host>` on a lease of `ttlSeconds` and returns the guard on it. */
async function aliveKey(client: Etcd3, keys: KeyLayout, host: string, ttlSeconds: number, keepAlive: boolean) {
  const lease = client.lease(ttlSeconds, { autoKeepAlive: keepAlive });
  lease.on('lost', () => undefined);
  const key = keys.alive(host);
  await lease.put(key).value(JSON.stringify({ incarnation: `${host}:test` }));
  const kv = await client.kv.range({ key: Buffer.from(key) });
  return { lease, key, createRevision: kv.kvs[0]!.create_revision };
}

const factory: StateStoreFactory = async ({ clock, metrics }) => {
  const ctx = useEtcd();
  const client = createEtcdClient(etcdConfig(ctx.endpoints, ctx.prefix));
  const keys = new KeyLayout(ctx.prefix);
  const store = storeOn(client, ctx.prefix, clock, metrics);
  const leases: { revoke(): Promise<void> }[] = [];
  const keyOf = (w: StoredRef): string => (w.kind === 'op' ? keys.op(w.type, w.id) : keys.resource(w.type, w.id));
  return {
    store,
    readStored: async (w) => (await ctx.client.get(keyOf(w)).string()) ?? undefined,
    writeStored: async (w, text) => void (await ctx.client.put(keyOf(w)).value(text)),
    makeFence: async () => {
      const alive = await aliveKey(client, keys, 'node1@rbd', 30, true);
      leases.push(alive.lease);
      let held = true;
      const fence: Fence = { guards: [{ key: alive.key, createRevision: alive.createRevision, expect: 'equal' }], holds: () => held, description: 'alive/node1@rbd' };
      return {
        fence,
        revoke: async () => {
          held = false;
          await alive.lease.revoke();
        },
      };
    },
    close: async () => {
      await store.close();
      await Promise.allSettled(leases.map((l) => l.revoke()));
      client.close();
      await ctx.close();
    },
  };
};
describeStateStore('etcd', factory);
describeSourceHolds('etcd', factory);

describe('EtcdStateStore on a real etcd', () => {
  let ctx: EtcdTestContext;
  let client: Etcd3;
  let keys: KeyLayout;
  let store: EtcdStateStore;

  beforeAll(() => {
    ctx = useEtcd();
    client = createEtcdClient(etcdConfig(ctx.endpoints, ctx.prefix));
    keys = new KeyLayout(ctx.prefix);
    store = storeOn(client, ctx.prefix, systemClock, createStateMetrics(new Registry()));
  });
  afterAll(async () => {
    await store.close();
    client.close();
    await ctx.close();
  });

  async function deletingVolume(s: EtcdStateStore = store): Promise<VolumeRecord> {
    const created = await s.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
    if (!created.ok) throw new Error('create failed');
    const ref = { type: 'volume' as const, id: created.record.id };
    await s.transition(ref, { expect: { status: 'creating' }, set: { status: 'available' }, op: 'remove', by: 'worker' });
    const deleting = await s.transition(ref, { expect: { status: 'available' }, set: { status: 'deleting' }, op: { create: { kind: 'delete_volume' } }, by: 'api' });
    if (!deleting.ok) throw new Error('delete failed');
    return deleting.record;
  }

  it('stores records under resources/<type>/<id> and ops under ops/<type>/<id>', async () => {
    const vol = await deletingVolume();
    const record = JSON.parse((await ctx.client.get(keys.resource('volume', vol.id)).string())!) as Record<string, unknown>;
    expect(record).toMatchObject({ id: vol.id, status: 'deleting' });
    expect(record).not.toHaveProperty('revision');
    const op = JSON.parse((await ctx.client.get(keys.op('volume', vol.id)).string())!) as Record<string, unknown>;
    expect(op).toMatchObject({ kind: 'delete_volume', status: 'deleting', owner: null });
  });

  it('a worker whose lease expired cannot write, although it still believes it holds (holds() is true)', async () => {
    const vol = await deletingVolume();
    const ref = { type: 'volume' as const, id: vol.id };
    const alive = await aliveKey(client, keys, 'zombie@rbd', 2, false);
    // The zombie never learns that its lease is gone: its fence predicate keeps saying yes.
    const fence: Fence = { guards: [{ key: alive.key, createRevision: alive.createRevision, expect: 'equal' }], holds: () => true, description: 'alive/zombie@rbd' };
    const claimed = await store.updateOp(ref, { expect: { owner: null }, set: { owner: { host: 'zombie@rbd', incarnation: 'zombie@rbd:test', aliveRevision: alive.createRevision }, attempt: 1 }, fence });
    expect(claimed.ok).toBe(true);
    await waitFor(async () => (await ctx.client.get(alive.key).string()) === null, { timeoutMs: 15_000, intervalMs: 200, what: 'the zombie lease to expire' });
    const err = await store.remove(ref, { expect: { status: 'deleting' }, expectOp: { owner: 'zombie@rbd:test' }, fence, by: 'worker' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FencedError);
    expect((err as FencedError).guard).toContain(`${alive.key} create_revision == ${alive.createRevision} (is 0)`);
    expect(await store.get(ref)).toMatchObject({ status: 'deleting' });
    expect(await ctx.client.get(keys.op('volume', vol.id)).string()).not.toBeNull();
  });

  it('a cleaner can claim an orphan only once the owner\'s alive key is gone (notEqual guard)', async () => {
    const vol = await deletingVolume();
    const ref = { type: 'volume' as const, id: vol.id };
    const owner = await aliveKey(client, keys, 'owner@rbd', 30, true);
    await store.updateOp(ref, { expect: { owner: null }, set: { owner: { host: 'owner@rbd', incarnation: 'owner@rbd:1', aliveRevision: owner.createRevision }, attempt: 1 } });
    const ownerDead: Fence = { guards: [{ key: owner.key, createRevision: owner.createRevision, expect: 'notEqual' }], holds: () => true, description: 'owner@rbd is dead' };
    const claim = () => store.updateOp(ref, { expect: { owner: 'owner@rbd:1' }, set: { owner: { host: 'cleaner@rbd', incarnation: 'cleaner@rbd:1', aliveRevision: '0' }, attempt: 2 }, fence: ownerDead });
    const early = await claim().catch((e: unknown) => e);
    expect(early).toBeInstanceOf(FencedError);
    expect((early as FencedError).guard).toContain(`create_revision != ${owner.createRevision}`);
    await owner.lease.revoke();
    expect(await claim()).toMatchObject({ ok: true, op: { owner: { host: 'cleaner@rbd' }, attempt: 2 } });
  });

  it('re-checks after a lost race without an extra read and reports the condition that no longer holds', async () => {
    const created = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
    if (!created.ok) throw new Error('create failed');
    const other = storeOn(createEtcdClient(etcdConfig(ctx.endpoints, ctx.prefix)), ctx.prefix, systemClock, createStateMetrics(new Registry()));
    const ref = { type: 'volume' as const, id: created.record.id };
    // `store` remembers `creating`; another store completes the creation behind its back.
    expect(await other.transition(ref, { expect: { status: 'creating' }, set: { status: 'available' }, op: 'remove', by: 'worker' })).toMatchObject({ ok: true });
    const stale = await store.transition(ref, { expect: { status: 'creating' }, set: { status: 'error' }, op: 'remove', by: 'worker' });
    expect(stale).toEqual({ ok: false, failed: { field: 'status', expected: 'creating', actual: 'available' } });
    const fresh = await store.transition(ref, { expect: { status: 'available' }, set: { name: 'seen' }, by: 'api' });
    expect(fresh).toMatchObject({ ok: true, record: { name: 'seen' } });
  });

  it('never refuses on a stale cached state: a refusal is confirmed on a fresh read', async () => {
    const created = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
    if (!created.ok) throw new Error('create failed');
    const other = storeOn(createEtcdClient(etcdConfig(ctx.endpoints, ctx.prefix)), ctx.prefix, systemClock, createStateMetrics(new Registry()));
    const ref = { type: 'volume' as const, id: created.record.id };
    // `store` remembers the volume creating with its op; a worker (another store) finishes it.
    expect(await other.transition(ref, { expect: { status: 'creating' }, set: { status: 'available' }, op: 'remove', by: 'worker' })).toMatchObject({ ok: true });
    // The API reads the volume (fresh), but its cache still holds the op it created: an extend
    // decided on that alone would be refused with "an operation in progress".
    expect(await store.get(ref)).toMatchObject({ status: 'available' });
    const extend = await store.transition(ref, { expect: { status: 'available' }, set: { status: 'extending' }, op: { create: { kind: 'extend_volume' } }, by: 'api' });
    expect(extend).toMatchObject({ ok: true, record: { status: 'extending' }, op: { kind: 'extend_volume' } });
    // A refusal that holds on a fresh read is still a refusal.
    expect(await store.updateOp(ref, { expect: { owner: 'nobody' }, set: { attempt: 5 } })).toEqual({ ok: false, failed: { field: 'op.owner', expected: 'nobody', actual: null } });
  });

  it('a claim that assumes the op as its job carried it costs one transaction and no read, in a store that never saw it', async () => {
    const created = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
    if (!created.ok || !created.op || created.stored === undefined) throw new Error('create failed');
    const worker = createEtcdClient(etcdConfig(ctx.endpoints, ctx.prefix));
    const calls: string[] = [];
    // Counting, not faking: every call still goes to etcd.
    for (const method of ['range', 'txn'] as const) {
      const real = worker.kv[method].bind(worker.kv) as (...args: unknown[]) => Promise<unknown>;
      (worker.kv as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => (calls.push(method), real(...args));
    }
    const fresh = storeOn(worker, ctx.prefix, systemClock, createStateMetrics(new Registry()));
    const ref = { type: 'volume' as const, id: created.record.id };
    const claim = await fresh.updateOp(ref, { expect: { opId: created.op.opId, owner: null, attempt: 0 }, set: { owner: { host: 'w@rbd', incarnation: 'w@rbd:1', aliveRevision: '0' }, attempt: 1 }, assume: created.stored, withRecord: true });
    expect(claim).toMatchObject({ ok: true, op: { attempt: 1 }, record: { id: ref.id, status: 'creating' } });
    expect(calls).toEqual(['txn']);
    // The record the claim read is the store's now: the final write needs no read either.
    const done = await fresh.transition(ref, { expect: { status: 'creating' }, expectOp: { owner: 'w@rbd:1' }, set: { status: 'available' }, op: 'remove', by: 'worker' });
    expect(done).toMatchObject({ ok: true, record: { status: 'available' }, op: null });
    expect(calls).toEqual(['txn', 'txn']);
    await fresh.close();
    worker.close();
  });

  it('trusts a carried op byte for byte: a token with the right revision but other content never writes that content', async () => {
    const created = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume', params: { size: 1 } } });
    if (!created.ok || !created.op || created.stored === undefined) throw new Error('create failed');
    const forged = created.stored.replace('"size":1', '"size":999') as typeof created.stored;
    expect(forged).not.toBe(created.stored);
    expect(store.opOfStored(forged)).toMatchObject({ params: { size: 999 } });
    const ref = { type: 'volume' as const, id: created.record.id };
    const claim = await store.updateOp(ref, { expect: { opId: created.op.opId, owner: null, attempt: 0 }, set: { owner: { host: 'w@rbd', incarnation: 'w@rbd:1', aliveRevision: '0' }, attempt: 1 }, assume: forged });
    // The compare on the content failed; the store read the real op and claimed that.
    expect(claim).toMatchObject({ ok: true, op: { params: { size: 1 }, attempt: 1 } });
    const stored = JSON.parse((await ctx.client.get(keys.op('volume', ref.id)).string())!) as { params: unknown };
    expect(stored.params).toEqual({ size: 1 });
  });

  it('deletes the key of a guard that asks to be released with the write — only when the write lands', async () => {
    const vol = await deletingVolume();
    const ref = { type: 'volume' as const, id: vol.id };
    const lockKey = `${ctx.prefix}/locks/${vol.id}-delete_volume/abc`;
    await ctx.client.put(lockKey).value('w@rbd:1');
    const createRevision = (await ctx.client.kv.range({ key: Buffer.from(lockKey) })).kvs[0]!.create_revision;
    const fence: Fence = { guards: [{ key: lockKey, createRevision, expect: 'equal', releaseWithWrite: true }], holds: () => true, description: 'lock' };
    const refused = await store.remove(ref, { expect: { status: 'available' }, by: 'worker', fence });
    expect(refused).toMatchObject({ ok: false, failed: { field: 'status' } });
    expect(await ctx.client.get(lockKey).string()).toBe('w@rbd:1');
    expect(await store.remove(ref, { expect: { status: 'deleting' }, by: 'worker', fence })).toMatchObject({ ok: true });
    expect(await ctx.client.get(lockKey).string()).toBeNull();
    expect(await store.get(ref)).toBeUndefined();
  });

  it('a mod-revision guard holds while its key is unchanged (the admission of a create rides in it)', async () => {
    const clusterKey = `${ctx.prefix}/clusters/guarded@rbd`;
    await ctx.client.put(clusterKey).value('{"disabled":false}');
    const modRevision = (await ctx.client.kv.range({ key: Buffer.from(clusterKey) })).kvs[0]!.mod_revision;
    const fence: Fence = { guards: [{ key: clusterKey, modRevision, expect: 'equal' }], holds: () => true, description: 'cluster unchanged' };
    expect(await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' }, fence })).toMatchObject({ ok: true });
    await ctx.client.put(clusterKey).value('{"disabled":true}');
    const volume = newVolume();
    const err = await store.create('volume', { record: volume, op: { kind: 'create_volume' }, fence }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FencedError);
    expect((err as FencedError).guard).toContain(`${clusterKey} mod_revision == ${modRevision} (is `);
    expect(await store.get({ type: 'volume', id: volume.id })).toBeUndefined();
  });

  describe('writes whose answer is lost', () => {
    let proxy: LossyProxy;
    let lossy: Etcd3;
    let lossyStore: EtcdStateStore;

    beforeAll(async () => {
      proxy = await LossyProxy.start(Number(new URL(ctx.endpoints[0]!).port));
      lossy = createEtcdClient(etcdConfig([proxy.url], ctx.prefix, 1_000));
      lossyStore = new EtcdStateStore({ client: lossy, keys, clock: systemClock, metrics: createStateMetrics(new Registry()), logger: silentLogger(), historyTimeoutMs: 2_000 });
    });
    afterAll(async () => {
      await lossyStore.close();
      lossy.close();
      await proxy.close();
    });

    async function versionOf(id: string): Promise<{ version: number; mod: string; value: Record<string, unknown> }> {
      const res = await ctx.client.kv.range({ key: Buffer.from(keys.resource('volume', id)) });
      const kv = res.kvs[0]!;
      return { version: Number(kv.version), mod: kv.mod_revision, value: JSON.parse(kv.value.toString()) as Record<string, unknown> };
    }

    it('reconciles a write that landed: success, exactly one write', async () => {
      proxy.mode = 'forward';
      const vol = await deletingVolume(lossyStore);
      const before = await versionOf(vol.id);
      proxy.mode = 'drop-replies';
      const pending = lossyStore.transition({ type: 'volume', id: vol.id }, { expect: { status: 'deleting' }, set: { host: 'node1@rbd' }, by: 'worker' });
      await waitFor(async () => (await versionOf(vol.id)).value.host === 'node1@rbd', { timeoutMs: 5_000, what: 'the write to reach etcd' });
      proxy.mode = 'forward';
      proxy.resetAll();
      const result = await pending;
      const after = await versionOf(vol.id);
      expect(result).toMatchObject({ ok: true, revision: after.mod, record: { host: 'node1@rbd' } });
      expect(after.version).toBe(before.version + 1);
    });

    it('re-sends a write that never arrived only after a re-read shows it did not land', async () => {
      proxy.mode = 'forward';
      const vol = await deletingVolume(lossyStore);
      const before = await versionOf(vol.id);
      const dropped = proxy.dropped.requests;
      proxy.mode = 'drop-requests';
      const pending = lossyStore.transition({ type: 'volume', id: vol.id }, { expect: { status: 'deleting' }, set: { host: 'node2@rbd' }, by: 'worker' });
      await waitFor(() => proxy.dropped.requests > dropped, { timeoutMs: 5_000, what: 'the request to be dropped' });
      expect((await versionOf(vol.id)).version).toBe(before.version);
      proxy.mode = 'forward';
      proxy.resetAll();
      const result = await pending;
      const after = await versionOf(vol.id);
      expect(result).toMatchObject({ ok: true, revision: after.mod, record: { host: 'node2@rbd' } });
      expect(after.version).toBe(before.version + 1);
    });

    it('throws a retryable OUTCOME_UNKNOWN when etcd cannot be read to reconcile', async () => {
      proxy.mode = 'forward';
      const vol = await deletingVolume(lossyStore);
      proxy.mode = 'drop-replies';
      const err = await lossyStore.transition({ type: 'volume', id: vol.id }, { expect: { status: 'deleting' }, set: { host: 'node3@rbd' }, by: 'worker' }).catch((e: unknown) => e);
      proxy.mode = 'forward';
      proxy.resetAll();
      expect(err).toBeInstanceOf(OutcomeUnknownError);
      expect(err).toMatchObject({ code: 'OUTCOME_UNKNOWN', retryable: true });
      // The write did reach etcd: the error told the truth that it may have landed.
      expect((await versionOf(vol.id)).value.host).toBe('node3@rbd');
      expect(await lossyStore.get({ type: 'volume', id: vol.id })).toMatchObject({ host: 'node3@rbd' });
    });
  });
});
