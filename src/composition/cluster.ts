import { AmqpJobBus } from '../routing/amqp-job-bus.js';
import { clusterId, hostId } from '../config/rules.js';
import { createEtcdClient } from '../etcd/client.js';
import { KeyLayout } from '../etcd/keys.js';
import { EtcdLockService } from '../locks/etcd-lock-service.js';
import { EtcdLockTable } from '../locks/etcd-lock-table.js';
import { LockMetrics } from '../locks/metrics.js';
import { EtcdLeaseTtls } from '../membership/etcd-lease-ttl.js';
import { EtcdMembership } from '../membership/etcd-membership.js';
import { EtcdFenceQueue } from '../fencing/etcd-fence-queue.js';
import { EtcdMessageStore } from '../messages/etcd-message-store.js';
import { EtcdVolumeTypeStore } from '../volume-types/etcd-volume-type-store.js';
import { EtcdCensus } from '../census/etcd-census.js';
import { EtcdFailoverLedger } from '../orphans/etcd-failover-ledger.js';
import { EtcdSession } from '../session/etcd-session.js';
import { SessionMetrics } from '../session/metrics.js';
import { EtcdStateStore } from '../state/etcd-state-store.js';
import { createStateMetrics } from '../state/metrics.js';
import { EtcdClientMetrics } from '../etcd/metrics.js';
import { MessageVersions } from '../routing/message-versions.js';
import { RecordVersions } from '../state/record-versions.js';
import { EtcdUpgradeRegistry } from '../upgrade/etcd-upgrade-registry.js';
import { ManagementApi } from '../amqp/management.js';
import { splitUrlList, vhostOf } from '../config/url-lists.js';
import { QueueReplicaMonitor, type WatchedQueue } from '../routing/amqp-replicas.js';
import { replicaMetrics } from '../routing/metrics.js';
import { clusterQueueOf, hostQueueOf, topologyFor } from '../routing/topology.js';
import type { Backends, CompositionContext } from './backends.js';
import type { Closer } from '../lifecycle/closer.js';
import type { Logger } from '../observability/logger.js';

/**
 * A cluster member's backends: one etcd client shared by the state store, membership, and the
 * sessions and locks (one lease per incarnation, a lock service per session); RabbitMQ for
 * jobs. The etcd client connects lazily, on first use, and closes last.
 */
export async function openClusterBackends(ctx: CompositionContext): Promise<Backends> {
  const { config, clock, registry, logger, closer, retry } = ctx;
  const keys = new KeyLayout(config.etcd.prefix);
  const client = createEtcdClient(config.etcd, retry, new EtcdClientMetrics(registry, config.etcd.endpoints));
  closer.add('etcd client', () => client.close());
  const host = hostId(config);
  const sessionMetrics = new SessionMetrics(registry);
  /** An etcd session of this host: a worker's (with metrics) or the upgrade presence's. */
  const openSession = (component: string, signal?: AbortSignal, metrics?: SessionMetrics): Promise<EtcdSession> =>
    EtcdSession.open({
      client,
      host,
      leaseTtlMs: config.leaseTtlMs,
      leaseMarginMs: config.leaseMarginMs,
      callTimeoutMs: config.etcd.callTimeoutMs,
      logger: logger.child({ component }),
      clock,
      ...(metrics ? { metrics } : {}),
      ...(signal ? { signal } : {}),
    });
  const lockMetrics = new LockMetrics(registry);
  // Records are written at the cluster's finalized schema and messages at the version every
  // live process reads: the upgrade view (app.ts) feeds both once it has read the cluster.
  const protocol = { records: new RecordVersions(), messages: new MessageVersions() };
  const store = closer.use(
    'state store',
    new EtcdStateStore({ client, keys, clock, metrics: createStateMetrics(registry), logger: logger.child({ component: 'state' }), versions: protocol.records }),
  );
  buildListIndexesInBackground(store, logger.child({ component: 'state' }), closer);
  const membership = closer.use('membership', new EtcdMembership({ client, keys, clock, logger: logger.child({ component: 'membership' }), retry }));
  if (config.amqp.managementUrl !== '') closer.use('queue replica monitor', replicaMonitor(ctx, host)).start();
  return {
    mode: 'cluster',
    store,
    membership,
    jobBus: new AmqpJobBus(config.amqp, { identity: { cluster: clusterId(config), host }, logger: logger.child({ component: 'job-bus' }), registry, versions: protocol.messages }),
    lockTable: new EtcdLockTable({ client, keys }),
    leaseTtls: new EtcdLeaseTtls(client, config.etcd.callTimeoutMs),
    failoverLedger: new EtcdFailoverLedger({ client, keys }),
    fenceQueue: new EtcdFenceQueue({ client, keys, logger: logger.child({ component: 'fencing' }), now: () => clock.now() }),
    messages: new EtcdMessageStore({ client, keys }),
    volumeTypes: new EtcdVolumeTypeStore({ client, keys }),
    openCensus: () => new EtcdCensus({ client, keys, clock, logger: logger.child({ component: 'census' }), retry }),
    upgrade: closer.use(
      'upgrade registry',
      new EtcdUpgradeRegistry({
        client,
        keys,
        clock,
        logger: logger.child({ component: 'upgrade' }),
        retry,
        // A presence lease of its own per process (not counted as a worker session).
        openSession: (signal) => openSession('upgrade', signal),
      }),
    ),
    protocol,
    openSession: (signal) => openSession('session', signal, sessionMetrics),
    lockServiceFor: (session, options) =>
      new EtcdLockService({
        ...(options?.handOff ? { handOff: options.handOff } : {}),
        client,
        keys,
        session,
        callTimeoutMs: config.etcd.callTimeoutMs,
        metrics: lockMetrics,
        logger: logger.child({ component: 'locks', incarnation: session.incarnation }),
        retry,
      }),
    healthy: () => ({ ok: true }),
  };
}

