import { afterEach, describe, expect, it } from 'vitest';
import { isLive, type Session, sessionKeyFence } from '../../src/session/session.js';

/** One backend prepared for the session contract. */
export interface SessionFixture {
  /** Opens a session of `host` (one run of it). */
  open(host: string): Promise<Session>;
  /** Ends what the fixture made. */
  close(): Promise<void>;
}

/**
 * The Session port's contract: every adapter (the single node's process session and the etcd
 * lease) must pass it. `distributed` says what the adapter must declare.
 */
export function describeSession(name: string, distributed: boolean, makeFixture: () => Promise<SessionFixture>): void {
  describe(`Session contract: ${name}`, () => {
    let fx: SessionFixture | undefined;
    afterEach(async () => {
      await fx?.close();
      fx = undefined;
    });
    const open = async (host: string): Promise<Session> => {
      fx ??= await makeFixture();
      return fx.open(host);
    };

    it('opens held and live, named after its host, with a lease id and its hex form', async () => {
      const before = Date.now();
      const s = await open('n1@be');
      expect(s.distributed).toBe(distributed);
      expect(s.state).toBe('held');
      expect(isLive(s.state)).toBe(true);
      expect(s.signal.aborted).toBe(false);
      expect(s.safeUntil()).toBeGreaterThan(before);
      expect(s.incarnation.startsWith('n1@be:')).toBe(true);
      expect(s.leaseHex).toBe(BigInt(s.leaseId).toString(16));
      if (distributed) expect(s.incarnation).toBe(`n1@be:${s.leaseHex}`);
      else expect(s.leaseId).toBe('0');
      await s.close();
    });

    it('two runs of one host are two incarnations', async () => {
      const a = await open('n1@be');
      const b = await open('n1@be');
      expect(a.incarnation).not.toBe(b.incarnation);
      await Promise.all([a.close(), b.close()]);
    });

    it('close() ends it for good: closed, signal aborted, not safe, listeners told once; idempotent', async () => {
      const s = await open('n1@be');
      const changes: string[] = [];
      s.onStateChange((c) => changes.push(`${c.previous}->${c.state}`));
      const gone: string[] = [];
      const off = s.onStateChange((c) => gone.push(c.state));
      off();
      await s.close();
      await s.close();
      expect(s.state).toBe('closed');
      expect(isLive(s.state)).toBe(false);
      expect(s.signal.aborted).toBe(true);
      expect(s.safeUntil()).toBe(0);
      expect(changes).toEqual(['held->closed']);
      expect(gone).toEqual([]);
    });

    it('a fence on a key riding on it holds while the session lives, and carries etcd guards only when distributed', async () => {
      const s = await open('n1@be');
      const fence = sessionKeyFence(s, 'alive/n1@be', '42', 'alive key of n1@be');
      expect(fence.holds()).toBe(true);
      expect(fence.guards).toEqual(distributed ? [{ key: 'alive/n1@be', createRevision: '42', expect: 'equal' }] : []);
      await s.close();
      expect(fence.holds()).toBe(false);
    });
  });
}
