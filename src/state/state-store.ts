/**
 * The StateStore port: volumes, snapshots and their op records, changed only by conditional
 * (compare-and-swap) writes that say which condition failed.
 *
 * Every write is atomic: the resource, its op record and (for a snapshot) its volume change
 * together or not at all. Contention is a value — `{ ok: false, failed }` names the condition
 * that did not hold (`status`, `exists`, `op.owner`, …). Failure is thrown: {@link FencedError}
 * when the writer's fence no longer holds, `INVALID_TRANSITION` for a status change the state
 * machine forbids (a bug in the caller), `BACKEND_UNAVAILABLE` / `OUTCOME_UNKNOWN` when the
 * backend cannot be reached.
 *
 * Invariant kept by every adapter: a resource is in a transitional status (creating, deleting,
 * extending, …) exactly when it has an op record, and the op's `status` is that status. So a
 * transition into a transitional status must create the op (`op: { create }`), and one out of
 * it must remove the op (`op: 'remove'`).
 *
 * Adapters: `EtcdStateStore` (cluster) and `SqliteStateStore` (single node).
 *
 * @see docs/state.md
 */
import type { Fence } from '../fence.js';
import type { OwnerRef } from '../identity.js';
import type { Expect, FailedCondition } from './expect.js';
import type { OpRecord, RecordOf, ResourceRecord, ResourceRef, ResourceType, SnapshotRecord, VolumeRecord } from './records.js';
import type { Actor, OpKind } from './state-machine.js';

const FIELD = Symbol('field');

/** A `set` value that copies another field's current value (Cinder's `previous_status = status`). */
export interface FieldRef {
  readonly [FIELD]: true;
  readonly field: string;
}

/** `set: { previous_status: valueOf('status') }` copies the status before the write. */
export function valueOf(field: string): FieldRef {
  return { [FIELD]: true, field };
}

/** True for a value built with {@link valueOf}. */
export function isFieldRef(value: unknown): value is FieldRef {
  return typeof value === 'object' && value !== null && FIELD in value;
}

/** Fields a transition never sets: identity, ownership and the store's own stamps. */
type Fixed = 'id' | 'revision' | 'created_at' | 'updated_at' | 'project_id' | 'volume_id';

/** New values for a record's fields. */
export type Patch<R> = { readonly [K in Exclude<keyof R, Fixed>]?: R[K] | FieldRef };

/** A resource as its creator describes it; the store stamps times and the revision. */
export type NewRecord<R> = Omit<R, 'revision' | 'created_at' | 'updated_at'>;

/** An op record to create with a write. Its `status` is the resource's new status. */
export interface NewOp {
  readonly kind: OpKind;
  readonly params?: Readonly<Record<string, unknown>>;
  /** A fresh UUID when absent. */
  readonly opId?: string;
}

/** Changes to an op record's mutable fields. */
export interface OpPatch {
  readonly owner?: OwnerRef | null;
  readonly attempt?: number;
  readonly publishedAt?: number | null;
  readonly params?: Readonly<Record<string, unknown>>;
}

/**
 * What a transition does to the resource's op record: `create` one where there is none,
 * `replace` whatever is there (or nothing) with a new one — an admin's force-delete, which pins
 * the op it replaces with `expectOp` — `update` the one there, or `remove` it.
 */
export type OpChange = { readonly create: NewOp } | { readonly replace: NewOp } | { readonly update: OpPatch } | 'remove';

/**
 * A conditional change of one resource.
 *
 * `expect` names record fields (plus `revision`, `snapshots` — the number of snapshots of a
 * volume — and `holds`, the number of volumes whose copy holds the resource as its source); `expectOp` names op fields: `opId`, `kind`, `status`, `cluster`, `owner` (the owner's
 * incarnation, null when queued), `ownerHost`, `attempt`, `revision`, `publishedAt`. An
 * `expectOp` also requires the op to exist (`op.exists`).
 */
export interface TransitionRequest<R> {
  readonly expect: Expect;
  readonly expectOp?: Expect;
  readonly set?: Patch<R>;
  readonly op?: OpChange;
  /** Who makes the change; the state machine checks a status change against it. */
  readonly by: Actor;
  readonly fence?: Fence;
}

/** Creates a resource that must not exist yet, with its op record. */
export interface CreateRequest<R> {
  readonly record: NewRecord<R>;
  readonly op?: NewOp;
  /**
   * Another resource the new one depends on (a snapshot's volume): its conditions must hold,
   * and its revision changes in the same write, so a concurrent change of the parent that
   * depends on its children (deleting a volume with no snapshots) conflicts.
   */
  readonly parent?: {
    readonly ref: ResourceRef;
    readonly expect: Expect;
    /**
     * False: the parent is compared but not rewritten. A copy's source is held this way — its
     * delete and extend see the hold through a `holds` condition, checked again at commit — so
     * that copies of one source do not conflict with each other on the source's revision.
     */
    readonly touch?: boolean;
  };
  readonly fence?: Fence;
}

/** Removes a resource and its op record (the final step of a delete). */
export interface RemoveRequest {
  readonly expect: Expect;
  readonly expectOp?: Expect;
  readonly by: Actor;
  readonly fence?: Fence;
}

/**
 * An op record exactly as an adapter stored it (value and revisions), in that adapter's own
 * encoding — opaque to everyone else. A job message carries it, so that the worker's claim can
 * compare against it instead of reading the op first (`OpUpdateRequest.assume`).
 */
export type StoredOp = string & { readonly __storedOp: true };

