/**
 * The volume manager's pure rules (no I/O): which op kinds it runs, which locks each takes,
 * what a job delivery means for the op it points at, and the final write of each kind.
 *
 * Locks per op kind (Cinder's names; `docs/worker.md` says why):
 *
 * | kind | locks |
 * |---|---|
 * | create_volume, delete_volume, extend_volume | `<volume>-delete_volume` |
 * | create_snapshot | `<volume>-delete_volume`, `<snapshot>-delete_snapshot` |
 * | delete_snapshot | `<snapshot>-delete_snapshot` |
 * | clone_volume, create_volume_from_snapshot | `<new volume>-delete_volume` (not the source's) |
 *
 * One lock per volume serialises every driver call that changes the volume's storage —
 * Cinder takes `<volume>-delete_volume` only in delete (and around a clone's source), so a
 * cleanup re-run of a delete cannot race a create or an extend there only because Cinder never
 * re-runs those; hearth's takeovers can. A snapshot copies its volume, so its creation takes the
 * volume's lock too (no extend or delete of the file mid-copy) plus its own, which a re-run of
 * its delete (cleanup) also takes. Deleting a snapshot touches only the snapshot: the volume
 * cannot be deleted meanwhile, because the API refuses to delete a volume that has snapshots
 * and the snapshot record is removed only at the end of its delete.
 *
 * A copy (a clone, a volume from a snapshot) takes only its new volume's lock. Its source is
 * protected by a hold recorded with the new volume (`source_held`, counted by the source's
 * delete and extend, which the API then refuses) rather than by the source's lock, which Cinder
 * takes (`<source>-delete_volume` around a clone): a lock would serialise every copy of one
 * source, and the hold lets them run together (docs/state.md "Sources").
 */
import { afterConnect, afterDisconnect, attachmentOpParams, attachmentsOf } from '../state/attachments.js';
import type { DeadLetterReason, JobMessage } from '../routing/job-message.js';
import type { OpRecord, ResourceRecord, VolumeRecord } from '../state/records.js';
import type { OpKind } from '../state/state-machine.js';

/** The op kinds the volume manager runs. */
export const MANAGED_KINDS = [
  'create_volume',
  'delete_volume',
  'extend_volume',
  'create_snapshot',
  'delete_snapshot',
  'clone_volume',
  'create_volume_from_snapshot',
  'attach_volume',
  'detach_volume',
] as const;

/** One of {@link MANAGED_KINDS}. */
export type ManagedKind = (typeof MANAGED_KINDS)[number];

/** True for a kind the volume manager runs. */
export function isManagedKind(kind: OpKind): kind is ManagedKind {
  return (MANAGED_KINDS as readonly string[]).includes(kind);
}

/** Cinder's lock on a volume: delete, and everything else that changes its storage. */
export function volumeLock(volumeId: string): string {
  return `${volumeId}-delete_volume`;
}

/** Cinder's lock on a snapshot. */
export function snapshotLock(snapshotId: string): string {
  return `${snapshotId}-delete_snapshot`;
}

/**
 * The locks an op runs under (see the module doc), unsorted; `withLock` sorts them.
 *
 * @param volumeId the snapshot's volume, needed for `create_snapshot`.
 * @throws Error for a kind the manager does not run, or a snapshot create without its volume.
 */
export function lockNamesFor(kind: OpKind, id: string, volumeId?: string): string[] {
  // A connection is made or ended under the volume's lock too: never beside its delete or extend.
  switch (kind) {
    case 'create_volume':
    case 'delete_volume':
    case 'extend_volume':
    case 'clone_volume':
    case 'create_volume_from_snapshot':
    case 'attach_volume':
    case 'detach_volume':
      return [volumeLock(id)];
    case 'create_snapshot':
      if (!volumeId) throw new Error(`create_snapshot of ${id} needs its volume id`);
      return [volumeLock(volumeId), snapshotLock(id)];
    case 'delete_snapshot':
      return [snapshotLock(id)];
  }
}

/** Who this incarnation is, as far as a job decision needs. */
export interface Self {
  readonly incarnation: string;
  readonly cluster: string;
}

/** What to do with a delivered job, given the op it points at. */
export type JobDecision =
  | { readonly type: 'drop'; readonly reason: string }
  | { readonly type: 'dead-letter'; readonly reason: DeadLetterReason; readonly detail: string }
  /** Claim it: queued (`ownerDead: false`) or owned by another incarnation, which the claim must prove dead. */
  | { readonly type: 'claim'; readonly ownerDead: boolean }
  /** This incarnation already owns it but runs nothing for it (a claim whose ack was lost): run it. */
  | { readonly type: 'resume' };

/**
 * Decides what a job means (the claim-then-ack rules of `docs/worker.md`):
 *
 * - the op is gone (finished, or reset away) or has another `opId` (a newer op replaced it):
 *   a stale duplicate → drop;
 * - the job and the op disagree on the kind, the op belongs to another cluster, or the kind is
 *   not one this manager runs: it can never run here → dead-letter;
 * - queued → claim; owned by another incarnation (or an earlier one of this host) → claim with
 *   the proof that the owner is dead — the claim itself finds out, and drops if it lives;
 * - owned by this incarnation: running here → drop the duplicate; not running → resume.
 *
 * @param running whether this process runs the op now.
 */
