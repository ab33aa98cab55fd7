import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ACTIONS, DETAILS, type MessageStore, newMessage } from '../../src/messages/message-store.js';

/** Makes an empty store (and frees it on `cleanup`). */
export type MessageStoreFactory = () => Promise<{ readonly store: MessageStore; cleanup(): Promise<void> }>;

const DAY = 86_400_000;

/** The MessageStore contract, on SQLite (unit) and etcd (integration). */
export function describeMessageStore(name: string, make: MessageStoreFactory): void {
  describe(`MessageStore contract: ${name}`, () => {
    let store: MessageStore;
    let cleanup: () => Promise<void>;
    beforeEach(async () => ({ store, cleanup } = await make()));
    afterEach(async () => {
      await store.close();
      await cleanup();
    });

    const message = (projectId: string, createdAtMs: number, ttlMs = DAY) =>
      newMessage(
        { projectId, requestId: 'req-1', resourceType: 'VOLUME', resourceUuid: randomUUID(), action: ACTIONS.scheduleAllocateVolume, detail: DETAILS.noBackendAvailable, why: 'Insufficient free virtual space.' },
        randomUUID(),
        createdAtMs,
        ttlMs,
      );

    it('keeps a message with Cinder\'s event id and text until it expires or is deleted', async () => {
      const m = message('p1', 1_000);
      expect(m.eventId).toBe('VOLUME_VOLUME_001_003');
      expect(m.userMessage).toBe('schedule allocate volume:Could not find any available weighted backend. Insufficient free virtual space.');
      await store.create(m);
      expect(await store.get(m.id, 2_000)).toEqual(m);
      expect(await store.get(m.id, 1_000 + DAY)).toBeUndefined();
      expect(await store.delete(m.id)).toBe(true);
      expect(await store.delete(m.id)).toBe(false);
      expect(await store.get(m.id, 2_000)).toBeUndefined();
    });

    it('lists a project\'s messages, or all, leaving out expired ones; removes the expired', async () => {
      const a = message('p1', 1_000);
      const b = message('p2', 2_000);
      const old = message('p1', 0, 500);
      for (const m of [a, b, old]) await store.create(m);
      expect((await store.list('p1', 3_000)).map((m) => m.id)).toEqual([a.id]);
      expect((await store.list(undefined, 3_000)).map((m) => m.id).sort()).toEqual([a.id, b.id].sort());
      expect(await store.deleteExpired(3_000)).toBe(1);
      expect(await store.get(old.id, 0)).toBeUndefined();
    });
  });
}
