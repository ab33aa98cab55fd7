/**
 * How a resource listing is served from an index (pure: no I/O). Both adapters answer a page by
 * reading only that page from an ordered index — SQLite's B-tree indexes, etcd's index keys — so
 * a listing costs the same at 100,000 records as at 1,000. This module decides which index
 * serves a query (or refuses one no index serves, with Cinder's 400) and how its entries are
 * ordered, so that both adapters order every page identically.
 *
 * Orders served (Cinder's `process_sort_params`: the default keys `created_at`, `id` follow the
 * given ones, in the direction of the first):
 * - `created_at` then `id`, ascending or descending — the default, newest first;
 * - `name` then `created_at` then `id`, ascending or descending (a missing name sorts first
 *   ascending, as SQL's NULL).
 *
 * Filters served: the project (every non-admin listing), `status` (with the `created_at` orders
 * only), `name` (exact: a prefix of the name index, with either order), and a snapshot's
 * `volumeId` (read through the volume's snapshot index: bounded by that volume's snapshots).
 * Anything else is refused, never answered by scanning (docs/state.md, "Listing").
 */
import { InvalidInputError } from '../errors.js';
import type { ResourceRecord } from './records.js';
import type { ListQuery, SortKey } from './state-store.js';

/** The most items one page holds (Cinder's `osapi_max_limit`); larger limits are capped. */
export const MAX_LIST_LIMIT = 1_000;

/** Cinder's default order: newest first. */
export const DEFAULT_SORT: readonly SortKey[] = [
  { key: 'created_at', dir: 'desc' },
  { key: 'id', dir: 'desc' },
];

/** The sort keys an index serves, as the first key of a sort. */
export const INDEXED_SORT_KEYS: readonly string[] = ['created_at', 'name'];

/** An ordered index: its leading key, then `created_at`, then `id`, all in `dir`. */
export interface IndexOrder {
  readonly by: 'created_at' | 'name';
  readonly dir: 'asc' | 'desc';
}

/** A listing, as an index serves it. */
export interface ListPlan {
  readonly order: IndexOrder;
  /** Equality filters that select the index's scope. */
  readonly projectId?: string;
  readonly status?: string;
  /** Exact name: a prefix of the `name` index (order `by` is then `name`, equivalent to `created_at`). */
  readonly name?: string;
  /** Snapshots of one volume: read through that volume's snapshot index. */
  readonly volumeId?: string;
  /** Items of the page (capped at {@link MAX_LIST_LIMIT}). */
  readonly limit: number;
  readonly marker?: string;
  readonly withCount: boolean;
}

function unsupported(what: string): InvalidInputError {
  return new InvalidInputError(`Invalid input received: ${what} (see docs/state.md, "Listing").`);
}

/** Cinder's sort with its default keys appended in the first key's direction. */
export function normalizeSort(sort: readonly SortKey[] | undefined): SortKey[] {
  if (sort === undefined || sort.length === 0) return [...DEFAULT_SORT];
  const dir = sort[0]!.dir;
  const keys = [...sort];
  for (const key of ['created_at', 'id']) if (!keys.some((k) => k.key === key)) keys.push({ key, dir });
  return keys;
}

function orderOf(sort: readonly SortKey[]): IndexOrder {
  const keys = normalizeSort(sort);
  const first = keys[0]!;
  const dir = first.dir;
  const expected = first.key === 'name' ? ['name', 'created_at', 'id'] : ['created_at', 'id'];
  // Keys after `id` change nothing: the order is total at `id`.
  const idAt = keys.findIndex((k) => k.key === 'id');
  const effective = keys.slice(0, idAt + 1);
  const matches = effective.length === expected.length && effective.every((k, i) => k.key === expected[i] && k.dir === dir);
  if (!matches) {
    const given = keys.map((k) => `${k.key}:${k.dir}`).join(',');
    throw unsupported(`sorting by ${given} is not supported; supported sorts are created_at (then id) and name (then created_at, id), each all ascending or all descending`);
  }
  return { by: first.key as IndexOrder['by'], dir };
}

/**
 * The index plan of a query.
 *
 * @throws InvalidInputError for a sort or a combination of filters no index serves.
 */
export function planList(query: ListQuery = {}): ListPlan {
  const filter = query.filter ?? {};
  let order = orderOf(query.sort ?? DEFAULT_SORT);
  if (filter.status !== undefined && order.by === 'name' && filter.volumeId === undefined) {
    throw unsupported('sorting by name cannot be combined with a status filter');
  }
  if (filter.name !== undefined && filter.volumeId === undefined) {
    if (filter.status !== undefined) throw unsupported('the name filter cannot be combined with a status filter');
    // Within one name the name order is the created_at order.
    order = { by: 'name', dir: order.dir };
  }
  const limit = Math.min(query.limit ?? MAX_LIST_LIMIT, MAX_LIST_LIMIT);
  return {
    order,
    ...(filter.projectId === undefined ? {} : { projectId: filter.projectId }),
    ...(filter.status === undefined ? {} : { status: filter.status }),
    ...(filter.name === undefined ? {} : { name: filter.name }),
    ...(filter.volumeId === undefined ? {} : { volumeId: filter.volumeId }),
    limit,
    ...(query.marker === undefined ? {} : { marker: query.marker }),
    withCount: query.withCount === true,
  };
}

