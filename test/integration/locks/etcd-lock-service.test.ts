import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type WaitOutcome, waitForDelete } from '../../../src/locks/etcd-lock-wait.js';
import { guardCompare } from '../../../src/etcd/guards.js';
import { type LockHandle, LockTimeoutError } from '../../../src/locks/lock-service.js';
import { useEtcd, type EtcdTestContext } from '../../support/context.js';
import { ManagedProcess } from '../../support/process.js';
import { requireBinary } from '../../support/binaries.js';
import { waitFor } from '../../support/wait.js';
import { recordCalls, startWorker, waitQueued, type Worker } from './fixtures.js';
import { tmpdir } from 'node:os';

describe('etcd lock service', () => {
  let ctx: EtcdTestContext;
  let workers: Worker[] = [];
  const worker = async (host?: string): Promise<Worker> => {
    const w = await startWorker({ endpoints: ctx.endpoints, prefix: ctx.prefix, ...(host ? { host } : {}) });
    workers.push(w);
    return w;
  };
  beforeAll(() => {
    ctx = useEtcd();
  });
  afterEach(async () => {
    await Promise.all(workers.map((w) => w.close()));
    workers = [];
  });
  afterAll(() => ctx.close());

  it('serves 20 waiters in the order they arrived', async () => {
    const holder = await worker();
    const held = await holder.locks.acquire('fifo20');
    const order: number[] = [];
    const done: Promise<void>[] = [];
    for (let i = 0; i < 20; i++) {
      const w = await worker();
      done.push(
        w.locks.acquire('fifo20', { timeoutMs: 60_000 }).then(async (h) => {
          order.push(i);
          await h.release();
        }),
      );
      await waitQueued(ctx.client, ctx.prefix, 'fifo20', i + 2);
    }
    await held.release();
    await Promise.all(done);
    expect(order).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('uncontended acquire + release is two transactions; each waiter watches only its predecessor; the owner\'s successor takes over on its deletion alone, a later waiter reads the queue once', async () => {
    const [h, a, b, c] = await Promise.all([worker(), worker(), worker(), worker()]);
    const solo = recordCalls(h.client);
    await (await h.locks.acquire('alone')).release();
    expect(solo).toEqual({ txns: 2, ranges: 0, watched: [] });
    const held = await h.locks.acquire('line');
    const waiters = { a, b, c };
    const calls = { a: recordCalls(a.client), b: recordCalls(b.client), c: recordCalls(c.client) };
    const keyOf = (w: Worker): string => `${ctx.prefix}/locks/line/${w.session.leaseHex}`;
    const order: string[] = [];
    const taken: Promise<LockHandle>[] = [];
    for (const [n, w] of Object.entries(waiters)) {
      taken.push(
        w.locks.acquire('line', { timeoutMs: 30_000 }).then((x) => {
          order.push(n);
          return x;
        }),
      );
      await waitQueued(ctx.client, ctx.prefix, 'line', taken.length + 1);
    }
    // Queued: one enqueue each, one watch on the predecessor, and that watch's one read of its key.
    await waitFor(() => Object.values(calls).every((x) => x.ranges === 1), { timeoutMs: 5_000, what: 'the watches to be checked' });
    expect(calls).toEqual({
      a: { txns: 1, ranges: 1, watched: [held.key] },
      b: { txns: 1, ranges: 1, watched: [keyOf(a)] },
      c: { txns: 1, ranges: 1, watched: [keyOf(b)] },
    });
    const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 200));
    // Each release wakes its successor alone. a queued behind the owner itself, so the owner's
    // deletion makes the lock a's with no further read; b and c queued behind waiters (keys
    // below theirs might have remained), so each reads the queue once when woken.
    await held.release();
    const ha = await taken[0]!;
    await settle();
    expect([calls.a.txns, calls.b.txns, calls.c.txns]).toEqual([1, 1, 1]);
    await ha.release();
    const hb = await taken[1]!;
    await settle();
    expect([calls.a.txns, calls.b.txns, calls.c.txns]).toEqual([2, 2, 1]);
    await hb.release();
    await (await taken[2]!).release();
    expect(order).toEqual(['a', 'b', 'c']);
    expect(Object.values(calls).map((x) => [x.txns, x.ranges, x.watched.length])).toEqual([[2, 1, 1], [3, 1, 1], [3, 1, 1]]);
  });

  it('a waiter that gives up in the middle of the queue lets nobody jump the holder, and order holds', async () => {
    const [h, a, b, c] = await Promise.all([worker(), worker(), worker(), worker()]);
    const held = await h.locks.acquire('middle');
    const order: string[] = [];
    const gaveUp = a.locks.acquire('middle', { timeoutMs: 600 }).catch((e: unknown) => e);
    await waitQueued(ctx.client, ctx.prefix, 'middle', 2);
    const bDone = b.locks.acquire('middle', { timeoutMs: 30_000 }).then(async (x) => {
      order.push('b');
      await x.release();
    });
    await waitQueued(ctx.client, ctx.prefix, 'middle', 3);
    const cDone = c.locks.acquire('middle', { timeoutMs: 30_000 }).then(async (x) => {
      order.push('c');
      await x.release();
    });
    await waitQueued(ctx.client, ctx.prefix, 'middle', 4);
    expect(await gaveUp).toBeInstanceOf(LockTimeoutError);
    // a's key is gone: b's predecessor. b re-reads the queue, finds h below it and watches h;
    // nobody may take the lock while h still holds it.
    await waitFor(async () => (await ctx.client.getAll().prefix(`${ctx.prefix}/locks/middle/`).keys()).length === 3, { timeoutMs: 5_000 });
    await new Promise((r) => setTimeout(r, 300));
    expect(order).toEqual([]);
    expect(held.state).toBe('held');
    await held.release();
    await Promise.all([bDone, cDone]);
    expect(order).toEqual(['b', 'c']);
  });

  it('8 workers re-queueing on one name as fast as they can: every round completes, never two holders', async () => {
    // Each worker re-queues under the same key name right after releasing, so a waiter's
    // predecessor key is deleted and created again by the same session (the deterministic
    // check of that case is the waitForDelete test below).
    const all = await Promise.all(Array.from({ length: 8 }, () => worker()));
    let inside = 0;
    let overlaps = 0;
    const rounds = all.map(() => 0);
    await Promise.all(
      all.map(async (w, i) => {
        for (let r = 0; r < 40; r++) {
          const handle = await w.locks.acquire('hammered', { timeoutMs: 10_000 });
          inside++;
          if (inside > 1) overlaps++;
          await new Promise((resolve) => setImmediate(resolve));
          inside--;
          rounds[i]!++;
          await handle.release();
        }
      }),
    );
    expect(rounds).toEqual(all.map(() => 40));
    expect(overlaps).toBe(0);
  });

  it('writes <prefix>/locks/<name>/<leaseHex> with the incarnation as value, on the session lease', async () => {
    const w = await worker('node7@rbd');
    const handle = await w.locks.acquire('vol-9-delete_volume');
    expect(handle.key).toBe(`${ctx.prefix}/locks/vol-9-delete_volume/${w.session.leaseHex}`);
    const kvs = await ctx.client.getAll().prefix(`${ctx.prefix}/locks/vol-9-delete_volume/`).exec();
    expect(kvs.kvs).toHaveLength(1);
    expect(kvs.kvs[0]?.value.toString()).toBe(`node7@rbd:${w.session.leaseHex}`);
    expect(kvs.kvs[0]?.lease).toBe(w.session.leaseId);
    expect(kvs.kvs[0]?.create_revision).toBe(handle.createRevision);
    await handle.release();
    expect(await ctx.client.getAll().prefix(`${ctx.prefix}/locks/vol-9-delete_volume/`).keys()).toEqual([]);
  });

  it('a timeout names the holder by incarnation and lease', async () => {
    const a = await worker('holder@rbd');
    const b = await worker();
    const held = await a.locks.acquire('named');
    const err = (await b.locks.acquire('named', { timeoutMs: 200 }).catch((e: unknown) => e)) as LockTimeoutError;
    expect(err).toBeInstanceOf(LockTimeoutError);
    expect(err.holder).toEqual({ key: held.key, leaseHex: a.session.leaseHex, incarnation: a.session.incarnation });
    expect(err.message).toContain(`holder@rbd:${a.session.leaseHex}`);
    await held.release();
  });

  it('1000 acquisitions ride on the one session lease: no lease is created or leaked', async () => {
    const w = await worker();
    const leasesBefore = new Set((await ctx.client.leaseClient.leaseLeases()).leases.map((l) => l.ID));
    expect(leasesBefore.has(w.session.leaseId)).toBe(true);
    for (let i = 0; i < 1_000; i++) {
      const handle = await w.locks.acquire(`many-${i % 10}`);
      await handle.release();
    }
    const leasesAfter = (await ctx.client.leaseClient.leaseLeases()).leases.map((l) => l.ID);
    expect(leasesAfter.filter((id) => !leasesBefore.has(id))).toEqual([]);
    expect(leasesAfter).toContain(w.session.leaseId);
    expect(await ctx.client.getAll().prefix(`${ctx.prefix}/locks/`).keys()).toEqual([]);
  });

  it('fence: a transaction embedding the guard commits while the lock is held and fails once it is gone', async () => {
    const w = await worker();
    const handle = await w.locks.acquire('fenced');
    const record = `${ctx.prefix}/resources/volume/v1`;
    const guardedPut = async (value: string): Promise<boolean> => {
      const put = { request_put: { key: Buffer.from(record), value: Buffer.from(value) } };
      return (await ctx.client.kv.txn({ compare: handle.fence.guards.map(guardCompare), success: [put], failure: [] })).succeeded;
    };
    expect(await guardedPut('under lock')).toBe(true);
    await handle.release();
    expect(handle.fence.holds()).toBe(false);
    expect(await guardedPut('after release')).toBe(false);
    // Re-acquired by the same session: a new create revision, so the old fence stays dead.
    const again = await w.locks.acquire('fenced');
    expect(again.createRevision).not.toBe(handle.createRevision);
    expect(await guardedPut('stale fence')).toBe(false);
    await again.release();
    expect(await ctx.client.get(record).string()).toBe('under lock');
  });

  it('session close() revokes the lease: every lock key vanishes at once', async () => {
    const w = await worker();
    await w.locks.acquire('close-a');
    await w.locks.acquire('close-b');
    expect(await ctx.client.getAll().prefix(`${ctx.prefix}/locks/`).keys()).toHaveLength(2);
    await w.session.close();
    expect(await ctx.client.getAll().prefix(`${ctx.prefix}/locks/`).keys()).toEqual([]);
    const ttl = await ctx.client.leaseClient.leaseTimeToLive({ ID: w.session.leaseId });
    expect(ttl.TTL).toBe('-1');
  });

  it('waiting for a deletion: a key already gone (or re-created) ends the wait at once; a live one ends on its DELETE', async () => {
    const wait = (key: string, createRevision: string): Promise<WaitOutcome> =>
      waitForDelete(ctx.client, { key, createRevision }, AbortSignal.timeout(10_000), 2_000);
    expect(await wait(`${ctx.prefix}/never-there`, '5')).toBe('deleted');
    // Deleted and created again under the same name (a session re-queued): that entry is gone too.
    const reused = `${ctx.prefix}/reused`;
    const old = await ctx.client.put(reused).value('1').exec();
    await ctx.client.delete().key(reused);
    await ctx.client.put(reused).value('2');
    expect(await wait(reused, old.header.revision)).toBe('deleted');
    const key = `${ctx.prefix}/present`;
    const put = await ctx.client.put(key).value('x').exec();
    let outcome: WaitOutcome | undefined;
    const waiting = wait(key, put.header.revision).then((o) => (outcome = o));
    await new Promise((r) => setTimeout(r, 300));
    expect(outcome).toBeUndefined();
    await ctx.client.put(`${ctx.prefix}/other`).value('y'); // a write on another key does not wake it
    await new Promise((r) => setTimeout(r, 100));
    expect(outcome).toBeUndefined();
    await ctx.client.delete().key(key);
    await waiting;
    expect(outcome).toBe('deleted');
  });

  describe('interoperates with etcdctl lock (Debian etcd-client)', () => {
    const etcdctl = (name: string, args: string[]): ManagedProcess => {
      requireBinary('etcdctl', 'etcd-client');
      return ManagedProcess.start({
        command: 'etcdctl',
        args: ['--endpoints', ctx.endpoints.join(','), 'lock', `${ctx.prefix}/locks/${name}`, ...args],
        env: { ...process.env, ETCDCTL_API: '3' },
        logDir: tmpdir(),
        name: `etcdctl-${name}-${Date.now()}`,
      });
    };

    it('hearth waits while etcdctl holds the lock', async () => {
      const holder = etcdctl('ctl-first', []);
      try {
        await waitFor(() => holder.output().includes(`${ctx.prefix}/locks/ctl-first/`), { timeoutMs: 10_000, what: 'etcdctl to hold the lock' });
        const w = await worker();
        const attempt = await w.locks.tryAcquire('ctl-first');
        expect(attempt.ok).toBe(false);
        if (!attempt.ok) expect(attempt.holder?.incarnation).toBeUndefined();
        let acquiredAt = 0;
        const waiting = w.locks.acquire('ctl-first', { timeoutMs: 20_000 }).then((h) => {
          acquiredAt = Date.now();
          return h;
        });
        await waitQueued(ctx.client, ctx.prefix, 'ctl-first', 2);
        await new Promise((r) => setTimeout(r, 200));
        expect(acquiredAt).toBe(0);
        const releasedAt = Date.now();
        await holder.stop();
        const handle = await waiting;
        expect(acquiredAt).toBeGreaterThanOrEqual(releasedAt);
        await handle.release();
      } finally {
        await holder.stop();
      }
    });

    it('etcdctl waits while hearth holds the lock', async () => {
      const w = await worker();
      const handle = await w.locks.acquire('hearth-first');
      const ctl = etcdctl('hearth-first', ['--', 'sh', '-c', 'echo "etcdctl got $ETCD_LOCK_KEY"']);
      try {
        await waitQueued(ctx.client, ctx.prefix, 'hearth-first', 2);
        await new Promise((r) => setTimeout(r, 300));
        expect(ctl.alive).toBe(true);
        expect(ctl.output()).not.toContain('etcdctl got');
        await handle.release();
        const exit = await ctl.waitForExit();
        expect(exit.code).toBe(0);
        expect(ctl.output()).toContain(`etcdctl got ${ctx.prefix}/locks/hearth-first/`);
      } finally {
        await ctl.stop();
      }
    });
  });
});
