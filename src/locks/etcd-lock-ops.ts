/**
 * The etcd requests of the fair lock and the reading of their answers; no I/O here.
 *
 * Layout (etcd's `concurrency` package and `etcdctl lock`): a lock named N is the prefix
 * `<prefix>/locks/N/`; each contender puts `<prefix>/locks/N/<leaseHex>` on its session lease.
 * The owner is the key with the lowest create revision; every other contender waits for the
 * key created just before its own (its predecessor), and only for that one.
 */
import type { IKeyValue, IRangeRequest, IRequestOp, ITxnRequest, ITxnResponse } from 'etcd3';
import { failedGuard, guardCompare, guardedKeyOf } from '../etcd/guards.js';
import type { KeyLayout } from '../etcd/keys.js';
import type { Fence } from '../fence.js';
import type { LockHolder } from './errors.js';

/** The keys of one contender (one session) on one lock. */
export class LockKeys {
  /** `<prefix>/locks/<name>/`. */
  readonly prefix: string;
  /** `<prefix>/locks/<name>/<leaseHex>`. */
  readonly myKey: string;
  readonly prefixBuf: Buffer;
  readonly rangeEndBuf: Buffer;
  readonly myKeyBuf: Buffer;

  constructor(
    layout: KeyLayout,
    readonly name: string,
    leaseHex: string,
  ) {
    this.prefix = `${layout.lock(name)}/`;
    this.myKey = `${this.prefix}${leaseHex}`;
    this.prefixBuf = Buffer.from(this.prefix);
    // The prefix ends in '/', so the end of its range is the same bytes ending in '0' ('/' + 1).
    this.rangeEndBuf = Buffer.from(this.prefix);
    this.rangeEndBuf[this.rangeEndBuf.length - 1] = (this.rangeEndBuf[this.rangeEndBuf.length - 1] as number) + 1;
    this.myKeyBuf = Buffer.from(this.myKey);
  }

  /** Every key of the lock, sorted by create revision. */
  byCreate(order: 'Ascend' | 'Descend', limit: number, extra: Partial<IRangeRequest> = {}): IRequestOp {
    return {
      request_range: { key: this.prefixBuf, range_end: this.rangeEndBuf, sort_target: 'Create', sort_order: order, limit, ...extra },
    };
  }
}

/** A key seen under the lock prefix. */
export interface QueuedKey {
  readonly key: string;
  readonly createRevision: string;
  /** Its contender's incarnation (the key's value; absent for a holder hearth did not write). */
  readonly incarnation?: string;
}

/** What the enqueue transaction found. */
export interface Enqueued {
  /** Create revision of my key: the fencing token and my place in the queue. */
  readonly myRev: string;
  readonly owner: boolean;
  /** Who owns the lock (lowest create revision). */
  readonly holder: LockHolder | undefined;
  /** The key created just before mine, when the answer tells (a fresh key); else undefined. */
  readonly predecessor: QueuedKey | undefined;
  /** My predecessor is the owner: no key lies below it, so its deletion makes the lock mine. */
  readonly predecessorIsOwner: boolean;
}

/**
 * One transaction: if my key does not exist, put it (on my lease, value = my incarnation) and
 * read the owner and the last two keys by create revision (mine and my predecessor); else read
 * my key and the owner. Uncontended, that is the whole acquire.
 */
export function enqueueRequest(keys: LockKeys, leaseId: string, value: string): ITxnRequest {
  return {
    compare: [{ key: keys.myKeyBuf, target: 'Create', result: 'Equal', create_revision: 0 }],
    success: [
      { request_put: { key: keys.myKeyBuf, value: Buffer.from(value), lease: leaseId } },
      keys.byCreate('Ascend', 1),
      // With values (the contenders' incarnations): a predecessor that dies owning the lock is handed off from only once fenced.
      keys.byCreate('Descend', 2),
    ],
    failure: [{ request_range: { key: keys.myKeyBuf, keys_only: true } }, keys.byCreate('Ascend', 1)],
  };
}

/** Reads the answer of {@link enqueueRequest}. */
export function parseEnqueue(keys: LockKeys, res: ITxnResponse): Enqueued {
  if (res.succeeded) {
    const ownerKv = res.responses[1]?.response_range.kvs[0];
    const tail = res.responses[2]?.response_range.kvs ?? [];
    // My key was created by this very transaction, so it is the last one by create revision.
    const predKv = tail[0] !== undefined && kvKey(tail[0]) === keys.myKey ? tail[1] : undefined;
    const myRev = res.header.revision;
    return {
      myRev,
      owner: ownerKv?.create_revision === myRev,
      holder: ownerKv ? holderOf(keys, ownerKv) : undefined,
      predecessor: predKv ? queued(predKv) : undefined,
      predecessorIsOwner: predKv !== undefined && ownerKv?.create_revision === predKv.create_revision,
    };
  }
  // My key was already there (an earlier acquire of this session whose clean-up is pending):
  // keep its place in the queue, as etcd's Go Mutex does. The wait starts with a re-read.
  const mine = res.responses[0]?.response_range.kvs[0];
  const ownerKv = res.responses[1]?.response_range.kvs[0];
  const myRev = mine?.create_revision ?? '0';
  return {
    myRev,
    owner: mine !== undefined && ownerKv?.create_revision === myRev,
    holder: ownerKv ? holderOf(keys, ownerKv) : undefined,
    predecessor: undefined,
    predecessorIsOwner: false,
  };
}

