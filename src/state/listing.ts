/**
 * Filtering, sorting and limit/marker pagination of resource listings, as Cinder pages them.
 * Pure: both adapters fetch the candidate records and page them here, so pages are the same on
 * either backend.
 */
import { previewText } from '../preview.js';
import { InvalidInputError } from '../errors.js';
import type { OpRecord, ResourceRecord } from './records.js';
import type { ListQuery, OpFilter, Page, ResourceFilter, SortKey } from './state-store.js';

/** Cinder's default order: newest first. */
export const DEFAULT_SORT: readonly SortKey[] = [
  { key: 'created_at', dir: 'desc' },
  { key: 'id', dir: 'desc' },
];

/** True when the record matches every filter given. */
export function matchesFilter(record: ResourceRecord, filter: ResourceFilter = {}): boolean {
  if (filter.status !== undefined) {
    const statuses: readonly string[] = typeof filter.status === 'string' ? [filter.status] : filter.status;
    if (!statuses.includes(record.status)) return false;
  }
  if (filter.projectId !== undefined && record.project_id !== filter.projectId) return false;
  if (filter.cluster !== undefined && record.cluster !== filter.cluster) return false;
  if (filter.name !== undefined && record.name !== filter.name) return false;
  if (filter.volumeId !== undefined && (!('volume_id' in record) || record.volume_id !== filter.volumeId)) return false;
  return true;
}

function compareValues(a: unknown, b: unknown): number {
  if (a === b) return 0;
  // Missing values sort first in ascending order, as NULLs do in SQL.
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const x = typeof a === 'string' ? a : JSON.stringify(a);
  const y = typeof b === 'string' ? b : JSON.stringify(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Sorts by the keys given, then by `id` so the order is total (markers need that). */
export function sortRecords<R extends ResourceRecord>(records: readonly R[], sort: readonly SortKey[] = DEFAULT_SORT): R[] {
  const keys = sort.some((k) => k.key === 'id') ? sort : [...sort, { key: 'id', dir: 'desc' as const }];
  return [...records].sort((a, b) => {
    for (const { key, dir } of keys) {
      const c = compareValues((a as unknown as Record<string, unknown>)[key], (b as unknown as Record<string, unknown>)[key]);
      if (c !== 0) return dir === 'asc' ? c : -c;
    }
    return 0;
  });
}

/**
 * Filters, sorts and cuts one page. The page starts after `marker` (the last id of the previous
 * page); an unknown marker is bad input, as in Cinder.
 *
 * @throws InvalidInputError when the marker is not among the matching records.
 */
export function pageOf<R extends ResourceRecord>(records: readonly R[], query: ListQuery = {}): Page<R> {
  const matching = sortRecords(
    records.filter((r) => matchesFilter(r, query.filter)),
    query.sort,
  );
  let start = 0;
  if (query.marker !== undefined) {
    const index = matching.findIndex((r) => r.id === query.marker);
    if (index < 0) throw new InvalidInputError(`Marker ${previewText(query.marker)} could not be found.`);
    start = index + 1;
  }
  const end = query.limit === undefined ? matching.length : start + query.limit;
  return { items: matching.slice(start, end), total: matching.length, more: end < matching.length };
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
