import { randomBytes } from 'node:crypto';
import { ClosedError } from '../errors.js';
import type { Session, SessionState, SessionStateChange } from './session.js';

/**
 * The single-node session: the process itself. `held` until `close()`; there is no lease, so
 * no jeopardy and no loss (a dead process takes its in-process locks with it).
 * `distributed: false`; lease id `'0'`; the incarnation is `<host>:<random hex>`.
 */
export class LocalSession implements Session {
  readonly distributed = false;
  readonly leaseId = '0';
  readonly leaseHex = '0';
  readonly incarnation: string;
  private readonly controller = new AbortController();
  private readonly listeners = new Set<(change: SessionStateChange) => void>();
  private current: SessionState = 'held';

  constructor(host: string) {
    this.incarnation = `${host}:${randomBytes(8).toString('hex')}`;
  }

  get state(): SessionState {
    return this.current;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  safeUntil(): number {
    return this.current === 'held' ? Number.POSITIVE_INFINITY : 0;
  }

  onStateChange(listener: (change: SessionStateChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.current === 'closed') return;
    const previous = this.current;
    this.current = 'closed';
    this.controller.abort(new ClosedError(`session ${this.incarnation}`));
    const change = { state: this.current, previous, at: Date.now() };
    for (const listener of this.listeners) listener(change);
  }
}
