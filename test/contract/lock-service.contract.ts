import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClosedError, CoordinatorError, InvalidInputError } from '../../src/errors.js';
import type { Fence } from '../../src/fence.js';
import { type LockHandle, type LockService, LockTimeoutError, tryLockAll } from '../../src/locks/lock-service.js';

/** What the contract needs from one adapter. */
export interface LockServiceFixture {
  /**
   * A lock service for one more contender. etcd: a new session and service each time (another
   * worker); single node: the one in-process service (contenders are callers of it).
   */
  contender(): Promise<LockService>;
  /** Waits until `count` contenders hold or wait for `name` (so arrival order is known). */
  queued(name: string, count: number): Promise<void>;
  /**
   * Commits a write that carries `fence`, as a store write would: etcd, one transaction with its
   * guards as compares that deletes the keys of guards marked `releaseWithWrite`; single node,
   * its `holds()`. Resolves with whether it landed.
   */
  commit(fence: Fence): Promise<boolean>;
  /** Ends everything the fixture made. */
  close(): Promise<void>;
}

/**
 * A second acquisition of a lock `first` holds, with the state `first` was in at the moment the
 * second was granted: exclusion is checked at the event itself, not by waiting a while to see
 * that nothing happened.
 */
function grantAfter(first: LockHandle, acquiring: Promise<LockHandle>): Promise<{ readonly handle: LockHandle; readonly firstStateAtGrant: string }> {
  return acquiring.then((handle) => ({ handle, firstStateAtGrant: first.state }));
}

/**
 * The LockService contract. Every adapter runs it; `distributed` says what the adapter must
 * declare (and whether its fence carries etcd guards).
 */
