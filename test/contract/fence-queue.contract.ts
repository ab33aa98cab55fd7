import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FenceQueue, FenceRequest } from '../../src/fencing/fence-queue.js';
import { allOf } from '../../src/fence.js';
import type { Member, Membership } from '../../src/membership/membership.js';

/** One backend prepared for the fence queue contract. */
export interface FenceQueueFixture {
  readonly queue: FenceQueue;
  readonly membership: Pick<Membership, 'ownerGone'>;
  /** Joins a member of `host` (a fencer), on a session the fixture can end. */
  join(host: string): Promise<{ member: Member; end(): Promise<void> }>;
  close(): Promise<void>;
}

const request = (incarnation: string, over: Partial<FenceRequest> = {}): FenceRequest => ({ incarnation, host: 'dead@be', cluster: 'c1@be', diedAtMs: 1_000, observedLive: true, ...over });

/** The FenceQueue contract: both adapters pass it. */
export function describeFenceQueue(name: string, makeFixture: () => Promise<FenceQueueFixture>): void {
  describe(`FenceQueue contract: ${name}`, () => {
    let fx: FenceQueueFixture;
    beforeEach(async () => {
      fx = await makeFixture();
    });
    afterEach(async () => {
      await fx.close();
    });

    it('a request creates one fence operation per incarnation; asking again returns it unchanged', async () => {
      const first = await fx.queue.request(request('dead@be:1'));
      expect(first).toMatchObject({ incarnation: 'dead@be:1', host: 'dead@be', cluster: 'c1@be', diedAtMs: 1_000, observedLive: true, owner: null, attempt: 0, failures: 0, lastError: null, nextAttemptAtMs: 0 });
      const again = await fx.queue.request(request('dead@be:1', { diedAtMs: 9_999, observedLive: false }));
      expect(again).toEqual(first);
      expect(await fx.queue.get('dead@be:1')).toEqual(first);
      await fx.queue.request(request('dead@be:2'));
      expect((await fx.queue.list()).map((op) => op.incarnation).sort()).toEqual(['dead@be:1', 'dead@be:2']);
    });

    it('a request that saw the death live marks an operation that did not: no self-fence grace for it; nothing else changes', async () => {
      const found = await fx.queue.request(request('dead@be:1', { diedAtMs: 5_000, observedLive: false }));
      expect(found.observedLive).toBe(false);
      const live = await fx.queue.request(request('dead@be:1', { diedAtMs: 4_000, observedLive: true }));
      expect(live).toMatchObject({ observedLive: true, diedAtMs: 4_000, requestedAtMs: found.requestedAtMs, attempt: 0 });
      expect(live.revision).not.toBe(found.revision);
      expect(await fx.queue.get('dead@be:1')).toEqual(live);
      // A later request that did not see it live changes nothing.
      expect(await fx.queue.request(request('dead@be:1', { diedAtMs: 1, observedLive: false }))).toEqual(live);
    });

    it('exactly one of two members claims it; the loser gets a conflict', async () => {
      const op = await fx.queue.request(request('dead@be:1'));
      const a = await fx.join('fa@be');
      const b = await fx.join('fb@be');
      const results = await Promise.all([fx.queue.claim(op, a.member, a.member.fence()), fx.queue.claim(op, b.member, b.member.fence())]);
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      expect(results.find((r) => !r.ok)).toEqual({ ok: false, reason: 'conflict' });
      const claimed = await fx.queue.get('dead@be:1');
      expect(claimed?.attempt).toBe(1);
      expect([a.member.owner.incarnation, b.member.owner.incarnation]).toContain(claimed?.owner?.incarnation);
    });

    it('a failed attempt records why and when to try again; only its runner may record it', async () => {
      const a = await fx.join('fa@be');
      const claimed = await fx.queue.claim(await fx.queue.request(request('dead@be:1')), a.member, a.member.fence());
      if (!claimed.ok) throw new Error('claim failed');
      const failed = await fx.queue.failed(claimed.op, a.member, 'exec: exited 3', 5_000);
      expect(failed).toMatchObject({ ok: true, op: { lastError: 'exec: exited 3', nextAttemptAtMs: 5_000, attempt: 1, failures: 1 } });
      expect(await fx.queue.failed(claimed.op, a.member, 'stale', 9_000)).toEqual({ ok: false, reason: 'conflict' });
      if (!failed.ok) throw new Error('not recorded');
      // Failures count across attempts (the retry waits grow with them); a postponement is none.
      const again = await fx.queue.failed(failed.op, a.member, 'exec: exited 3', 7_000);
      if (!again.ok) throw new Error('not recorded');
      expect(again.op.failures).toBe(2);
      const postponed = await fx.queue.failed(again.op, a.member, 'waiting for it to fence itself', 8_000, true);
      expect(postponed).toMatchObject({ ok: true, op: { failures: 2, lastError: 'waiting for it to fence itself', nextAttemptAtMs: 8_000 } });
      expect(await fx.queue.get('dead@be:1')).toMatchObject({ failures: 2 });
    });

    it('the fence of a runner that died is taken over with the proof it died; not while it lives', async () => {
      const a = await fx.join('fa@be');
      const claimed = await fx.queue.claim(await fx.queue.request(request('dead@be:1')), a.member, a.member.fence());
      if (!claimed.ok || !claimed.op.owner) throw new Error('claim failed');
      const b = await fx.join('fb@be');
      const takeover = (): ReturnType<FenceQueue['claim']> => fx.queue.claim(claimed.op, b.member, allOf(b.member.fence(), fx.membership.ownerGone(claimed.op.owner!)));
      await expect(takeover()).rejects.toMatchObject({ code: 'FENCED' });
      await a.end();
      expect(await takeover()).toMatchObject({ ok: true, op: { owner: b.member.owner, attempt: 2 } });
    });

    it('a member that is no longer alive claims nothing', async () => {
      const a = await fx.join('fa@be');
      const fence = a.member.fence();
      await a.end();
      await expect(fx.queue.claim(await fx.queue.request(request('dead@be:1')), a.member, fence)).rejects.toMatchObject({ code: 'FENCED' });
      expect((await fx.queue.get('dead@be:1'))?.owner).toBeNull();
    });

    it('remove drops it (idempotent); a claim of a removed one is gone', async () => {
      const op = await fx.queue.request(request('dead@be:1'));
      await fx.queue.remove('dead@be:1');
      await fx.queue.remove('dead@be:1');
      expect(await fx.queue.get('dead@be:1')).toBeUndefined();
      const a = await fx.join('fa@be');
      expect(await fx.queue.claim(op, a.member, a.member.fence())).toEqual({ ok: false, reason: 'gone' });
    });
  });
}
