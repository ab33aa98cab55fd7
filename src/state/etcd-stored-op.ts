/**
 * The etcd store's op tokens (`StoredOp`) and published stamps: the pieces that let an op's job
 * carry the op as stored, and the API stamp many ops in one request. No I/O here.
 */
import type { IRequestOp } from 'etcd3';
import type { KeyState } from './etcd-txn.js';
import { modIs, putOp } from './etcd-txn.js';
import { planOpUpdate } from './plan.js';
import type { OpRecord } from './records.js';
import type { StoredOp } from './state-store.js';

/**
 * Stamps (nested transactions) per request. etcd accepts 128 operations in one transaction by
 * default (`--max-txn-ops`) and gives a nested transaction only the budget its
 * parent left (`--max-txn-ops` minus the parent's own count), so a parent of 128 leaves its
 * nested ones none and is refused ("too many operations in txn request"): a parent of n nested
 * transactions of one compare and one put each is accepted up to n = 127.
 */
export const STAMPS_PER_TXN = 100;

const STORED = /^e1:(\d+):(\d+):(\d+):/;

/** A key's state as a {@link StoredOp}: `e1:<mod>:<create>:<version>:<value>`. */
export function encodeStoredOp(state: KeyState): StoredOp {
  return `e1:${state.mod}:${state.create}:${state.version}:${state.json}` as StoredOp;
}

/** The state a {@link StoredOp} of the etcd store holds; undefined for anything else. */
export function decodeStoredOp(stored: string): KeyState | undefined {
  const m = STORED.exec(stored);
  if (!m) return undefined;
  return { mod: m[1] as string, create: m[2] as string, version: m[3] as string, json: stored.slice(m[0].length) };
}

/** One transaction's worth of stamps: nested txns, one per op, and the op keys in the same order. */
export interface StampBatch {
  readonly ops: IRequestOp[];
  readonly keys: string[];
}

/**
 * The stamps of `ops`, in batches of at most {@link STAMPS_PER_TXN}: each a nested txn that puts the
 * op with `publishedAt` only if its key is still at the op's revision (claimed, finished or
 * changed since: left alone), encoded by `encode` (the record codec). An op given twice is stamped once (etcd refuses a key written
 * twice in one transaction).
 */
export function stampBatches(
  ops: readonly OpRecord[],
  keyOf: (op: OpRecord) => string,
  publishedAt: number,
  encode: (op: object) => string,
): StampBatch[] {
  const byKey = new Map(ops.map((op) => [keyOf(op), op]));
  const batches: StampBatch[] = [];
  let batch: StampBatch = { ops: [], keys: [] };
  for (const [key, op] of byKey) {
    const plan = planOpUpdate(op, { expect: {}, set: { publishedAt } }, publishedAt);
    const json = encode('op' in plan ? plan.op : op);
    batch.ops.push({ request_txn: { compare: [modIs(key, op.revision)], success: [putOp(key, json)], failure: [] } });
    batch.keys.push(key);
    if (batch.ops.length === STAMPS_PER_TXN) {
      batches.push(batch);
      batch = { ops: [], keys: [] };
    }
  }
  if (batch.ops.length > 0) batches.push(batch);
  return batches;
}
