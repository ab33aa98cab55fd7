/**
 * Creating a volume from a source — a clone (`source_volid`) or a snapshot (`snapshot_id`) — as
 * Cinder's create-volume flow checks it (pure: no I/O): which source, the size the new volume
 * gets, and the conditions the source must meet in the write that creates the volume and holds
 * the source. See docs/state.md "Sources".
 */
import { InvalidInputError } from '../errors.js';
import type { Expect } from '../state/expect.js';
import type { ResourceRef, SnapshotRecord, VolumeRecord } from '../state/records.js';
import type { OpKind } from '../state/state-machine.js';

/** Cinder's `SRC_VOL_PROCEED_STATUS`: a clone's source may be attached. */
export const CLONE_SOURCE_STATUSES = ['available', 'in-use'] as const;
/** Cinder's snapshot statuses a volume may be created from. */
export const SNAPSHOT_SOURCE_STATUSES = ['available'] as const;

/** What a create names as its source. */
export interface SourceRequest {
  readonly snapshotId?: string | null;
  readonly sourceVolid?: string | null;
}

/** The source of a create, or undefined for a blank volume. @throws InvalidInputError when both are given. */
export function requestedSource(request: SourceRequest): ResourceRef | undefined {
  const snapshot = request.snapshotId ?? null;
  const volume = request.sourceVolid ?? null;
  if (snapshot !== null && volume !== null) {
    throw new InvalidInputError('Invalid input received: May specify only one of snapshot_id and source_volid.');
  }
  if (volume !== null) return { type: 'volume', id: volume };
  if (snapshot !== null) return { type: 'snapshot', id: snapshot };
  return undefined;
}

/** The op kind that copies from a source of this type. */
export function copyKindOf(source: ResourceRef): OpKind {
  return source.type === 'volume' ? 'clone_volume' : 'create_volume_from_snapshot';
}

/** What a source's delete or extend refusal, or a failed condition, calls the action. */
export function copyActionOf(source: ResourceRef): string {
  return source.type === 'volume' ? 'clone it' : 'create a volume from it';
}

/**
 * The new volume's size: the one asked for, at least the source's (Cinder's `_extract_size`),
 * or the source's when none was asked for. A snapshot's size is its volume's when it was taken.
 *
 * @throws InvalidInputError with Cinder's words when the size is smaller than the source.
 */
export function sizeFromSource(requested: number | null | undefined, source: VolumeRecord | SnapshotRecord, type: ResourceRef['type']): number {
  if (requested === null || requested === undefined) return source.size;
  if (requested >= source.size) return requested;
  throw new InvalidInputError(
    type === 'volume'
      ? `Invalid input received: Volume size '${requested}'GB cannot be smaller than original volume size ${source.size}GB. They must be >= original volume size.`
      : `Invalid input received: Volume size '${requested}'GB cannot be smaller than the snapshot size ${source.size}GB. They must be >= original snapshot size.`,
  );
}

/**
 * The conditions on the source in the create's write: the status a copy may start from, the
 * size read (no extend slipped in), and, for a user, the project (another project's source
 * looks missing).
 */
export function sourceExpect(source: VolumeRecord | SnapshotRecord, type: ResourceRef['type'], ownership: Expect): Expect {
  return { ...ownership, status: [...(type === 'volume' ? CLONE_SOURCE_STATUSES : SNAPSHOT_SOURCE_STATUSES)], size: source.size };
}