/** A conditional change of an op record alone: claim, hand back, mark published. */
export interface OpUpdateRequest {
  readonly expect: Expect;
  readonly set: OpPatch;
  readonly fence?: Fence;
  /**
   * The op as a job message carried it: the first attempt compares against it — its revision and
   * its exact content — instead of reading the op first. When the op changed since (or the token
   * is not this adapter's), the store reads it and decides again, as without it.
   */
  readonly assume?: StoredOp;
  /** Also read the resource in the same atomic step; the result then carries it as `record`. */
  readonly withRecord?: boolean;
}

/**
 * The outcome of a write on a resource. `record` is the record as written (or as removed);
 * `stored`, when the adapter has one, is the op as written, for a job message.
 */
export type TransitionResult<R> =
  | { readonly ok: true; readonly revision: string; readonly record: R; readonly op: OpRecord | null; readonly stored?: StoredOp }
  | { readonly ok: false; readonly failed: FailedCondition };

/**
 * The outcome of a write on an op record. With `withRecord`, `record` is the resource as it was
 * at the write — null when it does not exist; absent when the adapter could not tell (a write
 * reconciled after its answer was lost), so the caller reads it.
 */
export type OpUpdateResult =
  | { readonly ok: true; readonly revision: string; readonly op: OpRecord; readonly record?: ResourceRecord | null; readonly stored?: StoredOp }
  | { readonly ok: false; readonly failed: FailedCondition };

/** Filters of a resource listing; every one given must match. */
export interface ResourceFilter {
  readonly status?: string;
  readonly projectId?: string;
  readonly name?: string;
  /** Snapshots of one volume. */
  readonly volumeId?: string;
}

/** One sort key; ties fall through to the next key, then to `id`. */
export interface SortKey {
  readonly key: string;
  readonly dir: 'asc' | 'desc';
}

/**
 * A listing request: Cinder's filters, sort and limit/marker pagination. Only what an index
 * serves is accepted (list-plan.ts); anything else is an `InvalidInputError`, never a scan.
 */
export interface ListQuery {
  readonly filter?: ResourceFilter;
  /**
   * Default: `created_at` descending, then `id` descending (Cinder's default). `created_at` and
   * `id` follow the keys given, in the first key's direction (Cinder's `process_sort_params`).
   */
  readonly sort?: readonly SortKey[];
  /** Default and maximum: `MAX_LIST_LIMIT` (1,000); a larger limit is capped. */
  readonly limit?: number;
  /** The id of the last item of the previous page; the page continues after its position. */
  readonly marker?: string;
  /** Also count every matching record (Cinder's `with_count`): one count over the index. */
  readonly withCount?: boolean;
}

/** One page of a listing. */
export interface Page<R> {
  readonly items: readonly R[];
  /** How many records match the filter, over all pages; only with `withCount`. */
  readonly total?: number;
  /** True when more items follow this page. */
  readonly more: boolean;
}

/** Filters of an op listing; every one given must match. */
export interface OpFilter {
  readonly type?: ResourceType;
  readonly cluster?: string;
  readonly ownerHost?: string;
  readonly ownerIncarnation?: string;
  /** `queued`: nobody owns it; `owned`: someone does. */
  readonly ownership?: 'queued' | 'owned';
  /** Queued ops never confirmed published, created before this epoch ms (the republish sweep). */
  readonly unpublishedBefore?: number;
}

/** See the module doc. Every method touches the backend; see each adapter's failure semantics. */
export interface StateStore {
  readonly backend: 'etcd' | 'sqlite';
  /** Creates a resource (conditional on its absence) and, atomically, its op record. */
  create<T extends ResourceType>(type: T, request: CreateRequest<RecordOf<T>>): Promise<TransitionResult<RecordOf<T>>>;
  /** Changes a resource conditionally, with its op record in the same write. */
  transition<T extends ResourceType>(ref: { readonly type: T; readonly id: string }, request: TransitionRequest<RecordOf<T>>): Promise<TransitionResult<RecordOf<T>>>;
  /** Removes a resource and its op record conditionally (the final delete). */
  remove<T extends ResourceType>(ref: { readonly type: T; readonly id: string }, request: RemoveRequest): Promise<TransitionResult<RecordOf<T>>>;
  /** Changes a resource's op record conditionally (claim, hand back, mark published). */
  updateOp(ref: ResourceRef, request: OpUpdateRequest): Promise<OpUpdateResult>;
  get<T extends ResourceType>(ref: { readonly type: T; readonly id: string }): Promise<RecordOf<T> | undefined>;
  /**
   * One page, read from an index: its cost does not grow with the number of records.
   *
   * @throws InvalidInputError for an unknown marker, or a sort or filter no index serves.
   */
  list<T extends ResourceType>(type: T, query?: ListQuery): Promise<Page<RecordOf<T>>>;
  getOp(ref: ResourceRef): Promise<OpRecord | undefined>;
  /** Ops matching the filter, oldest first. */
  listOps(filter?: OpFilter): Promise<OpRecord[]>;
  /**
   * Stamps `publishedAt` on every op of `ops` that is still exactly as given (same revision) —
   * ops claimed, finished or changed since are left alone — in one request for all of them.
   * Best effort: resolves with how many were stamped. The API stamps in batches, a little after
   * the broker confirmed the jobs, so that an op claimed at once costs no stamp at all.
   */
  markPublished(ops: readonly OpRecord[], publishedAt: number): Promise<number>;
  /** The op a {@link StoredOp} of this adapter describes (not checked against the store); undefined for any other token. */
  opOfStored(stored: StoredOp): OpRecord | undefined;
  /** Idempotent. */
  close(): Promise<void>;
}

export type { Expect, FailedCondition, OpRecord, ResourceRef, ResourceType, SnapshotRecord, VolumeRecord };
