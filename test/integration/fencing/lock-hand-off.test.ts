// The lock hand-off gate on real etcd: a lock whose holder released it while alive passes on at
// once; one whose holder died (its lease went without a leave) is granted only after the dead
// incarnation's end is on record.
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { fenceGates } from '../../../src/fencing/gates.js';
import type { DeadIncarnation } from '../../../src/fencing/runner.js';
import { VOLUME_BINARY } from '../../../src/identity.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { Backoff } from '../../../src/lifecycle/retry.js';
import { EtcdLockService } from '../../../src/locks/etcd-lock-service.js';
import { EtcdMembership } from '../../../src/membership/etcd-membership.js';
import type { Member } from '../../../src/membership/membership.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { type EtcdTestContext, useEtcd } from '../../support/context.js';
import { etcdConfig } from '../../support/etcd-membership-helpers.js';
import { TestSession } from '../../support/test-session.js';
import { waitFor } from '../../support/wait.js';

const TTL_MS = 2_000;

describe('lock hand-off gate (etcd)', () => {
  let ctx: EtcdTestContext;
  let client: Etcd3;
  let keys: KeyLayout;
  let membership: EtcdMembership;
  const closers: (() => Promise<void>)[] = [];

  beforeAll(() => {
    ctx = useEtcd();
    keys = new KeyLayout(ctx.prefix);
    client = createEtcdClient(etcdConfig(ctx.endpoints, ctx.prefix));
    membership = new EtcdMembership({ client, keys, clock: systemClock, logger: silentLogger(), retry: Backoff.constant(100) });
  });
  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    await membership.close();
    client.close();
    await ctx.close();
  });

  /** A member with a session (kept alive unless `keepAlive` is false) and its lock service; `needs` records fence requests of its gate. */
  async function member(host: string, keepAlive = true) {
    const session = await TestSession.etcd(ctx.client, host, TTL_MS, keepAlive);
    const me: Member = await membership.join({ identity: { cluster: 'c1@be', host, zone: 'nova' }, binary: VOLUME_BINARY, version: '1', session });
    const needs: DeadIncarnation[] = [];
    const gates = fenceGates({ membership, runner: { need: async (dead) => void needs.push(dead) }, logger: silentLogger() });
    const locks = new EtcdLockService({ client, keys, session, callTimeoutMs: 2_000, handOff: (previous, signal) => gates.handOff(previous, signal) });
    closers.push(async () => {
      await locks.close();
      await session.close();
    });
    return { session, me, locks, needs };
  }

  it('a lock released by a live holder passes on at once, with no fence asked for', async () => {
    const a = await member('a1@be');
    const b = await member('b1@be');
    const held = await a.locks.acquire('vol-1-delete_volume');
    const waiting = b.locks.acquire('vol-1-delete_volume', { timeoutMs: 10_000 });
    await waitFor(async () => (await ctx.client.getAll().prefix(`${ctx.prefix}/locks/vol-1-delete_volume/`).keys()).length === 2, { what: 'b queued' });
    await held.release();
    const mine = await waiting;
    expect(b.needs).toEqual([]);
    // No hand-off mark: the key is as the waiter created it.
    const key = (await ctx.client.get(mine.key).exec()).kvs[0];
    expect(key?.version).toBe('1');
    await mine.release();
  });

  it('a lock whose holder died waits for the fence: granted only once the end is on record, and marked after it', async () => {
    // The holder's lease is not kept alive: it expires after the TTL, as a killed process's does.
    const a = await member('a2@be', false);
    const b = await member('b2@be');
    await a.locks.acquire('vol-2-delete_volume');
    let granted = false;
    const waiting = b.locks.acquire('vol-2-delete_volume', { timeoutMs: 30_000 }).then((h) => {
      granted = true;
      return h;
    });
    // The holder's key goes with its lease; the waiter reaches the gate and asks for the fence.
    await waitFor(async () => b.needs.length === 1, { timeoutMs: TTL_MS + 10_000, what: 'the gate to ask for the fence' });
    expect(b.needs[0]).toMatchObject({ incarnation: a.me.owner.incarnation, host: 'a2@be', cluster: 'c1@be' });
    expect(await ctx.client.getAll().prefix(`${ctx.prefix}/locks/vol-2-delete_volume/`).keys()).toHaveLength(1);
    // It holds no lock meanwhile, however long that takes: a round trip to etcd later, still waiting.
    await membership.incarnation(a.me.owner.incarnation);
    expect(granted).toBe(false);

    const recorded = await membership.recordEnd({ incarnation: a.me.owner.incarnation, host: 'a2@be', how: 'exec', by: b.me.owner.incarnation, atMs: Date.now(), detail: 'test' });
    expect(recorded.ok).toBe(true);
    const handle = await waiting;
    expect(handle.state).toBe('held');
    expect(b.needs).toHaveLength(1);
    // The hand-off mark: the new owner's key was rewritten after the end record, as etcd's revisions show.
    const [end, mark] = await Promise.all([ctx.client.get(`${ctx.prefix}/fenced/${a.me.owner.incarnation}`).exec(), ctx.client.get(handle.key).exec()]);
    expect(mark.kvs[0]?.version).toBe('2');
    expect(BigInt(mark.kvs[0]?.mod_revision ?? '0')).toBeGreaterThan(BigInt(end.kvs[0]?.create_revision ?? 'x'));
    expect(mark.kvs[0]?.value.toString()).toBe(b.me.owner.incarnation);
    await handle.release();
  });

  it('a waiter third in line whose predecessor took the lock and then died waits for that one’s fence, not the first owner’s', async () => {
    // a holds and releases while alive; b (its lease not kept alive) takes the lock over and dies holding it; c was queued behind b all along.
    const a = await member('a3@be');
    const b = await member('b3@be', false);
    const c = await member('c3@be');
    const name = 'vol-3-delete_volume';
    const held = await a.locks.acquire(name);
    const bWaits = b.locks.acquire(name, { timeoutMs: 10_000 });
    await waitFor(async () => (await ctx.client.getAll().prefix(`${ctx.prefix}/locks/${name}/`).keys()).length === 2, { what: 'b queued' });
    let granted = false;
    const cWaits = c.locks.acquire(name, { timeoutMs: 30_000 }).then((h) => {
      granted = true;
      return h;
    });
    await waitFor(async () => (await ctx.client.getAll().prefix(`${ctx.prefix}/locks/${name}/`).keys()).length === 3, { what: 'c queued' });
    await held.release();
    await bWaits;
    expect(b.needs).toEqual([]);
    // b's key goes with its lease: c, next in line, must wait for b's fence.
    await waitFor(async () => c.needs.length === 1, { timeoutMs: TTL_MS + 10_000, what: 'c’s gate to ask for b’s fence' });
    expect(c.needs[0]).toMatchObject({ incarnation: b.me.owner.incarnation });
    await membership.incarnation(b.me.owner.incarnation);
    expect(granted).toBe(false);
    await membership.recordEnd({ incarnation: b.me.owner.incarnation, host: 'b3@be', how: 'exec', by: c.me.owner.incarnation, atMs: Date.now(), detail: 'test' });
    const handle = await cWaits;
    const [end, mark] = await Promise.all([ctx.client.get(`${ctx.prefix}/fenced/${b.me.owner.incarnation}`).exec(), ctx.client.get(handle.key).exec()]);
    expect(mark.kvs[0]?.version).toBe('2');
    expect(BigInt(mark.kvs[0]?.mod_revision ?? '0')).toBeGreaterThan(BigInt(end.kvs[0]?.create_revision ?? 'x'));
    await handle.release();
  });
});
