/**
 * Pure cluster and service views, built from one {@link MembershipSnapshot}, and the list
 * filters of Cinder's cluster API. No I/O and no clock: up and down come from whether a
 * member's alive entry exists, never from how old a timestamp is.
 */
import { previewKeys, previewText } from '../preview.js';
import { InvalidInputError } from '../errors.js';
import { matchesHost } from '../identity.js';
import type { AliveMember, MembershipSnapshot, ServiceRecord } from '../membership/records.js';

/** A cluster with its members summarised, as Cinder's cluster views need it. */
export interface ClusterView {
  readonly name: string;
  readonly binary: string;
  /** True while at least one member is alive. */
  readonly up: boolean;
  readonly disabled: boolean;
  readonly disabledReason: string | null;
  /** Service records that name this cluster (alive or not). */
  readonly numHosts: number;
  /** Those without an alive entry. */
  readonly numDownHosts: number;
  /** Newest heartbeat of any member, alive or dead; null when none ever beat. */
  readonly lastHeartbeatMs: number | null;
  readonly createdAtMs: number;
  readonly updatedAtMs: number | null;
  readonly frozen: boolean;
  readonly replicationStatus: string;
  readonly activeBackendId: string | null;
}

/** One service (a worker host), as Cinder's `os-services` needs it. */
export interface ServiceView {
  /** The service's stable integer id; null when its store gave none. */
  readonly id: number | null;
  readonly binary: string;
  readonly host: string;
  readonly zone: string;
  readonly disabled: boolean;
  readonly disabledReason: string | null;
  /** True while the host has an alive entry. */
  readonly up: boolean;
  /**
   * The backend as the live member last reported it (`down`: its health check fails); `up`
   * for a live member that reported nothing yet; null when the host is not alive.
   */
  readonly backendState: 'up' | 'down' | null;
  /** Why the backend is down, as the member reported it (hearth's own views only). */
  readonly backendReason: string | null;
  /** The newer of the last heartbeat and the last operator change (Cinder's rule). */
  readonly updatedAtMs: number | null;
  readonly cluster: string | null;
  readonly frozen: boolean;
  readonly replicationStatus: string;
  readonly activeBackendId: string | null;
}

function maxOf(...values: (number | null | undefined)[]): number | null {
  let best: number | null = null;
  for (const v of values) if (v !== null && v !== undefined && (best === null || v > best)) best = v;
  return best;
}

function aliveByHost(alive: readonly AliveMember[]): Map<string, AliveMember> {
  return new Map(alive.map((a) => [a.host, a]));
}

function lastHeartbeat(service: ServiceRecord, alive: AliveMember | undefined): number | null {
  return maxOf(service.heartbeatAtMs, alive?.heartbeatAtMs);
}

/** Every cluster with its member counts and state, sorted by name then binary. */
export function buildClusterViews(snapshot: MembershipSnapshot): ClusterView[] {
  const alive = aliveByHost(snapshot.alive);
  return snapshot.clusters
    .map((c): ClusterView => {
      const members = snapshot.services.filter((s) => s.cluster === c.name && s.binary === c.binary);
      const up = members.filter((s) => alive.has(s.host));
      return {
        name: c.name,
        binary: c.binary,
        up: up.length > 0,
        disabled: c.disabled,
        disabledReason: c.disabledReason,
        numHosts: members.length,
        numDownHosts: members.length - up.length,
        lastHeartbeatMs: maxOf(...members.map((s) => lastHeartbeat(s, alive.get(s.host)))),
        createdAtMs: c.createdAtMs,
        updatedAtMs: c.updatedAtMs,
        frozen: c.frozen,
        replicationStatus: c.replicationStatus,
        activeBackendId: c.activeBackendId,
      };
    })
    .sort((a, b) => compare(a.name, b.name) || compare(a.binary, b.binary));
}

/**
 * Every service with its state, sorted by binary then host. A clustered service shows its
 * cluster's replication fields (`frozen`, `replication_status`, `active_backend_id`): the
 * cluster record is the truth of which backend every member serves (a failover changes it for
 * all at once, members down at the time included), as Cinder copies them to each service.
 */
export function buildServiceViews(snapshot: MembershipSnapshot): ServiceView[] {
  const alive = aliveByHost(snapshot.alive);
  const clusters = new Map(snapshot.clusters.map((c) => [`${c.binary}\u0000${c.name}`, c]));
  return snapshot.services
    .map((s) => {
      const c = s.cluster === null ? undefined : clusters.get(`${s.binary}\u0000${s.cluster}`);
      return c ? { ...s, frozen: c.frozen, replicationStatus: c.replicationStatus, activeBackendId: c.activeBackendId } : s;
    })
    .map((s): ServiceView => ({
      id: s.id ?? null,
      binary: s.binary,
      host: s.host,
      zone: s.zone,
      disabled: s.disabled,
      disabledReason: s.disabledReason,
      up: alive.has(s.host),
      backendState: alive.has(s.host) ? (alive.get(s.host)?.backend?.state ?? 'up') : null,
      backendReason: alive.get(s.host)?.backend?.reason ?? null,
      updatedAtMs: maxOf(lastHeartbeat(s, alive.get(s.host)), s.modifiedAtMs),
      cluster: s.cluster,
      frozen: s.frozen,
      replicationStatus: s.replicationStatus,
      activeBackendId: s.activeBackendId,
    }))
    .sort((a, b) => compare(a.binary, b.binary) || compare(a.host, b.host));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}


