/**
 * `GET /v3/{project_id}/scheduler-stats/get_pools` — Cinder's pool view (`cinder get-pools
 * [--detail]`), from the members' backend reports in the membership snapshot (see `pools.ts`).
 * hearth has no scheduler; this shows what the workers' capacity checks see.
 *
 * Filters as Cinder's: none below 3.28; from 3.28 `name` and any capability key (equality
 * after converting the text as Cinder's `_equal_after_convert` does); from 3.35 `volume_type`
 * (hearth has only `__DEFAULT__`).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from '../api/faults.js';
import { atLeast } from '../api/microversion.js';
import type { RouteModule } from '../api/server.js';
import type { Membership } from '../membership/membership.js';
import { previewText } from '../preview.js';
import { buildPoolViews, type PoolView } from './pools.js';

const POOL_FILTER_MV = '3.28';
const POOL_TYPE_FILTER_MV = '3.35';
const GIB = 1024 ** 3;
const DEFAULT_VOLUME_TYPE = '__DEFAULT__';

/** What the pool routes read. */
export interface PoolRoutesOptions {
  readonly membership: Pick<Membership, 'snapshot'>;
  /** hearth's version, shown as the driver version. */
  readonly version: string;
}

type Query = Record<string, string | string[] | undefined>;

function gib(bytes: number): number {
  return Math.round((bytes / GIB) * 100) / 100;
}

/** Cinder's NFS driver reports `nfs`; the fake driver is a test double. */
function protocolOf(driver: string): string {
  return driver === 'file' ? 'nfs' : driver;
}

/** A pool's capabilities, with Cinder's keys. */
export function poolCapabilities(v: PoolView, version: string): Record<string, unknown> {
  const p = v.pool;
  return {
    pool_name: v.backend,
    volume_backend_name: v.backend,
    vendor_name: 'hearth',
    driver_version: version,
    storage_protocol: protocolOf(p.driver),
    total_capacity_gb: gib(p.totalBytes),
    free_capacity_gb: gib(p.freeBytes),
    allocated_capacity_gb: gib(p.allocatedBytes),
    provisioned_capacity_gb: gib(p.provisionedBytes),
    max_over_subscription_ratio: String(p.maxOverSubscriptionRatio),
    reserved_percentage: p.reservedPercentage,
    thin_provisioning_support: p.thin,
    thick_provisioning_support: !p.thin,
    QoS_support: false,
    multiattach: false,
    backend_state: v.state,
    timestamp: new Date(p.atMs).toISOString(),
    // hearth's own: which member's report this is (one report per pool, never a sum).
    reported_by: v.reportedBy,
  };
}

/** Cinder's `_equal_after_convert`: a capability equals a query text when the text, read as the capability's type, does. */
function equalAfterConvert(capability: unknown, text: string): boolean {
  if (typeof capability === 'boolean') return parseBoolWord(text) === capability;
  if (typeof capability === 'number') return text.trim() !== '' && Number(text) === capability;
  return String(capability) === text;
}

/** oslo's boolean spellings; undefined for anything else. */
function parseBoolWord(text: string): boolean | undefined {
  const word = text.trim().toLowerCase();
  if (['1', 't', 'true', 'on', 'y', 'yes'].includes(word)) return true;
  if (['0', 'f', 'false', 'off', 'n', 'no'].includes(word)) return false;
  return undefined;
}

function lastOf(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[value.length - 1] : value;
}

function detailOf(value: string | undefined): boolean {
  if (value === undefined || value.trim() === '') return false;
  const parsed = parseBoolWord(value);
  if (parsed !== undefined) return parsed;
  throw new HttpError(400, `Invalid input received: Value '${previewText(value, 40)}' for 'detail' is not a boolean.`);
}

/** See the module doc. */
export function poolRoutes(options: PoolRoutesOptions): RouteModule {
  return (app: FastifyInstance) => {
    app.get('/v3/:project_id/scheduler-stats/get_pools', async (req: FastifyRequest) => {
      const query = req.query as Query;
      const detail = detailOf(lastOf(query.detail));
      const filters = new Map<string, string>();
      if (atLeast(req.apiVersion, POOL_FILTER_MV)) {
        for (const [key, raw] of Object.entries(query)) {
          const value = lastOf(raw);
          if (key === 'detail' || value === undefined) continue;
          if (key === 'volume_type' && !atLeast(req.apiVersion, POOL_TYPE_FILTER_MV)) continue;
          filters.set(key, value);
        }
      }
      const type = filters.get('volume_type');
      filters.delete('volume_type');
      if (type !== undefined && type !== DEFAULT_VOLUME_TYPE) throw new HttpError(404, `Volume type with name ${previewText(type)} could not be found.`, 'NOT_FOUND');
      const name = filters.get('name');
      filters.delete('name');
      const views = buildPoolViews(await options.membership.snapshot()).filter((v) => name === undefined || v.name === name);
      const pools = views
        .map((v) => ({ name: v.name, capabilities: poolCapabilities(v, options.version) }))
        .filter((p) => [...filters].every(([key, value]) => key in p.capabilities && equalAfterConvert(p.capabilities[key], value)));
      return { pools: pools.map((p) => (detail ? p : { name: p.name })) };
    });
  };
}