export function decideJob(job: JobMessage, op: OpRecord | undefined, self: Self, running: boolean): JobDecision {
  if (!op) return { type: 'drop', reason: 'the op is gone (finished or reset)' };
  if (op.opId !== job.opId) return { type: 'drop', reason: `stale job: op ${job.opId} was replaced by ${op.opId}` };
  if (op.kind !== job.kind) {
    return { type: 'dead-letter', reason: 'rejected', detail: `job kind ${job.kind} does not match op ${op.opId} of kind ${op.kind}` };
  }
  if (op.cluster !== self.cluster) {
    return { type: 'dead-letter', reason: 'misrouted', detail: `op ${op.opId} belongs to cluster ${op.cluster}, not ${self.cluster}` };
  }
  if (!isManagedKind(op.kind)) return { type: 'dead-letter', reason: 'rejected', detail: `the volume manager does not run ${op.kind as string}` };
  if (op.owner === null) return { type: 'claim', ownerDead: false };
  if (op.owner.incarnation !== self.incarnation) return { type: 'claim', ownerDead: true };
  return running ? { type: 'drop', reason: 'already running here' } : { type: 'resume' };
}

/**
 * How a driver call ended, as far as the final status goes; `refused`: it was never made, the
 * pool had no room for it (a create or an extend, as Cinder's scheduler refuses them).
 */
export type DriverOutcome = 'success' | 'error' | 'refused';

/** The one write that ends an op. */
export type FinalWrite =
  | { readonly type: 'remove'; readonly status: 'deleted' }
  | { readonly type: 'transition'; readonly status: string; readonly set: Readonly<Record<string, unknown>> };

/** Cinder's error status of each kind. */
const ERROR_STATUS: Readonly<Record<Exclude<ManagedKind, 'attach_volume' | 'detach_volume'>, string>> = {
  create_volume: 'error',
  delete_volume: 'error_deleting',
  extend_volume: 'error_extending',
  create_snapshot: 'error',
  delete_snapshot: 'error_deleting',
  clone_volume: 'error',
  create_volume_from_snapshot: 'error',
};

/** What a driver call returned that the final write records: an attach's connection info, and when it was made. */
export interface DriverResult {
  readonly connectionInfo?: Readonly<Record<string, unknown>>;
  readonly at?: number;
}

/**
 * The final write of an op: the resource's new status and fields, written together with the
 * removal of the op (or the removal of the resource, for a successful delete). `host` is the
 * member that ran it (Cinder's `_set_resource_host`), recorded in the same write.
 */
export function finalWrite(
  op: Pick<OpRecord, 'opId' | 'params'> & { readonly kind: ManagedKind },
  record: ResourceRecord,
  outcome: DriverOutcome,
  host: string,
  result: DriverResult = {},
): FinalWrite {
  const kind = op.kind;
  if (kind === 'attach_volume' || kind === 'detach_volume') {
    // The attachment ends connected, refused or gone; the volume's status follows its attachments.
    const attachments = attachmentsOf(record as VolumeRecord);
    const params = attachmentOpParams(op.params);
    const ok = outcome === 'success';
    const set =
      kind === 'attach_volume'
        ? afterConnect(attachments, params, ok && result.connectionInfo ? { ok: true, connectionInfo: result.connectionInfo, at: result.at ?? 0 } : { ok: false })
        : afterDisconnect(attachments, params, ok);
    return { type: 'transition', status: set.status, set: { ...set, host } };
  }
  if (outcome === 'refused' && kind === 'extend_volume') {
    // Cinder's scheduler puts a volume it could not extend back where it was, with no previous status.
    const status = record.previous_status === 'in-use' ? 'in-use' : 'available';
    return { type: 'transition', status, set: { status, previous_status: null } };
  }
  if (outcome === 'error' || outcome === 'refused') return { type: 'transition', status: ERROR_STATUS[kind], set: { status: ERROR_STATUS[kind], host } };
  switch (kind) {
    case 'create_volume':
    case 'clone_volume':
    case 'create_volume_from_snapshot':
      // A copy's hold on its source goes with this write (the store clears source_held on leaving creating).
      return { type: 'transition', status: 'available', set: { status: 'available', host } };
    case 'extend_volume': {
      // An attached volume extended in use stays in-use; the size is the op's new size.
      const status = record.previous_status === 'in-use' ? 'in-use' : 'available';
      return { type: 'transition', status, set: { status, size: newSizeOf(op), host } };
    }
    case 'create_snapshot':
      return { type: 'transition', status: 'available', set: { status: 'available', progress: '100%', host } };
    case 'delete_volume':
    case 'delete_snapshot':
      return { type: 'remove', status: 'deleted' };
  }
}

/** The source a copy op reads (its params), or undefined when the op is not a copy or lacks it. */
export function copySourceOf(op: Pick<OpRecord, 'kind' | 'params'>): string | undefined {
  if (op.kind !== 'clone_volume' && op.kind !== 'create_volume_from_snapshot') return undefined;
  return typeof op.params.sourceId === 'string' ? op.params.sourceId : undefined;
}

/** The new size an extend op asks for. @throws Error when the op carries none. */
export function newSizeOf(op: Pick<OpRecord, 'opId' | 'params'>): number {
  const size = op.params.newSize;
  if (typeof size !== 'number' || !Number.isInteger(size)) throw new Error(`extend op ${op.opId} has no integer newSize`);
  return size;
}
