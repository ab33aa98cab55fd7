/**
 * Query strings of the list calls (`GET /volumes[/detail]`, `GET /snapshots[/detail]`): Cinder's
 * filters, `sort` (`key:dir,key:dir`) or legacy `sort_key`/`sort_dir`, `limit`/`marker`, and
 * `with_count` (3.45). Unknown parameters are refused, so a filter hearth does not support never
 * silently returns everything.
 */
import { atLeast, type Microversion } from '../api/microversion.js';
import { previewKeys, previewText } from '../preview.js';
import { InvalidInputError } from '../errors.js';
import type { ListQuery, SortKey } from '../state/state-store.js';

/** Cinder's `osapi_max_limit`: the most items one page holds. */
export const MAX_PAGE_SIZE = 1_000;

/** A parsed list request. */
export interface ListRequest {
  readonly query: ListQuery;
  readonly allTenants: boolean;
  readonly withCount: boolean;
  /** The effective page size (capped). */
  readonly limit: number;
}

const COMMON = ['limit', 'marker', 'sort', 'sort_key', 'sort_dir', 'all_tenants', 'project_id', 'status', 'name', 'with_count'];
const SORT_KEYS = ['id', 'name', 'status', 'size', 'created_at', 'updated_at', 'project_id'];
const EXTRA: Readonly<Record<'volume' | 'snapshot', { filters: string[]; sortKeys: string[] }>> = {
  volume: { filters: [], sortKeys: ['availability_zone'] },
  snapshot: { filters: ['volume_id'], sortKeys: ['volume_id'] },
};

function single(query: Readonly<Record<string, unknown>>, key: string): string | undefined {
  const value = query[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new InvalidInputError(`Invalid input received: ${key} must be given once.`);
  return value;
}

function truthy(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 't', 'yes', 'y', 'on'].includes(value.toLowerCase());
}

function parseSort(resource: 'volume' | 'snapshot', query: Readonly<Record<string, unknown>>): SortKey[] | undefined {
  const sort = single(query, 'sort');
  const key = single(query, 'sort_key');
  const dir = single(query, 'sort_dir');
  if (sort !== undefined && (key !== undefined || dir !== undefined)) {
    throw new InvalidInputError('Invalid input received: the sort parameter cannot be combined with sort_key or sort_dir.');
  }
  const specs = sort !== undefined ? sort.split(',') : key !== undefined ? [`${key}:${dir ?? 'desc'}`] : [];
  if (specs.length === 0) return undefined;
  const allowed = [...SORT_KEYS, ...EXTRA[resource].sortKeys];
  return specs.map((spec) => {
    const [rawKey = '', rawDir = 'desc'] = spec.trim().split(':', 2);
    const k = rawKey === 'display_name' ? 'name' : rawKey;
    if (!allowed.includes(k)) throw new InvalidInputError(`Invalid input received: cannot sort by '${previewText(rawKey, 40)}' (sort keys: ${allowed.join(', ')}).`);
    const d = rawDir.toLowerCase();
    if (d !== 'asc' && d !== 'desc') throw new InvalidInputError(`Invalid input received: sort direction '${previewText(rawDir, 40)}' must be asc or desc.`);
    return { key: k, dir: d };
  });
}

/**
 * Parses a list call's query string.
 *
 * @throws InvalidInputError for unknown parameters, a bad limit or a bad sort.
 */
export function parseListQuery(resource: 'volume' | 'snapshot', query: Readonly<Record<string, unknown>>, version: Microversion): ListRequest {
  const known = [...COMMON, ...EXTRA[resource].filters];
  const unknown = Object.keys(query).filter((k) => !known.includes(k));
  if (unknown.length > 0) throw new InvalidInputError(`Invalid filter keys: ${previewKeys(unknown)}`);
  const rawLimit = single(query, 'limit');
  if (rawLimit !== undefined && !/^[0-9]+$/.test(rawLimit)) throw new InvalidInputError(`Invalid input received: limit must be a non-negative integer, got '${previewText(rawLimit, 40)}'.`);
  const limit = Math.min(rawLimit === undefined ? MAX_PAGE_SIZE : Number(rawLimit), MAX_PAGE_SIZE);
  const marker = single(query, 'marker');
  const status = single(query, 'status');
  const name = single(query, 'name');
  const projectId = single(query, 'project_id');
  const volumeId = resource === 'snapshot' ? single(query, 'volume_id') : undefined;
  const sort = parseSort(resource, query);
  const withCount = atLeast(version, '3.45') && truthy(single(query, 'with_count'));
  return {
    query: {
      filter: {
        ...(status === undefined ? {} : { status }),
        ...(name === undefined ? {} : { name }),
        ...(projectId === undefined ? {} : { projectId }),
        ...(volumeId === undefined ? {} : { volumeId }),
      },
      ...(sort === undefined ? {} : { sort }),
      limit,
      ...(marker === undefined ? {} : { marker }),
      ...(withCount ? { withCount } : {}),
    },
    allTenants: truthy(single(query, 'all_tenants')),
    withCount,
    limit,
  };
}