/** What a re-check found. */
export interface Rechecked {
  /** My key exists, still created at my revision. */
  readonly mineExists: boolean;
  /** Who owns the lock now (lowest create revision), if anyone. */
  readonly owner: LockHolder | undefined;
  /** The key with the largest create revision below mine; none means the lock is mine. */
  readonly predecessor: QueuedKey | undefined;
  /** My predecessor is the owner (the lowest key): its deletion makes the lock mine. */
  readonly predecessorIsOwner: boolean;
}

/**
 * Read-only transaction, linearizable: my key, the key created last before mine (the Go
 * Mutex's `waitDeletes` read and its check that my own key still exists, etcd-io/etcd#11456),
 * and the owner — when the owner is my predecessor, the hand-off needs no second read.
 */
export function recheckRequest(keys: LockKeys, myRev: string): ITxnRequest {
  return {
    compare: [],
    success: [
      { request_range: { key: keys.myKeyBuf, keys_only: true } },
      keys.byCreate('Descend', 1, { max_create_revision: (BigInt(myRev) - 1n).toString() }),
      // With its value (the holder's incarnation): a hand-off from a holder that died waits for its fence.
      keys.byCreate('Ascend', 1),
    ],
    failure: [],
  };
}

/** Reads the answer of {@link recheckRequest}. */
export function parseRecheck(keys: LockKeys, res: ITxnResponse, myRev: string): Rechecked {
  const mine = res.responses[0]?.response_range.kvs[0];
  const predKv = res.responses[1]?.response_range.kvs[0];
  const ownerKv = res.responses[2]?.response_range.kvs[0];
  return {
    mineExists: mine?.create_revision === myRev,
    owner: ownerKv ? holderOf(keys, ownerKv) : undefined,
    predecessor: predKv ? queued(predKv) : undefined,
    predecessorIsOwner: predKv !== undefined && ownerKv?.create_revision === predKv.create_revision,
  };
}

/** Deletes my key only if it is still the one created at `myRev` (any rev when unknown). */
/**
 * The hand-off mark: rewrites my key (same value, same lease) only if it is still mine and
 * `fence` — the end record of the dead owner I take over from — holds. Its revision, in etcd's
 * history, comes after that end record's: the proof that the lock moved only once the dead owner
 * was fenced.
 */
export function handOffMarkRequest(keys: LockKeys, myRev: string, leaseId: string, value: string, fence: Fence): ITxnRequest {
  return {
    compare: [{ key: keys.myKeyBuf, target: 'Create', result: 'Equal', create_revision: myRev }, ...fence.guards.map(guardCompare)],
    success: [{ request_put: { key: keys.myKeyBuf, value: Buffer.from(value), lease: leaseId } }],
    failure: [{ request_range: { key: keys.myKeyBuf, keys_only: true } }, ...fence.guards.map((g) => ({ request_range: { key: Buffer.from(g.key), keys_only: true } }))],
  };
}

/** Reads the answer of {@link handOffMarkRequest}: written, my key gone, or the guard that failed (described). */
export function parseHandOffMark(res: ITxnResponse, myRev: string, fence: Fence): { readonly ok: true } | { readonly ok: false; readonly mineGone: boolean; readonly failed: string | undefined } {
  if (res.succeeded) return { ok: true };
  const mine = res.responses[0]?.response_range.kvs[0];
  return { ok: false, mineGone: mine?.create_revision !== myRev, failed: failedGuard(fence.guards, fence.guards.map((_, i) => guardedKeyOf(res.responses[1 + i]?.response_range.kvs[0]))) };
}

export function releaseRequest(keys: LockKeys, myRev: string | undefined): ITxnRequest {
  return {
    compare: myRev === undefined ? [] : [{ key: keys.myKeyBuf, target: 'Create', result: 'Equal', create_revision: myRev }],
    success: [{ request_delete_range: { key: keys.myKeyBuf } }],
    failure: [],
  };
}

/** The holder a lock key names: lease from the key, incarnation from the value (hearth writes it). */
export function holderOf(keys: LockKeys, kv: IKeyValue): LockHolder {
  const key = kvKey(kv);
  const value = kv.value?.toString() ?? '';
  return {
    key,
    leaseHex: key.slice(keys.prefix.length),
    ...(value === '' ? {} : { incarnation: value }),
  };
}

/** The holder a queued key names (its lease from the key, its incarnation from the value). */
export function holderOfQueued(keys: LockKeys, q: QueuedKey): LockHolder {
  return { key: q.key, leaseHex: q.key.slice(keys.prefix.length), ...(q.incarnation === undefined ? {} : { incarnation: q.incarnation }) };
}

function queued(kv: IKeyValue): QueuedKey {
  const value = kv.value?.toString() ?? '';
  return { key: kvKey(kv), createRevision: kv.create_revision, ...(value === '' ? {} : { incarnation: value }) };
}

function kvKey(kv: IKeyValue): string {
  return kv.key.toString();
}
