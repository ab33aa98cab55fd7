/**
 * Cinder's `POST /v3/{project_id}/workers/cleanup`, the pure part (no I/O): the body as Cinder's
 * JSON schema and controller read it, the `resource_id` lookup rule, the services the request
 * selects, and the `{cleaning, unavailable}` answer. Messages follow Cinder's.
 */
import { preview, previewKeys, previewText } from '../preview.js';
import { InvalidInputError } from '../errors.js';
import type { MembershipSnapshot, ServiceRecord } from '../membership/records.js';
import { matchesHost } from '../identity.js';
import type { OpRecord, ResourceType } from '../state/records.js';

/** Cinder's cleanable resource types (`resource_type` is title-cased before the check). */
export const CLEANABLE_TYPES = { Volume: 'volume', Snapshot: 'snapshot' } as const satisfies Record<string, ResourceType>;

/** The only binary hearth runs (Cinder also accepts `cinder-scheduler`; hearth has no scheduler). */
const BINARIES = ['cinder-volume'] as const;

/** A parsed cleanup request: Cinder's `CleanupRequest` fields. Absent means "do not filter". */
export interface CleanupFilters {
  readonly serviceId?: number;
  readonly clusterName?: string;
  readonly host?: string;
  readonly binary?: string;
  /** Cinder's default: false — only services that are down. */
  readonly isUp: boolean;
  readonly disabled?: boolean;
  readonly resourceId?: string;
  readonly resourceType?: ResourceType;
}

