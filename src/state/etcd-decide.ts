/**
 * What an etcd write sends once the planner (plan.ts) has decided: the operations of its one
 * transaction — the record, its op, the parent's touch, and every listing and holds index entry
 * the change moves, so that no revision shows them disagreeing — and how to build the call's
 * result once the transaction committed. Nothing here reads or sends: the states come from the
 * write's read (or the seen cache), and etcd-writer.ts sends the operations.
 */
import type { IRequestOp, IResponseOp } from 'etcd3';
import type { KeyLayout } from '../etcd/keys.js';
import { indexOps } from './etcd-listing.js';
import type { SeenCache } from './etcd-seen-cache.js';
import { deleteOp, holdIndexOps, putOp, rangeOp, stateAt } from './etcd-txn.js';
import type { Seen, WriteKeys } from './etcd-write-keys.js';
import { type Plan, planOpUpdate } from './plan.js';
import type { RecordVersions } from './record-versions.js';
import { heldSourceOf, type OpRecord, type ResourceRecord, type ResourceRef } from './records.js';
import type { OpUpdateRequest, OpUpdateResult, TransitionResult } from './state-store.js';

/** A decided write: its operations, and the result once it committed at a revision. */
export interface Decided<T> {
  readonly success: IRequestOp[];
  /** What the write puts on its primary key; null when it deletes it. */
  readonly intended: string | null;
  /** What the txn writes per key (null: deleted), with the record it encodes. */
  readonly written: ReadonlyMap<string, { readonly json: string; readonly body: object } | null>;
  /** The result at `revision`; `responses` are the txn's (absent when the write was reconciled). */
  readonly result: (revision: string, responses?: readonly IResponseOp[]) => T;
}

/** A write refused on what it saw (a failed condition, returned as a value), or decided. */
export type Decision<T> = { readonly refused: T } | Decided<T>;

/** What the decisions need of the store: its key layout, record codec and seen cache. */
export interface DecideDeps {
  readonly keys: KeyLayout;
  readonly versions: RecordVersions;
  /** Decodes the states seen (memoised); an op update's result remembers the record it read. */
  readonly cache: SeenCache;
}

/** Turns a resource plan into txn operations and the result builder. */
export function decideResource<R extends ResourceRecord>(
  deps: DecideDeps,
  ref: ResourceRef,
  keys: WriteKeys,
  seen: Seen,
  plan: Plan<R>,
  touchParent = true,
): Decision<TransitionResult<R>> {
  if ('failed' in plan) return { refused: { ok: false, failed: plan.failed } };
  const { cache, versions } = deps;
  const { record, op } = plan.write;
  const success: IRequestOp[] = [];
  const written = new Map<string, { json: string; body: object } | null>();
  const json = record === null ? null : versions.encode(record);
  success.push(json === null ? deleteOp(keys.res) : putOp(keys.res, json));
  written.set(keys.res, record && json !== null ? { json, body: record } : null);
  if (op !== 'keep') {
    const opJson = op === null ? null : versions.encode(op);
    if (opJson !== null || seen.op !== null) {
      success.push(opJson === null ? deleteOp(keys.op) : putOp(keys.op, opJson));
      written.set(keys.op, op && opJson !== null ? { json: opJson, body: op } : null);
    }
  }
  const parent = keys.parent === undefined ? null : seen.parent;
  if (keys.parent !== undefined && parent && touchParent) {
    success.push(putOp(keys.parent, parent.json));
    written.set(keys.parent, { json: parent.json, body: cache.decode<object>(parent, keys.parent) as object });
  }
  // The listing indexes change in the same txn as the record: they never disagree (etcd-listing.ts).
  success.push(...indexOps(deps.keys, ref.type, cache.decode<ResourceRecord>(seen.res, keys.res), record as ResourceRecord | null));
  const snapshot = ref.type === 'snapshot' ? ((record ?? cache.decode<ResourceRecord>(seen.res, keys.res)) as { volume_id?: string } | null) : null;
  if (snapshot?.volume_id !== undefined && (seen.res === null || record === null)) {
    const index = deps.keys.volumeSnapshot(snapshot.volume_id, ref.id);
    success.push(record === null ? deleteOp(index) : putOp(index, ''));
  }
  // The source-holds index follows `source_held` (plan.ts). A holds condition that counted none is checked again at commit (`writeCompares`): a copy holds its source without rewriting it.
  if (ref.type === 'volume') success.push(...holdIndexOps(deps.keys, ref.id, heldSourceOf(cache.decode<ResourceRecord>(seen.res, keys.res)), heldSourceOf(record as ResourceRecord | null)));
  return {
    success,
    intended: json,
    written,
    result: (revision) => ({
      ok: true,
      revision,
      record: record === null ? (cache.decode<R>(seen.res, keys.res) as R) : ({ ...record, revision } as R),
      op: op === 'keep' ? cache.decode<OpRecord>(seen.op, keys.op) : op && { ...op, revision },
    }),
  };
}

/** Turns an op update into txn operations: a put of the op (and, when asked, a read of its record after it). */
export function decideOpUpdate(deps: DecideDeps, keys: WriteKeys, seen: Seen, request: OpUpdateRequest, now: number): Decision<OpUpdateResult> {
  const { cache } = deps;
  const plan = planOpUpdate(cache.decode<OpRecord>(seen.op, keys.op) ?? undefined, request, now);
  if ('failed' in plan) return { refused: { ok: false, failed: plan.failed } };
  const json = deps.versions.encode(plan.op);
  // The resource read in the same txn, after the put: as it is at the write's revision.
  const success = request.withRecord ? [putOp(keys.op, json), rangeOp(keys.res)] : [putOp(keys.op, json)];
  return {
    success,
    intended: json,
    written: new Map([[keys.op, { json, body: plan.op }]]),
    result: (revision, responses) => {
      const op = { ...plan.op, revision };
      if (!request.withRecord || responses === undefined) return { ok: true, revision, op };
      const state = stateAt(responses, 1);
      cache.remember(keys.res, state);
      return { ok: true, revision, op, record: cache.decode<ResourceRecord>(state, keys.res) };
    },
  };
}
