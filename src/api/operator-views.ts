import type { FastifyInstance } from 'fastify';
import type { LockEntry, LockTable } from '../locks/lock-table.js';
import { lockTypeOf } from '../locks/metrics.js';
import { formatCinderTime } from './cinder-time.js';
import { fencesByHost, type HostFences } from '../fencing/fence-state.js';
import type { LeaseTtls } from '../membership/lease-ttl.js';
import { buildMemberRows, type MemberRow } from '../membership/member-rows.js';
import type { Membership } from '../membership/membership.js';
import { matchesHost } from '../identity.js';
import { HttpError } from './faults.js';
import { previewText } from '../preview.js';
import type { RouteModule } from './server.js';

/** What the operator views read. */
export interface OperatorViewsOptions {
  readonly locks: LockTable;
  readonly membership: Pick<Membership, 'snapshot' | 'incarnations'>;
  readonly leases: LeaseTtls;
}

type Query = Record<string, string | string[] | undefined>;

/** The query's filters, each given once and not empty; any other key is a 400. */
export function parseViewQuery<K extends string>(query: Query, allowed: readonly K[]): Partial<Record<K, string>> {
  const out: Partial<Record<K, string>> = {};
  for (const [key, raw] of Object.entries(query)) {
    if (!(allowed as readonly string[]).includes(key)) throw new HttpError(400, `Invalid filter keys: ${previewText(key, 40)}. Allowed: ${allowed.join(', ')}.`);
    const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
    if (value === undefined || value === '') throw new HttpError(400, `Invalid input: filter ${key} must not be empty.`);
    out[key as K] = value;
  }
  return out;
}

/** One lock as `GET /hearth/v1/locks` shows it. */
export function lockJson(l: LockEntry): Record<string, unknown> {
  return {
    name: l.name,
    type: lockTypeOf(l.name),
    holder_host: l.holderHost,
    holder_incarnation: l.holderIncarnation,
    since: l.sinceMs === null ? null : formatCinderTime(l.sinceMs),
    fencing_revision: l.fencingRevision,
    lease: l.lease,
    waiters: l.waiters,
  };
}

/** One member as `GET /hearth/v1/members` shows it. */
export function memberJson(m: MemberRow, fences?: HostFences): Record<string, unknown> {
  const last = fences?.lastEnd ?? null;
  return {
    host: m.host,
    cluster: m.cluster,
    binary: m.binary,
    zone: m.zone,
    version: m.version,
    state: m.up ? 'up' : 'down',
    status: m.disabled ? 'disabled' : 'enabled',
    incarnation: m.incarnation,
    alive_revision: m.aliveRevision,
    heartbeat_at: m.heartbeatAtMs === null ? null : formatCinderTime(m.heartbeatAtMs),
    started_at: m.startedAtMs === null ? null : formatCinderTime(m.startedAtMs),
    lease_id: m.lease?.id ?? null,
    lease_ttl_seconds: m.lease?.grantedTtlS ?? null,
    lease_remaining_seconds: m.lease?.remainingTtlS ?? null,
    awaiting_fence: fences?.awaiting ?? [],
    last_end: last && { incarnation: last.incarnation, how: last.how, by: last.by, at: formatCinderTime(last.atMs) },
  };
}

/**
 * hearth's read-only operator views, beside `/hearth/v1/orphans`: `GET /hearth/v1/locks`
 * (`?host=` holder host, `?type=` lock type) — the locks held now, their holder, since when
 * (single node; etcd records no times) and fencing revision — and `GET /hearth/v1/members`
 * (`?cluster=`, `?host=`, Cinder's host matching) — every member with its state, incarnation,
 * heartbeat and session lease, and each host's dead incarnations still awaiting their fence
 * (`awaiting_fence`: their orphans and locks wait) and how its last ended one ended (`last_end`). Same authentication as the rest of the API; a reader token may
 * read them.
 *
 * Failure semantics: etcd unreachable → 503 with Cinder's fault body (nothing is served from a
 * stale copy); an unknown or empty filter → 400 before anything is read.
 */
export function operatorViewRoutes(options: OperatorViewsOptions): RouteModule {
  return (app: FastifyInstance) => {
    app.get('/hearth/v1/locks', { config: { skipVersion: true } }, async (req) => {
      const q = parseViewQuery(req.query as Query, ['host', 'type'] as const);
      const locks = (await options.locks.list()).filter((l) => (!q.host || matchesHost(l.holderHost, q.host)) && (!q.type || lockTypeOf(l.name) === q.type));
      return { distributed: options.locks.distributed, locks: locks.map(lockJson) };
    });

    app.get('/hearth/v1/members', { config: { skipVersion: true } }, async (req) => {
      const q = parseViewQuery(req.query as Query, ['cluster', 'host'] as const);
      const [snapshot, views] = await Promise.all([options.membership.snapshot(), options.membership.incarnations()]);
      const leases = await options.leases.of(snapshot.alive.map((a) => a.incarnation));
      const fences = fencesByHost(views);
      const rows = buildMemberRows(snapshot, leases).filter((m) => (!q.cluster || matchesHost(m.cluster, q.cluster)) && (!q.host || matchesHost(m.host, q.host)));
      return { members: rows.map((m) => memberJson(m, fences.get(m.host))) };
    });
  };
}
