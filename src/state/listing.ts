/**
 * Filtering and ordering of op listings (pure). Ops exist only while their operation is in
 * flight, so an op listing is bounded by the work in flight, not by the number of resources;
 * resource listings are paged from indexes (list-plan.ts).
 */
import type { OpRecord } from './records.js';
import type { OpFilter } from './state-store.js';

function compareValues(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** True when the op matches every filter given. */
export function matchesOpFilter(op: OpRecord, filter: OpFilter = {}): boolean {
  if (filter.type !== undefined && op.type !== filter.type) return false;
  if (filter.cluster !== undefined && op.cluster !== filter.cluster) return false;
  if (filter.ownerHost !== undefined && op.owner?.host !== filter.ownerHost) return false;
  if (filter.ownerIncarnation !== undefined && op.owner?.incarnation !== filter.ownerIncarnation) return false;
  if (filter.ownership === 'queued' && op.owner !== null) return false;
  if (filter.ownership === 'owned' && op.owner === null) return false;
  if (filter.unpublishedBefore !== undefined && (op.owner !== null || op.publishedAt !== null || op.createdAt >= filter.unpublishedBefore)) {
    return false;
  }
  return true;
}

/** Ops oldest first, then by type and id. */
export function sortOps(ops: readonly OpRecord[]): OpRecord[] {
  return [...ops].sort((a, b) => a.createdAt - b.createdAt || compareValues(a.type, b.type) || compareValues(a.id, b.id));
}
