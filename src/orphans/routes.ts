import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { RouteModule } from '../api/server.js';
import { formatCinderTime } from '../api/cinder-time.js';
import type { Membership } from '../membership/membership.js';
import { matchesHost } from '../identity.js';
import type { Logger } from '../observability/logger.js';
import type { ResourceType } from '../state/records.js';
import type { StateStore } from '../state/state-store.js';
import { locateResource, parseCleanupBody, selectServices, serviceInAnswer, type CleanupServiceJson } from './cleanup-request.js';
import type { Orphan } from './find-orphans.js';

/** Microversion of `workers/cleanup` (Cinder Ocata). */
export const WORKERS_CLEANUP_MV = '3.24';

/** One cleanup request for one service, sent to a live member of its cluster. */
export interface CleanupDispatch {
  /** The cluster whose queue carries it (any live member takes it). */
  readonly cluster: string;
  /** The service (host id) whose orphans to clean. */
  readonly host: string;
  readonly resourceType?: ResourceType;
  readonly resourceId?: string;
  /** Ties the request's log lines together. */
  readonly requestId: string;
}

/**
 * Sends a {@link CleanupDispatch} to its cluster's queue (the job bus's `cleanup` message).
 * Resolves once the broker confirmed it.
 */
export interface CleanupPublisher {
  publish(dispatch: CleanupDispatch): Promise<void>;
}

/** Where the fence of an orphan's dead owner stands (takeovers wait for it). */
export type OwnerFence =
  | { readonly state: 'alive' }
  | { readonly state: 'ended'; readonly how: string }
  | { readonly state: 'awaiting'; readonly lastError: string | null; readonly nextAttemptAtMs: number }
  | { readonly state: 'not-requested' };

/** What the orphan routes read and use. */
export interface OrphanRoutesOptions {
  /** The fence of each owner, by incarnation; absent: not shown. */
  readonly fenceOf?: (incarnations: readonly string[]) => Promise<ReadonlyMap<string, OwnerFence>>;
  readonly membership: Pick<Membership, 'snapshot'>;
  readonly store: Pick<StateStore, 'listOps'>;
  /** A fresh sweep (the detector's). */
  readonly orphans: { sweep(): Promise<readonly Orphan[]> };
  readonly publisher: CleanupPublisher;
  readonly logger: Logger;
}

function fenceJson(fence: OwnerFence): Record<string, unknown> {
  switch (fence.state) {
    case 'alive':
      return { state: 'alive' };
    case 'ended':
      return { state: 'fenced', how: fence.how };
    case 'awaiting':
      return { state: 'awaiting', last_error: fence.lastError, next_attempt_at: fence.nextAttemptAtMs > 0 ? formatCinderTime(fence.nextAttemptAtMs) : null };
    case 'not-requested':
      return { state: 'not-requested' };
  }
}

/** One orphan as `GET /hearth/v1/orphans` shows it; `fence`: where its owner's fence stands (a takeover waits for it). */
export function orphanJson(o: Orphan, fence?: OwnerFence): Record<string, unknown> {
  return {
    ...(fence ? { fence: fenceJson(fence) } : {}),
    type: o.op.type,
    id: o.op.id,
    op_id: o.op.opId,
    kind: o.op.kind,
    status: o.op.status,
    cluster: o.op.cluster,
    owner_host: o.owner.host,
    owner_incarnation: o.owner.incarnation,
    reason: o.reason,
    attempt: o.op.attempt,
    since: formatCinderTime(o.since),
    age_seconds: Math.floor(o.ageMs / 1000),
  };
}

type Query = Record<string, string | string[] | undefined>;

function lastOf(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[value.length - 1] : value;
}

/**
 * Cinder's `POST /v3/{project_id}/workers/cleanup` (3.24+; below it 404, as in Cinder) and
 * hearth's read-only `GET /hearth/v1/orphans` (`?cluster=`, `?host=` with Cinder's host matching).
 *
 * `workers/cleanup` answers 202 `{cleaning, unavailable}`: the *services being cleaned* (id,
 * host, binary, cluster_name). Each selected service whose cluster has a live member is sent one
 * `cleanup` message on its cluster's queue — any member takes it, claims the service's orphans
 * and cleans them; a service whose cluster has no live member is `unavailable`.
 *
 * Failure semantics: etcd unreachable → 503 (nothing sent). A cleanup message the broker does
 * not confirm within `amqp.publishTimeoutMs` puts that service under `unavailable` (logged):
 * nobody was asked to clean it, so asking again is safe. A message that was sent is acted on at
 * least once; every cleanup action is idempotent and each orphan is claimed by exactly one
 * cleaner, so a duplicate does nothing more. Bad input is 400 with Cinder's fault body, before
 * anything is sent.
 */
export function orphanRoutes(options: OrphanRoutesOptions): RouteModule {
  return (app: FastifyInstance) => {
    app.post('/v3/:project_id/workers/cleanup', { config: { minVersion: WORKERS_CLEANUP_MV } }, async (req, reply) => {
      const parsed = parseCleanupBody(req.body);
      const snapshot = await options.membership.snapshot();
      const ops = parsed.filters.resourceId === undefined || parsed.located ? [] : await options.store.listOps(parsed.filters.resourceType ? { type: parsed.filters.resourceType } : {});
      const filters = locateResource(parsed, ops, snapshot.services);
      const requestId = randomUUID();
      const cleaning: CleanupServiceJson[] = [];
      const unavailable: CleanupServiceJson[] = [];
      await Promise.all(
        selectServices(filters, snapshot).map(async ({ service, destinationUp }) => {
          const json = serviceInAnswer(service);
          if (!destinationUp || service.cluster === null) {
            unavailable.push(json);
            return;
          }
          try {
            await options.publisher.publish({
              cluster: service.cluster,
              host: service.host,
              requestId,
              ...(filters.resourceType === undefined ? {} : { resourceType: filters.resourceType }),
              ...(filters.resourceId === undefined ? {} : { resourceId: filters.resourceId }),
            });
            cleaning.push(json);
          } catch (err) {
            options.logger.warn({ err, requestId, host: service.host, cluster: service.cluster }, 'could not send the cleanup request; the service is reported unavailable');
            unavailable.push(json);
          }
        }),
      );
      const byHost = (a: CleanupServiceJson, b: CleanupServiceJson): number => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0);
      options.logger.info({ requestId, filters, cleaning: cleaning.map((s) => s.host), unavailable: unavailable.map((s) => s.host) }, 'work cleanup requested');
      return reply.code(202).send({ cleaning: cleaning.sort(byHost), unavailable: unavailable.sort(byHost) });
    });

    app.get('/hearth/v1/orphans', { config: { skipVersion: true } }, async (req) => {
      const q = req.query as Query;
      const cluster = lastOf(q.cluster);
      const host = lastOf(q.host);
      const orphans = (await options.orphans.sweep()).filter(
        (o) => (!cluster || matchesHost(o.op.cluster, cluster)) && (!host || matchesHost(o.owner.host, host)),
      );
      const fences = options.fenceOf ? await options.fenceOf([...new Set(orphans.map((o) => o.owner.incarnation))]) : undefined;
      return { orphans: orphans.map((o) => orphanJson(o, fences?.get(o.owner.incarnation))) };
    });
  };
}