export function lockServiceContract(adapter: string, distributed: boolean, makeFixture: () => Promise<LockServiceFixture>): void {
  describe(`LockService contract: ${adapter}`, () => {
    let fx: LockServiceFixture;
    let a: LockService;
    let b: LockService;
    beforeEach(async () => {
      fx = await makeFixture();
      a = await fx.contender();
      b = await fx.contender();
    });
    afterEach(async () => {
      await fx.close();
    });

    it(`declares distributed: ${distributed}`, () => {
      expect(a.distributed).toBe(distributed);
    });

    it('acquires a held, fenced handle and releases it idempotently', async () => {
      const handle = await a.acquire('vol-1-delete_volume');
      expect(handle.name).toBe('vol-1-delete_volume');
      expect(handle.key).toContain('locks/vol-1-delete_volume');
      expect(handle.createRevision).toMatch(/^[1-9]\d*$/);
      expect(handle.state).toBe('held');
      expect(handle.signal.aborted).toBe(false);
      expect(handle.fence.holds()).toBe(true);
      expect(handle.fence.guards).toEqual(
        distributed ? [{ key: handle.key, createRevision: handle.createRevision, expect: 'equal' }] : [],
      );
      expect(handle.fence.description).toContain('vol-1-delete_volume');
      const changes: string[] = [];
      handle.onStateChange((c) => changes.push(`${c.previous}->${c.state}`));
      await handle.release();
      expect(handle.state).toBe('released');
      expect(handle.signal.aborted).toBe(true);
      expect(handle.fence.holds()).toBe(false);
      expect(changes).toEqual(['held->released']);
      await handle.release();
      expect(handle.state).toBe('released');
      // Released for real: another contender gets it at once.
      const again = await b.tryAcquire('vol-1-delete_volume');
      expect(again.ok).toBe(true);
      if (again.ok) await again.handle.release();
    });

    it('fencing tokens grow with every grant of the same name', async () => {
      const first = await a.acquire('n');
      await first.release();
      const second = await b.acquire('n');
      await second.release();
      expect(BigInt(second.createRevision)).toBeGreaterThan(BigInt(first.createRevision));
    });

    it('excludes: a second contender waits until the holder releases', async () => {
      const held = await a.acquire('x');
      const waiting = grantAfter(held, b.acquire('x', { timeoutMs: 20_000 }));
      await fx.queued('x', 2);
      await held.release();
      const next = await waiting;
      expect(next.firstStateAtGrant).toBe('released');
      expect(next.handle.state).toBe('held');
      await next.handle.release();
    });

    it('excludes two callers of one service too (one key per session must not mean two holders)', async () => {
      const held = await a.acquire('same');
      const waiting = grantAfter(held, a.acquire('same', { timeoutMs: 20_000 }));
      await held.release();
      const next = await waiting;
      expect(next.firstStateAtGrant).toBe('released');
      expect(next.handle.createRevision).not.toBe(held.createRevision);
      await next.handle.release();
    });

    it('serves waiters in arrival order', async () => {
      const holder = await (await fx.contender()).acquire('fifo');
      const contenders = [a, b, await fx.contender(), await fx.contender()];
      const order: number[] = [];
      const waits: Promise<void>[] = [];
      for (const [i, c] of contenders.entries()) {
        waits.push(
          c.acquire('fifo', { timeoutMs: 20_000 }).then(async (h) => {
            order.push(i);
            await h.release();
          }),
        );
        await fx.queued('fifo', i + 2);
      }
      await holder.release();
      await Promise.all(waits);
      expect(order).toEqual([0, 1, 2, 3]);
    });

    it('tryAcquire returns contention as a value naming the holder', async () => {
      const held = await a.acquire('busy');
      const attempt = await b.tryAcquire('busy');
      expect(attempt.ok).toBe(false);
      if (!attempt.ok) expect(attempt.holder).toBeDefined();
      await held.release();
      const free = await b.tryAcquire('busy');
      expect(free.ok).toBe(true);
      if (free.ok) await free.handle.release();
    });

    it('times out with LockTimeoutError naming the lock, and leaves no queue entry behind', async () => {
      const held = await a.acquire('slow');
      const err = (await b.acquire('slow', { timeoutMs: 300 }).catch((e: unknown) => e)) as LockTimeoutError;
      expect(err).toBeInstanceOf(LockTimeoutError);
      expect(err.code).toBe('LOCK_TIMEOUT');
      expect(err.retryable).toBe(true);
      expect(err.lockName).toBe('slow');
      expect(err.message).toContain('slow');
      expect(err.holder).toBeDefined();
      await held.release();
      // b's abandoned entry must not block the next contender.
      const next = await b.acquire('slow', { timeoutMs: 10_000 });
      await next.release();
      const c = await fx.contender();
      const third = await c.tryAcquire('slow');
      expect(third.ok).toBe(true);
      if (third.ok) await third.handle.release();
    });

    it('aborts a wait through its signal, and refuses an aborted signal at once', async () => {
      const held = await a.acquire('abortable');
      const controller = new AbortController();
      const waiting = b.acquire('abortable', { timeoutMs: 20_000, signal: controller.signal });
      await fx.queued('abortable', 2);
      controller.abort(new Error('caller gave up'));
      const err = (await waiting.catch((e: unknown) => e)) as CoordinatorError;
      expect(err).toBeInstanceOf(CoordinatorError);
      expect(err.code).toBe('ABORTED');
      const pre = (await b.acquire('abortable', { signal: controller.signal }).catch((e: unknown) => e)) as CoordinatorError;
      expect(pre.code).toBe('ABORTED');
      await held.release();
      const next = await b.acquire('abortable', { timeoutMs: 10_000 });
      await next.release();
    });

    it('rejects bad names with InvalidInputError (as a rejection, not a throw)', async () => {
      for (const bad of ['', 'a/b', 'x'.repeat(300), 'white space']) {
        const p = a.acquire(bad);
        await expect(p).rejects.toBeInstanceOf(InvalidInputError);
        await expect(a.tryAcquire(bad)).rejects.toBeInstanceOf(InvalidInputError);
      }
    });

    it('withLock sorts and de-duplicates names and hands fn the combined signal and fence', async () => {
      const result = await a.withLock(['b-lock', 'a-lock', 'b-lock'], async (ctx) => {
        expect(ctx.handles.map((h) => h.name)).toEqual(['a-lock', 'b-lock']);
        expect(ctx.signal.aborted).toBe(false);
        expect(ctx.fence.holds()).toBe(true);
        expect(ctx.fence.guards).toHaveLength(distributed ? 2 : 0);
        const busy = await b.tryAcquire('a-lock');
        expect(busy.ok).toBe(false);
        return 42;
      });
      expect(result).toBe(42);
      for (const name of ['a-lock', 'b-lock']) {
        const free = await b.tryAcquire(name);
        expect(free.ok).toBe(true);
        if (free.ok) await free.handle.release();
      }
    });

    it('withLock releases every lock when fn throws, and the signal fires on release', async () => {
      let seen: { signal: AbortSignal; handles: readonly LockHandle[] } | undefined;
      const err = await a
        .withLock(['p', 'q'], async (ctx) => {
          seen = ctx;
          throw new Error('driver failed');
        })
        .catch((e: unknown) => e);
      expect((err as Error).message).toBe('driver failed');
      expect(seen?.signal.aborted).toBe(true);
      expect(seen?.handles.every((h) => h.state === 'released')).toBe(true);
      const free = await b.tryAcquire('p');
      expect(free.ok).toBe(true);
      if (free.ok) await free.handle.release();
    });

    it('withLock with a timeout fails typed when a name is held, holding nothing afterwards', async () => {
      const held = await b.acquire('m2');
      const err = await a.withLock(['m1', 'm2'], async () => 'ran', { timeoutMs: 300 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LockTimeoutError);
      await held.release();
      const m1 = await b.tryAcquire('m1');
      expect(m1.ok).toBe(true);
      if (m1.ok) await m1.handle.release();
    });

    it('mutually excludes concurrent critical sections, and [a,b] vs [b,a] workers never deadlock', async () => {
      const c = await fx.contender();
      let inside = 0;
      let overlaps = 0;
      let runs = 0;
      const worker = async (service: LockService, names: string[], rounds: number): Promise<void> => {
        for (let i = 0; i < rounds; i++) {
          await service.withLock(
            names,
            async () => {
              inside++;
              if (inside > 1) overlaps++;
              await new Promise((r) => setTimeout(r, 1));
              inside--;
              runs++;
            },
            { timeoutMs: 30_000 },
          );
        }
      };
      await Promise.all([worker(a, ['ab-1', 'ab-2'], 15), worker(b, ['ab-2', 'ab-1'], 15), worker(c, ['ab-1', 'ab-2'], 15), worker(a, ['ab-2', 'ab-1'], 15)]);
      expect(runs).toBe(60);
      expect(overlaps).toBe(0);
    });

    it('tryLockAll takes every name when all are free, and nothing when one is held or waited for', async () => {
      const held = await b.acquire('try-2');
      expect(await tryLockAll(a, ['try-3', 'try-1', 'try-2'])).toBeUndefined();
      // Nothing kept: the names it took before it met the held one are free again.
      const one = await b.tryAcquire('try-1');
      expect(one.ok).toBe(true);
      if (one.ok) await one.handle.release();
      await held.release();
      const all = await tryLockAll(a, ['try-2', 'try-1', 'try-2']);
      expect(all?.handles.map((h) => h.name)).toEqual(['try-1', 'try-2']);
      expect(all?.fence.holds()).toBe(true);
      expect((await b.tryAcquire('try-1')).ok).toBe(false);
      await all?.release();
      await all?.release();
      expect(all?.handles.every((h) => h.state === 'released')).toBe(true);
      const again = await b.tryAcquire('try-1');
      expect(again.ok).toBe(true);
      if (again.ok) await again.handle.release();
    });

    it('a write that carries the releasing fence releases the locks with it; releasedByWrite then frees them without a request', async () => {
      const all = await tryLockAll(a, ['rw-1', 'rw-2']);
      if (!all) throw new Error('not taken');
      expect(all.releasingFence.guards).toEqual(distributed ? all.handles.map((h) => ({ key: h.key, createRevision: h.createRevision, expect: 'equal', releaseWithWrite: true })) : []);
      const waiting = b.acquire('rw-1', { timeoutMs: 30_000 });
      await fx.queued('rw-1', 2);
      expect(await fx.commit(all.releasingFence)).toBe(true);
      all.releasedByWrite();
      expect(all.handles.every((h) => h.state === 'released')).toBe(true);
      await all.release(); // nothing left to do
      const next = await waiting;
      expect(next.state).toBe('held');
      await next.release();
      expect((await tryLockAll(b, ['rw-2']))?.handles.map((h) => h.name)).toEqual(['rw-2']);
    });

    it('a write carrying the releasing fence of a lock released meanwhile does not land', async () => {
      const handle = await a.acquire('rw-gone');
      await handle.release();
      const next = await b.acquire('rw-gone');
      expect(await fx.commit(handle.releasingFence)).toBe(false);
      expect(next.state).toBe('held');
      await next.release();
    });

    it('close() rejects waiters, ends held locks and refuses new calls', async () => {
      const c = await fx.contender();
      const held = await c.acquire('closing');
      const other = await fx.contender();
      const waiter = other === c ? undefined : await other.acquire('closing-2');
      const name = waiter ? 'closing-2' : 'closing';
      const waiting = c.acquire(name, { timeoutMs: 20_000 }).catch((e: unknown) => e);
      await fx.queued(name, 2);
      await c.close();
      expect(await waiting).toBeInstanceOf(CoordinatorError);
      expect(held.signal.aborted).toBe(true);
      expect(['lost', 'released']).toContain(held.state);
      expect(held.fence.holds()).toBe(false);
      await expect(c.acquire('closing')).rejects.toBeInstanceOf(ClosedError);
      await c.close();
      await waiter?.release();
    });
  });
}
