/**
 * The records hearth keeps as its state of record: volumes, snapshots, and the op record of a
 * resource's in-flight operation. Field names of volumes and snapshots follow Cinder's columns
 * (`previous_status`, `project_id`, …) because `expect` conditions name them, as Cinder's
 * `conditional_update` does. Times are epoch milliseconds.
 */
import type { OwnerRef } from '../identity.js';
import type { AttachmentRecord } from './attachments.js';
import type { OpKind, SnapshotStatus, VolumeStatus } from './state-machine.js';

/** The kinds of resources the store keeps. */
export type ResourceType = 'volume' | 'snapshot';

/** Names one resource. */
export interface ResourceRef {
  readonly type: ResourceType;
  readonly id: string;
}

/** Cinder's `attach_status`. */
export type AttachStatus = 'detached' | 'attaching' | 'attached' | 'detaching';

/** Every attach status, for validation. */
export const ATTACH_STATUSES: readonly AttachStatus[] = ['detached', 'attaching', 'attached', 'detaching'];

/** Cinder's `migration_status` values (null: never migrated). */
export const MIGRATION_STATUSES = ['migrating', 'error', 'success', 'completing', 'starting', 'deleting'] as const;

/** A volume as stored. */
export interface VolumeRecord {
  readonly id: string;
  readonly name: string | null;
  readonly description: string | null;
  /** GiB. */
  readonly size: number;
  readonly status: VolumeStatus;
  readonly previous_status: VolumeStatus | null;
  readonly project_id: string;
  readonly user_id: string | null;
  /** The cluster id (`<name>@<backend>`) whose members serve the volume. */
  readonly cluster: string;
  /** The host that last acted on the volume; null until a worker has. */
  readonly host: string | null;
  /** The incarnation whose worker or cleanup write last ended an operation on it; see {@link WriterStamp}. */
  readonly updated_by?: string;
  readonly attach_status: AttachStatus;
  readonly availability_zone: string;
  readonly volume_type: string;
  /**
   * The id of the volume type (record schema 2). Absent on records written before it existed:
   * the default type's.
   */
  readonly volume_type_id?: string;
  /**
   * The volume's attachments (record schema 2; Cinder's `volume_attachment` rows), kept in the
   * volume's own record so that every attachment change is one compare-and-swap of it. Absent:
   * none. See `attachments.ts`.
   */
  readonly attachments?: readonly AttachmentRecord[];
  readonly migration_status: string | null;
  readonly bootable: boolean;
  readonly multiattach: boolean;
  readonly metadata: Readonly<Record<string, string>>;
  /** The snapshot the volume was created from (Cinder's column); absent or null otherwise. */
  readonly snapshot_id?: string | null;
  /** The volume it was cloned from (Cinder's column); absent or null otherwise. */
  readonly source_volid?: string | null;
  /**
   * True while the volume's copy may still read its source (`snapshot_id` or `source_volid`):
   * from its creation until it leaves `creating` (or `deleting`, after a force-delete of a copy
   * in flight). A source with a holding volume cannot be deleted or extended (`holds` in an
   * `expect`); see {@link sourceOf} and docs/state.md "Sources".
   */
  readonly source_held?: boolean;
  /** Epoch ms. */
  readonly created_at: number;
  /** Epoch ms of the last write; null until the first change after creation (as Cinder). */
  readonly updated_at: number | null;
  /** etcd: the key's mod revision; SQLite: the row's version. Changes on every write. */
  readonly revision: string;
}

/** A snapshot as stored. */
export interface SnapshotRecord {
  readonly id: string;
  readonly volume_id: string;
  readonly name: string | null;
  readonly description: string | null;
  /** GiB, the volume's size when the snapshot was taken. */
  readonly size: number;
  readonly status: SnapshotStatus;
  readonly previous_status: SnapshotStatus | null;
  readonly project_id: string;
  readonly user_id: string | null;
  readonly cluster: string;
  readonly host: string | null;
  /** The incarnation whose worker or cleanup write last ended an operation on it; see {@link WriterStamp}. */
  readonly updated_by?: string;
  /** Cinder's `progress`, e.g. `0%`. */
  readonly progress: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly created_at: number;
  readonly updated_at: number | null;
  readonly revision: string;
}

/**
 * `updated_by`: the incarnation (`<host>@<backend>:<lease hex>`) that wrote the final status of
 * the record's last operation — the worker's final write, or a cleanup's. Absent until one did
 * (and on records written before the field existed). It is what makes "no write by a fenced
 * worker was accepted" checkable from etcd's history: the writer of every final write is named
 * in the write itself, so its liveness at that revision can be verified independently of the
 * op record it consumed (the fault suite, `test/chaos/history.ts`). Never shown by the API.
 */
export type WriterStamp = Pick<VolumeRecord, 'updated_by'>;

/** The source a volume was created from, if any. */
export function sourceOf(record: Pick<VolumeRecord, 'snapshot_id' | 'source_volid'>): ResourceRef | undefined {
  if (typeof record.source_volid === 'string') return { type: 'volume', id: record.source_volid };
  if (typeof record.snapshot_id === 'string') return { type: 'snapshot', id: record.snapshot_id };
  return undefined;
}

/** The source a volume holds now (its copy may still read it), if any. */
export function heldSourceOf(record: ResourceRecord | null | undefined): ResourceRef | undefined {
  if (!record || !('source_held' in record) || record.source_held !== true) return undefined;
  return sourceOf(record);
}

/** A volume or a snapshot. */
export type ResourceRecord = VolumeRecord | SnapshotRecord;

/** The record type of a resource type. */
export type RecordOf<T extends ResourceType> = T extends 'volume' ? VolumeRecord : SnapshotRecord;

/**
 * The in-flight operation of one resource (at most one per resource): what runs, which
 * transitional status must be cleaned if its owner dies, and who owns it. It has no lease: it
 * must outlive its owner so that orphans can be found.
 */
export interface OpRecord {
  readonly type: ResourceType;
  readonly id: string;
  /** Unique per operation (a UUID); a re-run by cleanup keeps it. */
  readonly opId: string;
  readonly kind: OpKind;
  /** The transitional status this operation holds the resource in, e.g. `deleting`. */
  readonly status: string;
  /** The resource's cluster: members of this cluster may claim the op. */
  readonly cluster: string;
  /** The incarnation working on it; null while queued (nobody has it). */
  readonly owner: OwnerRef | null;
  /** How many times it was claimed. */
  readonly attempt: number;
  /** Kind-specific arguments, e.g. `{ newSize: 2 }`. */
  readonly params: Readonly<Record<string, unknown>>;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Epoch ms when publishing the job was confirmed; null until then. */
  readonly publishedAt: number | null;
  readonly revision: string;
}

/** A record without the revision the store assigns. */
export type Unrevisioned<R> = Omit<R, 'revision'>;

/** Compares two owner refs by incarnation (a restart is a different owner). */
export function sameOwner(a: OwnerRef | null, b: OwnerRef | null): boolean {
  return a === null || b === null ? a === b : a.incarnation === b.incarnation;
}
