/**
 * Fence guards (src/fence.ts) in etcd transactions: each guard becomes a compare on its key's
 * create revision (mod revision, for a `ModGuard`; version, for a `VersionGuard`), and when a transaction fails, the
 * revisions read back in its failure branch say which guard broke.
 */
import { CompareResult, CompareTarget, type ICompare, type IKeyValue, type IRequestOp } from 'etcd3';
import { describeGuard, guardRevision, type KeyGuard } from '../fence.js';

/** A fence guard as a compare on the key's create (or mod) revision. */
export function guardCompare(guard: KeyGuard): ICompare {
  const { target, revision } = guardRevision(guard);
  const result = guard.expect === 'equal' ? CompareResult.Equal : CompareResult.NotEqual;
  if (target === 'version') return { key: Buffer.from(guard.key), target: CompareTarget.Version, result, version: revision };
  return target === 'mod'
    ? { key: Buffer.from(guard.key), target: CompareTarget.Mod, result, mod_revision: revision }
    : { key: Buffer.from(guard.key), target: CompareTarget.Create, result, create_revision: revision };
}

/** The deletions a write adds when it lands: the keys of its guards that ask to be released with it. */
export function releaseOps(guards: readonly KeyGuard[]): IRequestOp[] {
  const ops: IRequestOp[] = [];
  for (const g of guards) if ('releaseWithWrite' in g && g.releaseWithWrite === true) ops.push({ request_delete_range: { key: Buffer.from(g.key) } });
  return ops;
}

/** The revisions a guard may compare, of a key as read (absent: both `'0'`). */
export interface GuardedKey {
  readonly create: string;
  readonly mod: string;
  readonly version: string;
}

/** The revisions of a key read in a failure branch; absent → undefined. */
export function guardedKeyOf(kv: IKeyValue | undefined): GuardedKey | undefined {
  return kv === undefined ? undefined : { create: kv.create_revision, mod: kv.mod_revision, version: kv.version };
}

/** Whether `guard` holds for a key read as `actual` (undefined: absent). */
export function guardHolds(guard: KeyGuard, actual: GuardedKey | undefined): boolean {
  return guard.expect === 'equal' ? revisionOf(guard, actual) === guardRevision(guard).revision : revisionOf(guard, actual) !== guardRevision(guard).revision;
}

function revisionOf(guard: KeyGuard, actual: GuardedKey | undefined): string {
  const { target } = guardRevision(guard);
  return (target === 'mod' ? actual?.mod : target === 'version' ? actual?.version : actual?.create) ?? '0';
}

/** The first guard that does not hold against the keys read (undefined: absent), described; undefined when all hold. */
export function failedGuard(guards: readonly KeyGuard[], keys: readonly (GuardedKey | undefined)[]): string | undefined {
  for (const [i, guard] of guards.entries()) {
    const actual = keys[i];
    if (!guardHolds(guard, actual)) return `${describeGuard(guard)} (is ${revisionOf(guard, actual)})`;
  }
  return undefined;
}