/** True when the record matches the plan's filters. */
export function matchesPlan(record: ResourceRecord, plan: ListPlan): boolean {
  if (plan.projectId !== undefined && record.project_id !== plan.projectId) return false;
  if (plan.status !== undefined && record.status !== plan.status) return false;
  if (plan.name !== undefined && record.name !== plan.name) return false;
  if (plan.volumeId !== undefined && (!('volume_id' in record) || record.volume_id !== plan.volumeId)) return false;
  return true;
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Compares two records in the plan's order (bytes of UTF-8, as both indexes compare). */
export function compareInOrder(a: ResourceRecord, b: ResourceRecord, order: IndexOrder): number {
  let c = 0;
  if (order.by === 'name') {
    if (a.name === null || b.name === null) c = a.name === b.name ? 0 : a.name === null ? -1 : 1;
    else c = compareBytes(a.name, b.name);
  }
  if (c === 0) c = a.created_at - b.created_at;
  if (c === 0) c = compareBytes(a.id, b.id);
  return order.dir === 'asc' ? c : -c;
}

/** The marker error, as Cinder words it. */
export function markerNotFound(marker: string): InvalidInputError {
  return new InvalidInputError(`Marker ${marker.length > 80 ? `${marker.slice(0, 80)}…` : marker} could not be found.`);
}

// ---- Sortable encodings (etcd index keys): ascending byte order of the key is the plan's order.

// 15 digits: every value below 10^15 is an exact double (epoch ms up to the year 33658).
/** Digits of the time at the start of a created_at index key. */
export const TIME_DIGITS = 15;
/** The largest time (and inverted time) an index key holds. */
export const TIME_MAX = 10 ** TIME_DIGITS - 1;

/** A key-space time in its fixed-width digits. */
export function timeDigits(n: number): string {
  return String(Math.max(0, Math.min(TIME_MAX, Math.floor(n)))).padStart(TIME_DIGITS, '0');
}

function hexOf(text: string): string {
  return Buffer.from(text).toString('hex');
}

function complementHexOf(text: string): string {
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i++) bytes[i] = 0xff - (bytes[i] as number);
  return bytes.toString('hex');
}

/** A time in a fixed width, so that its digits order as the number (inverted for descending). */
function timeKey(ms: number, dir: 'asc' | 'desc'): string {
  const n = Math.max(0, Math.min(TIME_MAX, Math.floor(ms)));
  return String(dir === 'asc' ? n : TIME_MAX - n).padStart(TIME_DIGITS, '0');
}

/**
 * A string that orders as the text's bytes in `dir`, for a key part followed by more parts:
 * hex ends with `/` ascending (a prefix sorts first, `/` is below every hex digit) and the
 * complement's hex ends with `~` descending (a prefix sorts last, `~` is above every hex digit).
 */
function textKey(text: string, dir: 'asc' | 'desc'): string {
  return dir === 'asc' ? `${hexOf(text)}/` : `${complementHexOf(text)}~`;
}

/** The name part of a name-index entry: a missing name sorts first ascending (as SQL's NULL). */
export function nameKey(name: string | null, dir: 'asc' | 'desc'): string {
  if (dir === 'asc') return name === null ? '0/' : `1${textKey(name, 'asc')}`;
  return name === null ? '1~' : `0${textKey(name, 'desc')}`;
}

/** The part of an index entry's key after its scope: ascending byte order is the plan's order. */
export function sortableKey(record: Pick<ResourceRecord, 'id' | 'name' | 'created_at'>, order: IndexOrder): string {
  const tail = `${timeKey(record.created_at, order.dir)}${textKey(record.id, order.dir)}`;
  return order.by === 'name' ? `${nameKey(record.name, order.dir)}${tail}` : tail;
}

/** Every index order an etcd index keeps, and whether its scopes include the status. */
export const INDEX_ORDERS: readonly (IndexOrder & { readonly byStatus: boolean })[] = [
  { by: 'created_at', dir: 'desc', byStatus: true },
  { by: 'created_at', dir: 'asc', byStatus: true },
  { by: 'name', dir: 'asc', byStatus: false },
  { by: 'name', dir: 'desc', byStatus: false },
];

/** The scopes an index entry of a record is kept in: all, its project, and (per order) its status. */
export interface IndexScope {
  readonly projectId?: string;
  readonly status?: string;
}

/** The scopes a record is indexed in for an order. */
export function scopesOf(record: Pick<ResourceRecord, 'project_id' | 'status'>, byStatus: boolean): IndexScope[] {
  const scopes: IndexScope[] = [{}, { projectId: record.project_id }];
  if (byStatus) scopes.push({ status: record.status }, { projectId: record.project_id, status: record.status });
  return scopes;
}

/** A scope as one key segment (no `/` inside). */
export function scopeSegment(scope: IndexScope): string {
  const p = scope.projectId === undefined ? undefined : encodeURIComponent(scope.projectId);
  const s = scope.status === undefined ? undefined : encodeURIComponent(scope.status);
  if (p !== undefined && s !== undefined) return `ps:${p}:${s}`;
  if (p !== undefined) return `p:${p}`;
  if (s !== undefined) return `s:${s}`;
  return 'all';
}

/** An order as one key segment. */
export function orderSegment(order: IndexOrder): string {
  return `${order.by === 'name' ? 'name' : 'created'}-${order.dir}`;
}
