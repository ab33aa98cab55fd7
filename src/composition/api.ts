/**
 * The API role as the composition root assembles it: the Cinder-compatible REST API with every
 * concern's routes, listening on `api.listen`. As soon as shutdown begins it stops accepting
 * (before the worker drains), whatever its place in the start order.
 */
import type { AddressInfo } from 'node:net';
import type { ConfiguredAuth } from '../api/auth-setup.js';
import { clusterRoutes } from '../api/clusters.js';
import { poolRoutes } from '../backend/pool-routes.js';
import { messageRoutes } from '../messages/routes.js';
import { abortNotice } from '../routing/abort-notice.js';
import { deadLetterRoutes } from '../api/dead-letters.js';
import { fenceRoutes } from '../api/fences.js';
import { operatorViewRoutes } from '../api/operator-views.js';
import { opsViewRoutes } from '../api/ops-view.js';
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
import { attachmentRoutes } from '../volumes/attachment-routes.js';
import { AttachmentService } from '../volumes/attachment-service.js';
import { VolumeTypeService } from '../volumes/volume-type-service.js';
import type { Backends, CompositionContext } from './backends.js';
import type { OrphanDetection } from './orphans.js';
import type { UpgradeParts } from './upgrade.js';
import { upgradeRoutes } from '../upgrade/routes.js';
import { replicationRoutes } from '../api/replication.js';
import { CLUSTER_REPLICATION_SINCE } from '../protocol.js';
import { type Microversion, servedMaxVersion } from '../api/microversion.js';
import { JOB_KIND_SINCE } from '../routing/job-message.js';
import type { OperationGate } from '../volumes/operation-gate.js';

/**
 * Longest an API request waits for the broker's confirm of the job it records. A failed or
 * slow publish must not hold a request for `amqp.publishTimeoutMs`; the op is recorded either
 * way, and the republish sweeper publishes it later (docs/worker.md).
 */
export const API_PUBLISH_WAIT_MS = 1_000;

/**
 * How long after a confirmed publish the API stamps the op's `publishedAt` at the earliest (at
 * the latest twice that; in one batch for every op due, `PublishStamps`): a quarter of the
 * sweeper's `sweepIntervalMs`, after which an unstamped queued op is published again — so the
 * stamp lands with half the interval to spare, and as late as that allows. A stamp rewrites the
 * op, so the job's carried op goes stale and its claim costs a second transaction (the first
 * fails its compare and returns the op as it is now): with every op of a batch stamped when the
 * first was a second old, most jobs that waited in the queue paid it (docs/worker.md).
 */
export function publishStampDelayMs(sweepIntervalMs: number): number {
  return Math.floor(sweepIntervalMs / 4);
}

/** The publish stamps of the API's volume service; `startApi` closes them after the listener. */
export function publishStamps(ctx: CompositionContext, backends: Pick<Backends, 'store' | 'jobBus'>): PublishStamps {
  return new PublishStamps({
    store: backends.store,
    clock: ctx.clock,
    logger: ctx.logger.child({ component: 'volumes' }),
    delayMs: publishStampDelayMs(ctx.config.sweepIntervalMs),
    // The in-process bus: the sweeper counts an op as published when recorded (composition/worker.ts).
    skip: () => !backends.jobBus.distributed,
  });
}

/**
 * The skew policy at the API: a microversion or an operation that needs a newer message version
 * is served only once every live worker of the cluster reads it (docs/upgrades.md).
 */
export function skewGate(upgrade: Pick<UpgradeParts, 'view'>): OperationGate {
  return {
    refuses: (c, kind) => {
      const have = upgrade.view.workerMessageVersion(c);
      const need = JOB_KIND_SINCE[kind];
      return have >= need ? undefined : `the live workers of ${c} read messages up to version ${have}, and ${kind} needs version ${need}`;
    },
  };
}

/**
 * Why `cluster` cannot take replication commands now: a live process of it (worker or API) runs
 * a release that drops the cluster record's replication fields and ignores a freeze.
 */
export function replicationGate(upgrade: Pick<UpgradeParts, 'view'>): (cluster: string) => string | undefined {
  return (cluster) => {
    const old = upgrade.view.processes.filter((p) => p.cluster === cluster && p.messages.max < CLUSTER_REPLICATION_SINCE);
    if (old.length === 0) return undefined;
    const names = old.map((p) => `${p.host} (release ${p.build}, messages up to ${p.messages.max})`).join(', ');
    return `${names} of ${cluster} cannot keep a failover or a freeze; replication commands need every live process to read message version ${CLUSTER_REPLICATION_SINCE} (upgrade it first)`;
  };
}

