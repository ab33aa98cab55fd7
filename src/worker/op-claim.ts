/**
 * Claiming an op: the exactly-once gate. A worker runs an op only after one conditional write
 * made it the op's owner; whoever loses that race does nothing.
 */
import { FencedError } from '../errors.js';
import { allOf, describeGuard, type Fence } from '../fence.js';
import type { Member, Membership } from '../membership/membership.js';
import type { FailedCondition } from '../state/expect.js';
import type { OpRecord, ResourceRecord } from '../state/records.js';
import type { StateStore, StoredOp } from '../state/state-store.js';

/** Options of {@link OpClaimer.claimOp}. */
export interface ClaimOptions {
  /**
   * The op is owned by another incarnation (possibly an earlier one of this host) that must be
   * dead: the claim carries `membership.ownerGone(owner)` and fails if the owner lives — and
   * `membership.ended(owner)`: it fails too until the owner's end is on record (it left cleanly,
   * or it was fenced), so no run of it can still be working on the resource.
   */
  readonly ownerDead?: boolean;
  /** The op as its job carried it: the claim compares against it instead of reading the op first (`OpUpdateRequest.assume`). */
  readonly assume?: StoredOp;
  /**
   * The fence of locks already held for the op: the claim carries it, so the claim — and the
   * resource read with it (`withRecord`) — is made under those locks.
   */
  readonly locks?: Fence;
  /** Read the resource in the same write: the result's `record`. */
  readonly withRecord?: boolean;
}

/** The outcome of a claim. Contention is a value; only backend trouble throws. */
export type ClaimResult =
  /** `record`: with `withRecord`, the resource at the claim (null: gone; absent: unknown, read it). */
  | { readonly ok: true; readonly op: OpRecord; readonly record?: ResourceRecord | null }
  /** The op changed since it was read (someone else claimed it, it finished, it was replaced or reset). */
  | { readonly ok: false; readonly reason: 'conflict'; readonly failed: FailedCondition }
  /** An `ownerDead` claim found the owner's incarnation alive: it is not an orphan. */
  | { readonly ok: false; readonly reason: 'owner-alive' }
  /** An `ownerDead` claim found the owner dead but not fenced yet: its work waits for the fence. */
  | { readonly ok: false; readonly reason: 'awaiting-fence' }
  /** This incarnation is no longer alive (its alive fence failed); it must not claim anything. */
  | { readonly ok: false; readonly reason: 'fenced'; readonly error: FencedError };

/** What an {@link OpClaimer} needs. */
export interface OpClaimerOptions {
  readonly store: StateStore;
  readonly membership: Pick<Membership, 'ownerGone' | 'ended'>;
}

/**
 * Claims ops for an incarnation.
 *
 * ```ts
 * const claimed = await claimer.claimOp(op, member);                       // queued op
 * const takeover = await claimer.claimOp(op, member, { ownerDead: true }); // a dead owner's op
 * if (claimed.ok) await runner.run(claimed.op);
 * ```
 */
export class OpClaimer {
  constructor(private readonly deps: OpClaimerOptions) {}

  /**
   * One `updateOp` write: it holds only if the op is exactly as read — same `opId`, the same
   * owner (none, or the dead owner's incarnation) and the same `attempt` — and sets `owner: me`
   * and `attempt + 1`. Its fence is `me.fence()` (I am alive) and, for `ownerDead`,
   * `membership.ownerGone(owner)` (its alive key is gone or belongs to a newer incarnation).
   * Two claimers of one op: exactly one wins; the other gets `conflict`.
   *
   * `attempt` (incremented by every claim, kept by a hand-back) rules out ABA: `owner: null` at
   * attempt n exists only before the n+1-th claim. The revision is not compared, so the API's
   * `publishedAt` stamp landing between the read and the claim does not lose the claim.
   *
   * Failure semantics: etcd unreachable → `BackendUnavailableError` (retryable; the store
   * reconciles a lost answer itself); `OutcomeUnknownError` when even that failed — the claim may
   * have landed, so re-read the op: if its owner is `me`, it was claimed. A lost lease → value
   * `fenced` (nothing written). Killed process right after the write → the op is owned by a dead
   * incarnation: an orphan (docs/worker.md).
   */
  async claimOp(op: OpRecord, me: Member, options: ClaimOptions = {}): Promise<ClaimResult> {
    const owner = op.owner;
    const ownerFence: Fence | undefined = options.ownerDead && owner ? this.deps.membership.ownerGone(owner) : undefined;
    const endFence: Fence | undefined = options.ownerDead && owner ? this.deps.membership.ended(owner.incarnation) : undefined;
    const mine = options.locks ? allOf(me.fence(), options.locks) : me.fence();
    // My fence first: etcd reports the first failed guard, so an owner guard reported means I held.
    const fence = ownerFence && endFence ? allOf(mine, ownerFence, endFence) : mine;
    try {
      const result = await this.deps.store.updateOp(
        { type: op.type, id: op.id },
        {
          // kind and cluster never change for an opId; expecting them too means an op the job
          // described wrongly (a stale or forged token) is never claimed for what it is not.
          expect: { opId: op.opId, kind: op.kind, cluster: op.cluster, owner: owner?.incarnation ?? null, attempt: op.attempt },
          set: { owner: me.owner, attempt: op.attempt + 1 },
          fence,
          ...(options.assume === undefined ? {} : { assume: options.assume }),
          ...(options.withRecord ? { withRecord: true } : {}),
        },
      );
      if (!result.ok) return { ok: false, reason: 'conflict', failed: result.failed };
      return result.record === undefined ? { ok: true, op: result.op } : { ok: true, op: result.op, record: result.record };
    } catch (err) {
      if (!(err instanceof FencedError)) throw err;
      if (ownerFence && isOwnerGuard(err, mine, ownerFence)) return { ok: false, reason: 'owner-alive' };
      if (endFence && isOwnerGuard(err, mine, endFence)) return { ok: false, reason: 'awaiting-fence' };
      return { ok: false, reason: 'fenced', error: err };
    }
  }
}

/**
 * True when a fenced claim failed on the owner's guard rather than on mine. etcd names the
 * failed guard; on a single node the fence is predicates only, so ask them.
 */
function isOwnerGuard(err: FencedError, mine: Fence, ownerFence: Fence): boolean {
  if (ownerFence.guards.some((g) => err.guard.startsWith(`${describeGuard(g)} (`))) return true;
  return err.guard === 'holds()' && mine.holds() && !ownerFence.holds();
}
