import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LockService } from '../../src/locks/lock-service.js';
import type { LockTable } from '../../src/locks/lock-table.js';

/** What the contract needs from one adapter. */
export interface LockTableFixture {
  readonly table: LockTable;
  /** A lock service for one more contender, and the incarnation it holds locks as. */
  contender(): Promise<{ readonly locks: LockService; readonly incarnation: string; readonly host: string }>;
  /** Waits until `count` contenders hold or wait for `name`. */
  queued(name: string, count: number): Promise<void>;
  close(): Promise<void>;
}

const VOL = '0b7e6c2a-1111-4a4a-9c9c-000000000001';

/**
 * The LockTable contract: it lists exactly the locks held now — holder, fencing revision (the
 * holder's create revision), waiters — sorted by name, and forgets a lock once released.
 */
export function lockTableContract(adapter: string, distributed: boolean, makeFixture: () => Promise<LockTableFixture>): void {
  describe(`LockTable contract: ${adapter}`, () => {
    let fx: LockTableFixture;
    beforeEach(async () => {
      fx = await makeFixture();
    });
    afterEach(async () => {
      await fx.close();
    });

    it(`declares distributed: ${distributed}; lists nothing while nothing is held`, async () => {
      expect(fx.table.distributed).toBe(distributed);
      expect(await fx.table.list()).toEqual([]);
    });

    it('lists a held lock with its holder and fencing revision, and forgets it once released', async () => {
      const a = await fx.contender();
      const handle = await a.locks.acquire(`${VOL}-delete_volume`);
      const [entry, ...rest] = await fx.table.list();
      expect(rest).toEqual([]);
      expect(entry).toMatchObject({
        name: `${VOL}-delete_volume`,
        holderIncarnation: a.incarnation,
        holderHost: a.host,
        fencingRevision: handle.createRevision,
        waiters: 0,
      });
      if (distributed) expect(entry?.sinceMs).toBeNull();
      else expect(entry?.sinceMs).toBe(handle.acquiredAt);
      await handle.release();
      expect(await fx.table.list()).toEqual([]);
    });

    it('counts waiters behind the holder; the next holder shows with its own revision', async () => {
      const a = await fx.contender();
      const b = await fx.contender();
      const name = `${VOL}-extend_volume`;
      const first = await a.locks.acquire(name);
      const second = b.locks.acquire(name, { timeoutMs: 10_000 });
      await fx.queued(name, 2);
      expect(await fx.table.list()).toEqual([expect.objectContaining({ name, fencingRevision: first.createRevision, waiters: 1 })]);
      await first.release();
      const next = await second;
      expect(await fx.table.list()).toEqual([expect.objectContaining({ name, holderIncarnation: b.incarnation, fencingRevision: next.createRevision, waiters: 0 })]);
      expect(BigInt(next.createRevision)).toBeGreaterThan(BigInt(first.createRevision));
      await next.release();
    });

    it('sorts locks by name', async () => {
      const a = await fx.contender();
      const held = [await a.locks.acquire('zz-lock'), await a.locks.acquire('aa-lock'), await a.locks.acquire('mm-lock')];
      expect((await fx.table.list()).map((l) => l.name)).toEqual(['aa-lock', 'mm-lock', 'zz-lock']);
      for (const h of held) await h.release();
    });
  });
}