/**
 * Every route module of the API, built on `backends` (registered in this order); `version` is
 * the build's, shown by get_pools. `stamps`: the volume service's publish stamps (made here when
 * not given; whoever makes them closes them).
 */
export function apiRoutes(
  ctx: CompositionContext,
  backends: Backends,
  orphans: OrphanDetection,
  upgrade: UpgradeParts,
  version: string,
  stamps: PublishStamps = publishStamps(ctx, backends),
): RouteModule[] {
  const { config, clock } = ctx;
  const logger = ctx.logger.child({ component: 'api' });
  const { store, membership, jobBus } = backends;
  const publisher = new JobBusPublisher(jobBus, { timeoutMs: Math.min(config.amqp.publishTimeoutMs, API_PUBLISH_WAIT_MS) });
  const types = new VolumeTypeService({ types: backends.volumeTypes, store, now: () => clock.now() });
  const gate = skewGate(upgrade);
  const admission = new MembershipClusterAdmission(membership, VOLUME_BINARY);
  const attachments = new AttachmentService({ store, publisher, gate, admission, cluster: clusterId(config), clock, logger: ctx.logger.child({ component: 'attachments' }) });
  const volumes = new VolumeService({
    store,
    publisher,
    stamps,
    admission,
    gate,
    clock,
    logger: ctx.logger.child({ component: 'volumes' }),
    resolveType: (nameOrId) => types.resolve(nameOrId),
    cluster: clusterId(config),
    availabilityZone: config.zone,
    abortRun: async (request) => void (await jobBus.publishNotice(abortNotice(request), { signal: AbortSignal.timeout(API_PUBLISH_WAIT_MS) })),
  });
  return [
    clusterRoutes(membership, VOLUME_BINARY),
    replicationRoutes({ membership, refuses: replicationGate(upgrade), now: () => clock.now(), volumeBinary: VOLUME_BINARY }),
    poolRoutes({ membership, version }),
    messageRoutes({ messages: backends.messages, now: () => clock.now() }),
    operatorViewRoutes({ locks: backends.lockTable, membership, leases: backends.leaseTtls }),
    serviceRemovalRoutes({ membership, store, logger }),
    opsViewRoutes({ store, membership, now: () => clock.now() }),
    deadLetterRoutes(jobBus),
    upgradeRoutes(upgrade.service),
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
    volumeRoutes(volumes, attachments),
    attachmentRoutes(attachments, types),
  ];
}

/** Builds the API with every route and listens; resolves with the bound address. */
export async function startApi(ctx: CompositionContext, backends: Backends, orphans: OrphanDetection, auth: ConfiguredAuth, upgrade: UpgradeParts, version: string): Promise<AddressInfo> {
  const { config, closer } = ctx;
  const logger = ctx.logger.child({ component: 'api' });
  // Registered before the listener, so closed after it (closes run in reverse): the stamps of the
  // last requests go out once the API has stopped, and before the store closes.
  const stamps = closer.use('publish stamps', publishStamps(ctx, backends));
  const cluster = clusterId(config);
  // A microversion that needs a newer message version waits for every live worker (skewGate).
  const maxVersion = (): Microversion => servedMaxVersion(upgrade.view.workerMessageVersion(cluster));
  const api = closer.use('api listener', new ApiServer({ logger, ...apiServerOptions(config.api), auth: auth.options, maxVersion }));
  closer.quiesce('api stops accepting', () => api.close());
  for (const routes of apiRoutes(ctx, backends, orphans, upgrade, version, stamps)) api.register(routes);
  expireMessages(ctx, backends);
  return api.listen(config.api.listen);
}

/** How often an API process removes expired user messages (Cinder's periodic `cleanup_expired_messages`). */
const MESSAGE_EXPIRY_INTERVAL_MS = 3_600_000;

/** Removes expired user messages every hour until shutdown; several API processes doing it is harmless. */
function expireMessages(ctx: CompositionContext, backends: Backends): void {
  const stop = new AbortController();
  const logger = ctx.logger.child({ component: 'messages' });
  const loop = (async () => {
    while (!stop.signal.aborted) {
      try {
        await ctx.clock.sleep(MESSAGE_EXPIRY_INTERVAL_MS, stop.signal);
        const removed = await backends.messages.deleteExpired(ctx.clock.now());
        if (removed > 0) logger.info({ removed }, 'removed expired user messages');
      } catch (err) {
        if (!stop.signal.aborted) logger.warn({ err }, 'removing expired user messages failed; trying again in an hour');
      }
    }
  })();
  ctx.closer.add('user message expiry', async () => {
    stop.abort();
    await loop;
  });
}
