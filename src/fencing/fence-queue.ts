/**
 * The fence queue port: one fence operation per dead incarnation that needs a fence. Like any
 * other operation it is claimed by exactly one live member (a compare-and-swap that carries the
 * claimer's alive fence) and taken over when its runner dies; it ends when the incarnation's end
 * is on record (membership's `recordEnd`), and is then removed.
 */
import type { Fence } from '../fence.js';
import type { OwnerRef } from '../identity.js';
import type { Member } from '../membership/membership.js';

/** What a fence is asked for. */
export interface FenceRequest {
  readonly incarnation: string;
  readonly host: string;
  readonly cluster: string;
  /** Epoch ms: when the death was first seen. */
  readonly diedAtMs: number;
  /**
   * True when a live member saw the alive entry vanish as it happened; false when the death was
   * found later (after this member was cut off itself, as in a quorum loss), when the process
   * may live on and fence its earlier incarnation itself.
   */
  readonly observedLive: boolean;
}

/** A fence operation as stored. */
export interface FenceOp extends FenceRequest {
  readonly requestedAtMs: number;
  /** The live incarnation running it, or null while nobody has claimed it. */
  readonly owner: OwnerRef | null;
  /** Claims so far. */
  readonly attempt: number;
  /** Failed fence attempts so far, by every runner (the retry waits grow with it). */
  readonly failures: number;
  /** Why the last attempt failed, if it did. */
  readonly lastError: string | null;
  /** Epoch ms before which nobody tries again. */
  readonly nextAttemptAtMs: number;
  /** Store revision (etcd mod revision; a counter on a single node): what a compare-and-swap checks. */
  readonly revision: string;
}

/**
 * The operation `existing` becomes when `request` saw the death live and the operation on record
 * did not (it came from a cleanup or a member that was cut off): a death seen live is fenced at
 * once, without the self-fence grace. Undefined when nothing changes.
 */
export function seenLive(existing: FenceOp, request: FenceRequest): FenceOp | undefined {
  if (existing.observedLive || !request.observedLive) return undefined;
  return { ...existing, observedLive: true, diedAtMs: Math.min(existing.diedAtMs, request.diedAtMs), nextAttemptAtMs: 0 };
}

/** The outcome of a claim or an update; contention is a value. */
export type FenceWrite = { readonly ok: true; readonly op: FenceOp } | { readonly ok: false; readonly reason: 'conflict' | 'gone' };

/** See the module doc. */
export interface FenceQueue {
  /**
   * Creates the fence operation of `request.incarnation` unless one exists; returns the one on
   * record either way — marked seen live (no self-fence grace) when `request` saw the death live
   * and the one on record did not ({@link seenLive}).
   *
   * Failure semantics: a retryable `BackendUnavailableError` when etcd cannot be reached.
   */
  request(request: FenceRequest): Promise<FenceOp>;
  /** The fence operation of `incarnation`, if any. */
  get(incarnation: string): Promise<FenceOp | undefined>;
  /** Every fence operation on record. */
  list(): Promise<FenceOp[]>;
  /**
   * Makes `me` the runner of `op`, as read: it holds only if `op` is unchanged (its revision),
   * and `fence` (mine, and — to take over from a runner that died — its owner gone) holds.
   *
   * @throws FencedError when `fence` fails (nothing written).
   */
  claim(op: FenceOp, me: Member, fence: Fence): Promise<FenceWrite>;
  /**
   * Records why `me` did not fence it now and when to try again (same conditions as a claim):
   * a failed attempt (counted in `failures`), or with `postponed`, a wait that is no failure
   * (the process may still fence itself).
   */
  failed(op: FenceOp, me: Member, reason: string, nextAttemptAtMs: number, postponed?: boolean): Promise<FenceWrite>;
  /** Removes the fence operation of `incarnation` (its end is on record). Idempotent. */
  remove(incarnation: string): Promise<void>;
}