/** Parsed filters of `GET /clusters[/detail]`; absent keys do not filter. */
export interface ClusterFilters {
  readonly name?: string;
  readonly binary?: string;
  readonly isUp?: boolean;
  readonly disabled?: boolean;
  readonly numHosts?: number;
  readonly numDownHosts?: number;
  readonly replicationStatus?: string;
  readonly frozen?: boolean;
  readonly activeBackendId?: string;
}

const BASE_FILTER_KEYS = ['name', 'binary', 'is_up', 'disabled', 'num_hosts', 'num_down_hosts'] as const;
const REPLICATION_FILTER_KEYS = ['replication_status', 'frozen', 'active_backend_id'] as const;

/** oslo's `is_valid_boolstr` spellings. */
const TRUE_WORDS = new Set(['1', 't', 'true', 'on', 'y', 'yes']);
const FALSE_WORDS = new Set(['0', 'f', 'false', 'off', 'n', 'no']);

/** Parses a query boolean as Cinder's `get_bool_param` does; throws on anything else. */
export function parseBool(key: string, value: string): boolean {
  const word = value.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  throw new InvalidInputError(`Value '${previewText(value, 40)}' for '${key}' is not a boolean.`);
}

function parseCount(key: string, value: string): number {
  if (!/^\s*\d+\s*$/.test(value)) throw new InvalidInputError(`Invalid input received: Value '${previewText(value, 40)}' for '${key}' is not an integer.`);
  return Number(value);
}

/** The last value of a query parameter that may repeat. */
function lastValue(value: string | readonly string[] | undefined): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  return value[value.length - 1];
}

/**
 * Validates and parses the query of a cluster list. The replication keys are allowed only
 * from microversion 3.26 (`replication`), as in Cinder.
 *
 * @throws InvalidInputError with Cinder's message for unknown keys or malformed values.
 */
export function parseClusterFilters(query: Readonly<Record<string, string | readonly string[] | undefined>>, replication: boolean): ClusterFilters {
  const allowed = new Set<string>([...BASE_FILTER_KEYS, ...(replication ? REPLICATION_FILTER_KEYS : [])]);
  const unknown = Object.keys(query).filter((k) => !allowed.has(k));
  if (unknown.length > 0) throw new InvalidInputError(`Invalid input received: Invalid filter keys: ${previewKeys(unknown)}`);
  const get = (key: string): string | undefined => lastValue(query[key]);
  const filters: { -readonly [K in keyof ClusterFilters]: ClusterFilters[K] } = {};
  const name = get('name');
  if (name !== undefined) filters.name = name;
  const binary = get('binary');
  if (binary !== undefined) filters.binary = binary;
  const isUp = get('is_up');
  if (isUp !== undefined) filters.isUp = parseBool('is_up', isUp);
  const disabled = get('disabled');
  if (disabled !== undefined) filters.disabled = parseBool('disabled', disabled);
  const numHosts = get('num_hosts');
  if (numHosts !== undefined) filters.numHosts = parseCount('num_hosts', numHosts);
  const numDown = get('num_down_hosts');
  if (numDown !== undefined) filters.numDownHosts = parseCount('num_down_hosts', numDown);
  const replicationStatus = get('replication_status');
  if (replicationStatus !== undefined) filters.replicationStatus = replicationStatus;
  const frozen = get('frozen');
  if (frozen !== undefined) filters.frozen = parseBool('frozen', frozen);
  const activeBackendId = get('active_backend_id');
  if (activeBackendId !== undefined) filters.activeBackendId = activeBackendId;
  return filters;
}

/** True when `view` passes every filter given. */
export function clusterMatches(view: ClusterView, f: ClusterFilters): boolean {
  return (
    (f.name === undefined || matchesHost(view.name, f.name)) &&
    (f.binary === undefined || view.binary === f.binary) &&
    (f.isUp === undefined || view.up === f.isUp) &&
    (f.disabled === undefined || view.disabled === f.disabled) &&
    (f.numHosts === undefined || view.numHosts === f.numHosts) &&
    (f.numDownHosts === undefined || view.numDownHosts === f.numDownHosts) &&
    (f.replicationStatus === undefined || view.replicationStatus === f.replicationStatus) &&
    (f.frozen === undefined || view.frozen === f.frozen) &&
    (f.activeBackendId === undefined || view.activeBackendId === f.activeBackendId)
  );
}

/** Filters of `GET /os-services`: `host` (Cinder's host matching) and `binary` (exact). */
export interface ServiceFilters {
  readonly host?: string | undefined;
  readonly binary?: string | undefined;
}

/** True when `view` passes the service filters; empty values do not filter, as in Cinder. */
export function serviceMatches(view: ServiceView, f: ServiceFilters): boolean {
  return (!f.host || matchesHost(view.host, f.host)) && (!f.binary || view.binary === f.binary);
}

/** The cluster named exactly `name` with `binary`, or undefined. */
export function findCluster(views: readonly ClusterView[], name: string, binary: string): ClusterView | undefined {
  return views.find((v) => v.name === name && v.binary === binary);
}
