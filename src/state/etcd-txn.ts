/**
 * Raw etcd transaction pieces for the etcd state store: compares, range/put/delete operations
 * and the reading of their responses. The store sends raw `KV.Txn` requests (not the etcd3
 * builder) so that one transaction can carry every compare, write and diagnostic read at once.
 */
import { CompareResult, CompareTarget, type ICompare, type IKeyValue, type IRequestOp, type IResponseOp } from 'etcd3';
import { type KeyLayout, prefixEnd } from '../etcd/keys.js';
import type { ResourceRef } from './records.js';

/** One key as read: its value and revisions; `null` when absent. */
export interface KeyState {
  readonly json: string;
  readonly mod: string;
  readonly create: string;
  readonly version: string;
}

/** A key's state from a range response's first kv. */
export function keyStateOf(kv: IKeyValue | undefined): KeyState | null {
  if (!kv) return null;
  return { json: kv.value.toString(), mod: kv.mod_revision, create: kv.create_revision, version: kv.version };
}

/** `mod_revision(key) == mod` (`'0'`: the key does not exist). */
export function modIs(key: string, mod: string): ICompare {
  return { key: Buffer.from(key), target: CompareTarget.Mod, result: CompareResult.Equal, mod_revision: mod };
}

/**
 * No key under `prefix` exists: every key of the range has create revision 0, which holds only
 * for an empty range (a range compare is evaluated on each key in it; etcd ≥ 3.3).
 */
export function rangeIsEmpty(prefix: string): ICompare {
  return { key: Buffer.from(prefix), range_end: prefixEnd(prefix), target: CompareTarget.Create, result: CompareResult.Equal, create_revision: '0' };
}

/** `value(key) == value`: the key holds exactly these bytes. */
export function valueIs(key: string, value: string): ICompare {
  return { key: Buffer.from(key), target: CompareTarget.Value, result: CompareResult.Equal, value: Buffer.from(value) };
}

export function rangeOp(key: string): IRequestOp {
  return { request_range: { key: Buffer.from(key) } };
}


/** Counts the keys under a prefix. */
export function countOp(prefix: string): IRequestOp {
  return { request_range: { key: Buffer.from(prefix), range_end: prefixEnd(prefix), count_only: true } };
}

export function putOp(key: string, value: string): IRequestOp {
  return { request_put: { key: Buffer.from(key), value: Buffer.from(value) } };
}

export function deleteOp(key: string): IRequestOp {
  return { request_delete_range: { key: Buffer.from(key) } };
}

/** The key state in the `index`-th response (a range of one key). */
export function stateAt(responses: readonly IResponseOp[], index: number): KeyState | null {
  return keyStateOf(responses[index]?.response_range.kvs[0]);
}

/** The count in the `index`-th response (a count-only range). */
export function countAt(responses: readonly IResponseOp[], index: number): number {
  return Number(responses[index]?.response_range.count ?? 0);
}


/** The writes that keep `index/source-holds/` in step with a volume's held source, before and after a write. */
export function holdIndexOps(keys: KeyLayout, volumeId: string, before: ResourceRef | undefined, after: ResourceRef | undefined): IRequestOp[] {
  if (before && !after) return [deleteOp(keys.sourceHold(before.type, before.id, volumeId))];
  if (after && !before) return [putOp(keys.sourceHold(after.type, after.id, volumeId), '')];
  return [];
}
