/**
 * The keys one etcd write reads, compares and changes, and what it saw of them. Pure: this
 * module builds the compares and reads of the write's transaction and reads their responses
 * back; etcd-writer.ts sends them. The reads are in one fixed order — resource, op, parent,
 * children count, holds count, then the fence's guard keys — which {@link seenAt} and the
 * writer's guard check rely on.
 */
import type { ICompare, IRequestOp, IResponseOp } from 'etcd3';
import { guardCompare } from '../etcd/guards.js';
import type { KeyLayout } from '../etcd/keys.js';
import type { Fence } from '../fence.js';
import { countAt, countOp, type KeyState, modIs, rangeIsEmpty, rangeOp, stateAt, valueIs } from './etcd-txn.js';
import type { ResourceRef } from './records.js';

/** The keys one write reads, compares and changes. */
export interface WriteKeys {
  readonly res: string;
  readonly op: string;
  readonly parent?: string;
  readonly childrenPrefix?: string;
  readonly holdsPrefix?: string;
  /** The key whose value tells whether the write landed. */
  readonly primary: 'res' | 'op';
  /** Whether the transaction compares the resource key (an op-only update does not). */
  readonly compareRes: boolean;
}

/** What a write saw of its keys. */
export interface Seen {
  readonly res: KeyState | null;
  readonly op: KeyState | null;
  readonly parent?: KeyState | null;
  readonly children?: number;
  readonly holds?: number;
  /** `op` came from a job message, not from etcd: the write compares its content too. */
  readonly opAssumed?: boolean;
}

/** The keys of a write to `ref`: its record and op, and the counts its conditions need. */
export function writeKeysOf(layout: KeyLayout, ref: ResourceRef, primary: 'res' | 'op', children = false, holds = false): WriteKeys {
  return {
    res: layout.resource(ref.type, ref.id),
    op: layout.op(ref.type, ref.id),
    ...(children ? { childrenPrefix: layout.volumeSnapshots(ref.id) } : {}),
    ...(holds ? { holdsPrefix: layout.sourceHolds(ref.type, ref.id) } : {}),
    primary,
    compareRes: true,
  };
}

/** The state of the write's primary key (see {@link WriteKeys.primary}). */
export function primaryOf(keys: WriteKeys, seen: Seen): KeyState | null {
  return keys.primary === 'res' ? seen.res : seen.op;
}

/** Whether the primary key holds exactly what a write intended (null: it deletes the key). */
export function isPrimary(keys: WriteKeys, seen: Seen, intended: string | null): boolean {
  const state = primaryOf(keys, seen);
  return intended === null ? state === null : state?.json === intended;
}

/** The write's compares: every key as seen, and every fence guard. */
export function writeCompares(keys: WriteKeys, seen: Seen, fence: Fence): ICompare[] {
  const compares = [modIs(keys.op, seen.op?.mod ?? '0')];
  // A state a message carried is trusted only byte for byte: the put must replace exactly it.
  if (seen.opAssumed && seen.op) compares.push(valueIs(keys.op, seen.op.json));
  if (keys.compareRes) compares.push(modIs(keys.res, seen.res?.mod ?? '0'));
  if (keys.parent !== undefined) compares.push(modIs(keys.parent, seen.parent?.mod ?? '0'));
  if (keys.holdsPrefix !== undefined && seen.holds === 0) compares.push(rangeIsEmpty(keys.holdsPrefix));
  return [...compares, ...fence.guards.map(guardCompare)];
}

/** Reads of every key a write depends on, in the fixed order (see {@link seenAt}), then the fence's guard keys. */
export function writeReads(keys: WriteKeys, fence: Fence): IRequestOp[] {
  const reads = [rangeOp(keys.res), rangeOp(keys.op)];
  if (keys.parent !== undefined) reads.push(rangeOp(keys.parent));
  if (keys.childrenPrefix !== undefined) reads.push(countOp(keys.childrenPrefix));
  if (keys.holdsPrefix !== undefined) reads.push(countOp(keys.holdsPrefix));
  return [...reads, ...fence.guards.map((g) => rangeOp(g.key))];
}

/** How many of {@link writeReads} come before the guard keys. */
export function readCount(keys: WriteKeys): number {
  return 2 + (keys.parent === undefined ? 0 : 1) + (keys.childrenPrefix === undefined ? 0 : 1) + (keys.holdsPrefix === undefined ? 0 : 1);
}

/** What the responses of {@link writeReads} say of the write's keys. */
export function seenAt(keys: WriteKeys, responses: readonly IResponseOp[]): Seen {
  return {
    res: stateAt(responses, 0),
    op: stateAt(responses, 1),
    ...(keys.parent === undefined ? {} : { parent: stateAt(responses, 2) }),
    ...(keys.childrenPrefix === undefined ? {} : { children: countAt(responses, keys.parent === undefined ? 2 : 3) }),
    ...(keys.holdsPrefix === undefined ? {} : { holds: countAt(responses, readCount(keys) - 1) }),
  };
}
