import type { Fence } from '../fence.js';

/**
 * The session port: one lease per worker incarnation, which every lock key and the worker's
 * `alive/` key ride on.
 *
 * States: `held` (keepalives acknowledged) → `jeopardy` (a keepalive was missed: start no new
 * side effect) → `lost` (past `safeUntil`, before etcd can expire the lease: abort) ; `closed`
 * after `close()`. `lost` and `closed` are final: a new incarnation needs a new session.
 */
export type SessionState = 'held' | 'jeopardy' | 'lost' | 'closed';

/** A state change of a session. */
export interface SessionStateChange {
  readonly state: SessionState;
  readonly previous: SessionState;
  /** When it changed, epoch ms. */
  readonly at: number;
}

/** See the module doc. */
export interface Session {
  /** True for an etcd lease shared cluster-wide; false for the single-node process session. */
  readonly distributed: boolean;
  /** Lease id, decimal; `'0'` for a local session. */
  readonly leaseId: string;
  /** Lease id in lowercase hex, as etcd's concurrency package names lock keys. */
  readonly leaseHex: string;
  /** Unique per run of a host, e.g. `node1@rbd:694d7c1b4f3e2a10`. */
  readonly incarnation: string;
  readonly state: SessionState;
  /** Aborts when the session becomes `lost` or `closed`. */
  readonly signal: AbortSignal;
  /** Epoch ms before which etcd cannot have expired the lease (send time of the last acknowledged keepalive + TTL − margin). */
  safeUntil(): number;
  /** Calls `listener` on every state change; returns a function that unsubscribes. */
  onStateChange(listener: (change: SessionStateChange) => void): () => void;
  /** Revokes the lease, so keys on it vanish at once. Idempotent. */
  close(): Promise<void>;
}

/** True while a session (or a lock on it) may still act: `held` or `jeopardy`. */
export function isLive(state: SessionState): boolean {
  return state === 'held' || state === 'jeopardy';
}

/**
 * A fence on a key that rides on `session` (e.g. the worker's `alive/<host>` key): etcd checks
 * that the key still has `createRevision`, and `holds()` is false once the session is lost or
 * closed (read from the clock, so a stalled event loop cannot hide the loss).
 */
export function sessionKeyFence(session: Session, key: string, createRevision: string, description: string): Fence {
  return {
    guards: session.distributed ? [{ key, createRevision, expect: 'equal' }] : [],
    holds: () => isLive(session.state),
    description,
  };
}