/**
 * The poll of the management API (`amqp.managementUrl`) for the replicas of the queues this
 * process uses: the cluster queue and the dead-letter queue, and a worker's own host queue.
 */
function replicaMonitor(ctx: CompositionContext, host: string): QueueReplicaMonitor {
  const { config } = ctx;
  const cluster = clusterId(config);
  const queues: WatchedQueue[] = [{ kind: 'dead', name: topologyFor(config.amqp.prefix, cluster, host).deadQueue }];
  // Each message version this build reads has its own work queues (routing/topology.ts).
  for (const version of new MessageVersions().readVersions()) {
    queues.push({ kind: 'cluster', name: clusterQueueOf(config.amqp.prefix, cluster, version) });
    if (config.roles.includes('worker')) queues.push({ kind: 'host', name: hostQueueOf(config.amqp.prefix, cluster, host, version) });
  }
  return new QueueReplicaMonitor({
    // One node gets connectTimeoutMs; a poll (nodes, then each queue) at most three of those.
    reader: new ManagementApi({ ...config.amqp, timeoutMs: config.amqp.connectTimeoutMs }),
    vhost: vhostOf(splitUrlList(config.amqp.url)[0] ?? ''),
    queues,
    groupSize: config.amqp.quorumInitialGroupSize,
    intervalMs: config.amqp.managementIntervalMs,
    timeoutMs: Math.min(config.amqp.managementIntervalMs, 3 * config.amqp.connectTimeoutMs),
    metrics: replicaMetrics(ctx.registry),
    logger: ctx.logger.child({ component: 'queue-replicas' }),
    clock: ctx.clock,
  });
}

/**
 * Indexes records written before the listing indexes existed (once per cluster: a no-op read
 * afterwards), in the background so that a start never waits for it; a failure is logged and
 * the next start builds again (docs/state.md, "Listing").
 */
function buildListIndexesInBackground(store: EtcdStateStore, logger: Logger, closer: Closer): void {
  const abort = new AbortController();
  closer.add('listing index build', () => abort.abort());
  store.buildListIndexes(abort.signal).then(
    (indexed) => {
      if (indexed > 0) logger.info({ indexed }, 'indexed the records written before the listing indexes');
    },
    (err: unknown) => {
      if (!abort.signal.aborted) logger.warn({ err }, 'could not build the listing indexes; listings miss records written before them until a start builds them');
    },
  );
}
