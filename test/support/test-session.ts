import { randomBytes } from 'node:crypto';
import type { Etcd3, Lease } from 'etcd3';
import type { Session, SessionState, SessionStateChange } from '../../src/session/session.js';

/**
 * A Session whose state a test moves by hand (`markLost()`), for the membership contract.
 * `local()` is a process session; `etcd()` grants a real etcd lease (kept alive by the etcd3
 * client) that the alive key really rides on, and `close()` really revokes it.
 */
export class TestSession implements Session {
  private current: SessionState = 'held';
  private readonly controller = new AbortController();
  private readonly listeners = new Set<(change: SessionStateChange) => void>();
  private closing: Promise<void> | undefined;

  private constructor(
    readonly distributed: boolean,
    readonly leaseId: string,
    readonly incarnation: string,
    private readonly lease: Lease | undefined,
    private readonly ttlMs: number,
  ) {}

  /** A single-node session for `host`. */
  static local(host: string): TestSession {
    return new TestSession(false, '0', `${host}:${randomBytes(8).toString('hex')}`, undefined, Infinity);
  }

  /** A session on a fresh etcd lease of `ttlMs`; without `keepAlive` it expires after the TTL, like a dead process's. */
  static async etcd(client: Etcd3, host: string, ttlMs = 5_000, keepAlive = true): Promise<TestSession> {
    const lease = client.lease(Math.ceil(ttlMs / 1000), { autoKeepAlive: keepAlive });
    const id = await lease.grant();
    const session = new TestSession(true, id, `${host}:${BigInt(id).toString(16)}`, lease, ttlMs);
    lease.on('lost', () => session.move('lost'));
    return session;
  }

  get leaseHex(): string {
    return BigInt(this.leaseId).toString(16);
  }

  get state(): SessionState {
    return this.current;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  safeUntil(): number {
    return this.current === 'held' ? Date.now() + this.ttlMs : 0;
  }

  onStateChange(listener: (change: SessionStateChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Pretends the session was lost (the lease itself stays until `close()`). */
  markLost(): void {
    this.move('lost');
  }

  private move(state: SessionState): void {
    if (this.current === state || this.current === 'closed') return;
    const previous = this.current;
    this.current = state;
    if (state === 'lost' || state === 'closed') this.controller.abort(state);
    for (const l of this.listeners) l({ state, previous, at: Date.now() });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.lease?.revoke();
      } catch {
        // Already expired or revoked.
      }
      this.move('closed');
    })();
    return this.closing;
  }
}

/** Hands out test sessions one incarnation at a time, as the session module's SessionSource does. */
export class TestSessionSource {
  readonly opened: TestSession[] = [];

  constructor(private readonly open: () => Promise<TestSession>) {}

  /** The live session, or a new one once the last is lost or closed. */
  async next(): Promise<TestSession> {
    const last = this.opened.at(-1);
    if (last && (last.state === 'held' || last.state === 'jeopardy')) return last;
    const session = await this.open();
    this.opened.push(session);
    return session;
  }

  /** Revokes every session it opened. */
  async close(): Promise<void> {
    await Promise.all(this.opened.map((s) => s.close()));
  }
}
