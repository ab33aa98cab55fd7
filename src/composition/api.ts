/**
 * The API role as the composition root assembles it: the Cinder-compatible REST API with every
 * concern's routes, listening on `api.listen`. As soon as shutdown begins it stops accepting
 * (before the worker drains), whatever its place in the start order.
 */
import type { AddressInfo } from 'node:net';
import type { ConfiguredAuth } from '../api/auth-setup.js';
import { clusterRoutes } from '../api/clusters.js';
import { deadLetterRoutes } from '../api/dead-letters.js';
import { fenceRoutes } from '../api/fences.js';
import { operatorViewRoutes } from '../api/operator-views.js';
import { ApiServer, apiServerOptions, type RouteModule } from '../api/server.js';
import { serviceRemovalRoutes } from '../api/service-removal.js';
import { fenceStateOf } from '../fencing/fence-state.js';
import { clusterId } from '../config/rules.js';
import { VOLUME_BINARY } from '../identity.js';
import { MembershipClusterAdmission } from '../membership/cluster-status.js';
import { orphanRoutes } from '../orphans/routes.js';
import { JobBusPublisher } from '../volumes/job-bus-publisher.js';
import { PublishStamps } from '../volumes/publish-stamps.js';
import { volumeRoutes } from '../volumes/volume-routes.js';
import { VolumeService } from '../volumes/volume-service.js';
import type { Backends, CompositionContext } from './backends.js';
import type { OrphanDetection } from './orphans.js';

/**
 * Longest an API request waits for the broker's confirm of the job it records. A failed or
 * slow publish must not hold a request for `amqp.publishTimeoutMs`; the op is recorded either
 * way, and the republish sweeper publishes it later (docs/worker.md).
 */
export const API_PUBLISH_WAIT_MS = 1_000;

/**
 * How long after a confirmed publish the API stamps the op's `publishedAt` (in one batch for
 * every op confirmed meanwhile; `PublishStamps`): long enough that most ops are claimed by then
 * and need no stamp, well within the sweeper's `sweepIntervalMs`, after which an unstamped
 * queued op is published again.
 */
export function publishStampDelayMs(sweepIntervalMs: number): number {
  return Math.min(API_PUBLISH_WAIT_MS, Math.floor(sweepIntervalMs / 2));
}

/** The publish stamps of the API's volume service; `startApi` closes them after the listener. */
export function publishStamps(ctx: CompositionContext, backends: Pick<Backends, 'store'>): PublishStamps {
  return new PublishStamps({ store: backends.store, clock: ctx.clock, logger: ctx.logger.child({ component: 'volumes' }), delayMs: publishStampDelayMs(ctx.config.sweepIntervalMs) });
}

/**
 * Every route module of the API, built on `backends` (registered in this order). `stamps`: the
 * volume service's publish stamps (made here when not given; whoever makes them closes them).
 */
export function apiRoutes(ctx: CompositionContext, backends: Backends, orphans: OrphanDetection, stamps: PublishStamps = publishStamps(ctx, backends)): RouteModule[] {
  const { config, clock } = ctx;
  const logger = ctx.logger.child({ component: 'api' });
  const { store, membership, jobBus } = backends;
  const volumes = new VolumeService({
    store,
    publisher: new JobBusPublisher(jobBus, { timeoutMs: Math.min(config.amqp.publishTimeoutMs, API_PUBLISH_WAIT_MS) }),
    stamps,
    admission: new MembershipClusterAdmission(membership, VOLUME_BINARY),
    clock,
    logger: ctx.logger.child({ component: 'volumes' }),
    cluster: clusterId(config),
    availabilityZone: config.zone,
  });
  return [
    clusterRoutes(membership, VOLUME_BINARY),
    operatorViewRoutes({ locks: backends.lockTable, membership, leases: backends.leaseTtls }),
    serviceRemovalRoutes({ membership, store, logger }),
    deadLetterRoutes(jobBus),
    fenceRoutes({ membership, queue: backends.fenceQueue, logger }),
    orphanRoutes({
      membership,
      store,
      orphans: orphans.detector,
      publisher: { publish: async (d) => void (await jobBus.publish({ kind: 'cleanup', ...d })) },
      fenceOf: async (incarnations) =>
        new Map(
          await Promise.all(
            incarnations.map(async (incarnation) => {
              const [view, op] = await Promise.all([membership.incarnation(incarnation), backends.fenceQueue.get(incarnation)]);
              return [incarnation, fenceStateOf(view, op)] as const;
            }),
          ),
        ),
      logger: ctx.logger.child({ component: 'orphans' }),
    }),
    volumeRoutes(volumes),
  ];
}

/** Builds the API with every route and listens; resolves with the bound address. */
export async function startApi(ctx: CompositionContext, backends: Backends, orphans: OrphanDetection, auth: ConfiguredAuth): Promise<AddressInfo> {
  const { config, closer } = ctx;
  const logger = ctx.logger.child({ component: 'api' });
  // Registered before the listener, so closed after it (closes run in reverse): the stamps of the
  // last requests go out once the API has stopped, and before the store closes.
  const stamps = closer.use('publish stamps', publishStamps(ctx, backends));
  const api = closer.use('api listener', new ApiServer({ logger, ...apiServerOptions(config.api), auth: auth.options }));
  closer.quiesce('api stops accepting', () => api.close());
  for (const routes of apiRoutes(ctx, backends, orphans, stamps)) api.register(routes);
  return api.listen(config.api.listen);
}