/** jsonschema's `boolean` parameter type in Cinder: these exact values. */
const TRUE_VALUES = new Set<unknown>([true, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', 'y', 't']);
const FALSE_VALUES = new Set<unknown>([false, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no', 'n', 'f']);
const HOSTNAME = /^[a-zA-Z0-9-._#@:/+]*$/;
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const KEYS = ['cluster_name', 'disabled', 'host', 'is_up', 'binary', 'resource_id', 'resource_type', 'service_id'];

function invalid(field: string, value: unknown, why: string): InvalidInputError {
  return new InvalidInputError(`Invalid input for field/attribute ${field}. Value: ${preview(value)}. ${why}`);
}

function hostname(field: string, value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid(field, value, `It is not of type 'string', 'null'`);
  if (value.length < 1) throw invalid(field, value, `'' is too short`);
  if (value.length > 255) throw invalid(field, value, 'is too long');
  if (!HOSTNAME.test(value)) throw invalid(field, value, `It does not match '${HOSTNAME.source}'`);
  return value;
}

function boolean(field: string, value: unknown): boolean | undefined {
  if (value === null || value === undefined) return undefined;
  if (TRUE_VALUES.has(value)) return true;
  if (FALSE_VALUES.has(value)) return false;
  throw invalid(field, value, `It is not one of [True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', 'y', 't', False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no', 'n', 'f']`);
}

function serviceId(value: unknown): number | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  if (typeof value === 'string' && /^[0-9]{1,11}$/.test(value)) return Number(value);
  throw invalid('service_id', value, 'must be an integer or a string of digits');
}

function resourceType(value: unknown): ResourceType | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || value.length > 40) throw invalid('resource_type', value, `is not of type 'string', 'null' of at most 40 characters`);
  // Cinder title-cases it (`volume` → `Volume`) and then requires a cleanable type.
  const title = value.toLowerCase().replace(/(^|[^a-z])([a-z])/g, (_m, sep: string, c: string) => sep + c.toUpperCase());
  const type = (CLEANABLE_TYPES as Record<string, ResourceType>)[title];
  if (type === undefined) throw new InvalidInputError(`Invalid input received: Resource type ${previewText(title, 40)} not valid, must be Volume or Snapshot`);
  return type;
}

/** What {@link parseCleanupBody} found, plus whether a location key was present. */
export interface ParsedCleanup {
  readonly filters: CleanupFilters;
  /** `service_id`, `cluster_name` or `host` was in the body (even as null): Cinder's lookup rule then does not apply. */
  readonly located: boolean;
}

/**
 * Validates the body as Cinder's schema does (`additionalProperties: false`, every key
 * optional, booleans and service ids as Cinder accepts them) and applies its defaults.
 *
 * @throws InvalidInputError (400) naming the offending key; nothing is done then.
 */
export function parseCleanupBody(body: unknown): ParsedCleanup {
  if (body === undefined || body === null) return { filters: { isUp: false }, located: false };
  if (typeof body !== 'object' || Array.isArray(body)) throw new InvalidInputError(`Invalid input for field/attribute body. Value: ${preview(body)}. It is not of type 'object'`);
  const o = body as Record<string, unknown>;
  const extra = Object.keys(o).filter((k) => !KEYS.includes(k));
  if (extra.length > 0) {
    throw new InvalidInputError(`Additional properties are not allowed (${previewKeys(extra, { quoted: true })} ${extra.length === 1 ? 'was' : 'were'} unexpected)`);
  }
  const binary = o.binary;
  if (binary !== undefined && !(BINARIES as readonly unknown[]).includes(binary)) {
    throw invalid('binary', binary, `It is not one of ['cinder-volume'] (hearth runs no cinder-scheduler)`);
  }
  const resourceId = o.resource_id;
  if (resourceId !== undefined && resourceId !== null && (typeof resourceId !== 'string' || !UUID.test(resourceId))) {
    throw invalid('resource_id', resourceId, `It is not a 'uuid'`);
  }
  const filters: { -readonly [K in keyof CleanupFilters]: CleanupFilters[K] } = { isUp: boolean('is_up', o.is_up) ?? false };
  const id = serviceId(o.service_id);
  if (id !== undefined) filters.serviceId = id;
  const cluster = hostname('cluster_name', o.cluster_name);
  if (cluster !== undefined) filters.clusterName = cluster;
  const host = hostname('host', o.host);
  if (host !== undefined) filters.host = host;
  if (typeof binary === 'string') filters.binary = binary;
  const disabled = boolean('disabled', o.disabled);
  if (disabled !== undefined) filters.disabled = disabled;
  if (typeof resourceId === 'string' && resourceId !== '') filters.resourceId = resourceId.toLowerCase();
  const type = resourceType(o.resource_type);
  if (type !== undefined) filters.resourceType = type;
  const located = ['service_id', 'cluster_name', 'host'].some((k) => k in o);
  return { filters, located };
}

/**
 * Cinder's lookup rule: with `resource_id` and no location key, the request is narrowed to the
 * service that has the resource's pending work (here: the host owning its op). Zero or several
 * matches are 400, as in Cinder. A queued op (nobody owns it) is not pending cleanup.
 *
 * @param ops the ops whose id is `resource_id`.
 * @throws InvalidInputError
 */
export function locateResource(parsed: ParsedCleanup, ops: readonly OpRecord[], services: readonly ServiceRecord[]): CleanupFilters {
  const { filters } = parsed;
  if (filters.resourceId === undefined || parsed.located) return filters;
  const pending = ops.filter((op) => op.owner !== null && op.id === filters.resourceId && (filters.resourceType === undefined || op.type === filters.resourceType));
  if (pending.length === 0) throw new InvalidInputError(`Invalid input received: There is no resource with UUID ${filters.resourceId} pending cleanup.`);
  if (pending.length > 1) {
    throw new InvalidInputError(`Invalid input received: There are multiple resources with UUID ${filters.resourceId} pending cleanup.  Please be more specific.`);
  }
  const op = pending[0] as OpRecord;
  const service = services.find((s) => s.host === op.owner?.host && s.id !== undefined);
  // An owner with no service record cannot be selected; Cinder would select nothing either.
  return { ...filters, serviceId: service?.id ?? -1, resourceType: op.type };
}

/** One service in the answer, as Cinder's workers view shows it. */
export interface CleanupServiceJson {
  readonly id: number | null;
  readonly host: string;
  readonly binary: string;
  readonly cluster_name: string | null;
}

/** A service the request selected, and whether a live member of its cluster can clean it. */
export interface SelectedService {
  readonly service: ServiceRecord;
  /** True when the service's cluster has a live member to send the cleanup to. */
  readonly destinationUp: boolean;
}

/**
 * The services a request selects (Cinder's `ServiceList.get_all` with the request's filters),
 * sorted by host. `cluster_name` and `host` use Cinder's host matching (`node1` matches
 * `node1@rbd`); `disabled` is the cluster's setting for a clustered service (Cinder's
 * `_clustered_bool_field_filter`); `is_up` is whether the host has an alive entry. Each comes
 * with whether its destination — its cluster (any live member), or for an unclustered service
 * the service itself — is up.
 */
export function selectServices(filters: CleanupFilters, snapshot: MembershipSnapshot): SelectedService[] {
  const alive = new Set(snapshot.alive.map((a) => a.host));
  const liveClusters = new Set(snapshot.alive.map((a) => a.cluster));
  const clusterDisabled = new Map(snapshot.clusters.map((c) => [`${c.binary} ${c.name}`, c.disabled]));
  return snapshot.services
    .filter((s) => {
      const disabled = s.cluster === null ? s.disabled : (clusterDisabled.get(`${s.binary} ${s.cluster}`) ?? s.disabled);
      return (
        (filters.serviceId === undefined || s.id === filters.serviceId) &&
        (filters.clusterName === undefined || matchesHost(s.cluster, filters.clusterName)) &&
        (filters.host === undefined || matchesHost(s.host, filters.host)) &&
        (filters.binary === undefined || s.binary === filters.binary) &&
        alive.has(s.host) === filters.isUp &&
        (filters.disabled === undefined || disabled === filters.disabled)
      );
    })
    .sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0))
    .map((service) => ({ service, destinationUp: service.cluster === null ? alive.has(service.host) : liveClusters.has(service.cluster) }));
}

/** One service as the answer lists it. */
export function serviceInAnswer(s: ServiceRecord): CleanupServiceJson {
  return { id: s.id ?? null, host: s.host, binary: s.binary, cluster_name: s.cluster };
}
