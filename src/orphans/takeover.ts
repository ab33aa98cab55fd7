/**
 * The worker's parts an orphan cleaner drives, as small ports: the claim (the exactly-once gate,
 * here with the dead-owner proof) and the operation runner (a re-run after the claim). The
 * worker's `OpClaimer` and `OperationRunner` implement them; `src/app.ts` wires them.
 */
import type { FencedError } from '../errors.js';
import type { Member } from '../membership/membership.js';
import type { FailedCondition } from '../state/expect.js';
import type { OpRecord } from '../state/records.js';

/** The outcome of a claim; contention is a value. */
export type TakeoverClaim =
  | { readonly ok: true; readonly op: OpRecord }
  /** The op changed since it was listed: another cleaner won, it finished, or it was reset. */
  | { readonly ok: false; readonly reason: 'conflict'; readonly failed: FailedCondition }
  /** The owner's incarnation is alive after all: not an orphan. */
  | { readonly ok: false; readonly reason: 'owner-alive' }
  /** The owner is dead but not fenced yet: its work waits for the fence. */
  | { readonly ok: false; readonly reason: 'awaiting-fence' }
  /** The claiming incarnation is itself no longer alive. */
  | { readonly ok: false; readonly reason: 'fenced'; readonly error: FencedError };

/** Claims an op for `me`, in one write that proves its owner dead (`ownerDead: true`). */
export interface TakeoverClaimer {
  claimOp(op: OpRecord, me: Member, options: { readonly ownerDead: true }): Promise<TakeoverClaim>;
}

/**
 * How a run ended (the worker's `hearth_operations_total` result): `success`/`error` wrote the
 * final status; `fenced`: the runner's incarnation lost its lease or lock and wrote nothing
 * more; `handed_back`: released for another member (shutdown); `gone`: the op was reset meanwhile;
 * `refused`: a resumed create or extend found no room in the pool (its status says so).
 */
export type RerunResult = 'success' | 'error' | 'handed_back' | 'fenced' | 'gone' | 'refused';

/** How a re-run ended; `status` is the final status written (`deleted`: the record was removed). */
export interface RerunOutcome {
  readonly result: RerunResult;
  readonly status?: string;
}

/**
 * Runs an op already claimed by this incarnation to its final fenced transition. Aborting
 * `signal` hands the op back (owner none, re-published) for another member.
 */
export interface TakeoverRunner {
  run(op: OpRecord, options: { readonly signal?: AbortSignal; readonly reason: 'cleanup' }): Promise<RerunOutcome>;
}
