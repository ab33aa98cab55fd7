/**
 * Fence guards (src/fence.ts) in etcd transactions: each guard becomes a compare on its key's
 * create revision, and when a transaction fails, the create revisions read back in its failure
 * branch say which guard broke.
 */
import { CompareResult, CompareTarget, type ICompare } from 'etcd3';
import { describeGuard, type KeyGuard } from '../fence.js';

/** A fence guard as a compare on the key's create revision. */
export function guardCompare(guard: KeyGuard): ICompare {
  return {
    key: Buffer.from(guard.key),
    target: CompareTarget.Create,
    result: guard.expect === 'equal' ? CompareResult.Equal : CompareResult.NotEqual,
    create_revision: guard.createRevision,
  };
}

/** Whether `guard` holds for a key whose create revision is `actual` (`'0'`: absent). */
export function guardHolds(guard: KeyGuard, actual: string): boolean {
  return guard.expect === 'equal' ? actual === guard.createRevision : actual !== guard.createRevision;
}

/** The first guard that does not hold against the create revisions read (`'0'`: absent), described; undefined when all hold. */
export function failedGuard(guards: readonly KeyGuard[], createRevisions: readonly (string | undefined)[]): string | undefined {
  for (const [i, guard] of guards.entries()) {
    const actual = createRevisions[i] ?? '0';
    if (!guardHolds(guard, actual)) return `${describeGuard(guard)} (is ${actual})`;
  }
  return undefined;
}
