/**
 * The worker's part of Cinder's force-delete (`os-force_delete`). The API replaces whatever op
 * the resource had with a delete op marked `params.force` (and `params.replaced`: the op it
 * replaced), in one write, and asks the replaced op's owner to abort its run. The worker that
 * takes the force-delete first asks again (a notice may be missed), then waits for the
 * resource's locks — free only once the replaced run has stopped: its driver call returned and
 * its locks were released, or, when that owner died, its fence is on record (the lock's
 * hand-off). Then the delete runs as any fenced delete; past the bound it ends in
 * `error_deleting` with a user message saying why.
 */
import type { LockTimeoutError } from '../locks/lock-service.js';
import type { OpRecord, ResourceRecord } from '../state/records.js';

/** What the operation runner does for a force-delete; see the module doc. */
export interface ForceDeleteHooks {
  /** Longest wait for the replaced run to stop (`forceDeleteWaitMs`). */
  readonly waitMs: number;
  /** Asks the owner of the replaced op to abort its run (a notice); called before the wait. Never throws. */
  abortReplaced(op: OpRecord): Promise<void>;
  /** Tells the user (a user message) why the force-delete ended in error_deleting. Never throws. */
  timedOut(op: OpRecord, record: ResourceRecord, why: string): Promise<void>;
}

/** What a force-delete op records of the op it replaced (`params.replaced`). */
export interface ReplacedOp {
  readonly opId: string;
  readonly kind: string;
  /** The owner's incarnation, or null when it was queued. */
  readonly owner: string | null;
  readonly ownerHost: string | null;
}

/** True for a force-delete op. */
export function isForceDelete(op: Pick<OpRecord, 'kind' | 'params'>): boolean {
  return (op.kind === 'delete_volume' || op.kind === 'delete_snapshot') && op.params.force === true;
}

/** The op a force-delete replaced, if it replaced one. */
export function replacedOf(op: Pick<OpRecord, 'params'>): ReplacedOp | undefined {
  const r = op.params.replaced as Partial<ReplacedOp> | undefined;
  if (!r || typeof r.opId !== 'string' || typeof r.kind !== 'string') return undefined;
  return { opId: r.opId, kind: r.kind, owner: typeof r.owner === 'string' ? r.owner : null, ownerHost: typeof r.ownerHost === 'string' ? r.ownerHost : null };
}

/** Why a force-delete gave up, in the user's words. */
export function forceDeleteTimeoutWhy(op: Pick<OpRecord, 'params'>, waitMs: number, err: LockTimeoutError): string {
  const replaced = replacedOf(op);
  const what = replaced ? `the ${replaced.kind} operation it replaced${replaced.ownerHost ? ` (running on ${replaced.ownerHost})` : ''}` : `the holder of lock ${err.lockName}`;
  return `Force-delete waited ${Math.round(waitMs / 1000)} s for ${what} to stop, and it did not (lock ${err.lockName} is still held): its driver call may still be running. Force-delete again once it has stopped.`;
}
