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
import { EtcdFailoverLedger } from '../orphans/etcd-failover-ledger.js';
import { EtcdSession } from '../session/etcd-session.js';
import { SessionMetrics } from '../session/metrics.js';
import { EtcdStateStore } from '../state/etcd-state-store.js';
import { createStateMetrics } from '../state/metrics.js';
import { EtcdClientMetrics } from '../etcd/metrics.js';
import { ManagementApi } from '../amqp/management.js';
import { splitUrlList, vhostOf } from '../config/url-lists.js';
import { QueueReplicaMonitor, type WatchedQueue } from '../routing/amqp-replicas.js';
import { replicaMetrics } from '../routing/metrics.js';
import { clusterQueueName, hostQueueName, topologyFor } from '../routing/topology.js';
import type { Backends, CompositionContext } from './backends.js';

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
  const lockMetrics = new LockMetrics(registry);
  const store = closer.use(
    'state store',
    new EtcdStateStore({ client, keys, clock, metrics: createStateMetrics(registry), logger: logger.child({ component: 'state' }) }),
  );
  const membership = closer.use('membership', new EtcdMembership({ client, keys, clock, logger: logger.child({ component: 'membership' }), retry }));
  if (config.amqp.managementUrl !== '') closer.use('queue replica monitor', replicaMonitor(ctx, host)).start();
  return {
    mode: 'cluster',
    store,
    membership,
    jobBus: new AmqpJobBus(config.amqp, { identity: { cluster: clusterId(config), host }, logger: logger.child({ component: 'job-bus' }), registry }),
    lockTable: new EtcdLockTable({ client, keys }),
    leaseTtls: new EtcdLeaseTtls(client, config.etcd.callTimeoutMs),
    failoverLedger: new EtcdFailoverLedger({ client, keys }),
    fenceQueue: new EtcdFenceQueue({ client, keys, logger: logger.child({ component: 'fencing' }), now: () => clock.now() }),
    openSession: (signal) =>
      EtcdSession.open({
        client,
        host,
        leaseTtlMs: config.leaseTtlMs,
        leaseMarginMs: config.leaseMarginMs,
        callTimeoutMs: config.etcd.callTimeoutMs,
        logger: logger.child({ component: 'session' }),
        metrics: sessionMetrics,
        signal,
        clock,
      }),
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
  const queues: WatchedQueue[] = [
    { kind: 'cluster', name: clusterQueueName(config.amqp.prefix, cluster) },
    { kind: 'dead', name: topologyFor(config.amqp.prefix, cluster, host).deadQueue },
  ];
  if (config.roles.includes('worker')) queues.push({ kind: 'host', name: hostQueueName(config.amqp.prefix, cluster, host) });
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
