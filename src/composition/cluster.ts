import type { Etcd3 } from 'etcd3';
import { clusterId, hostId } from '../config/rules.js';
import { createEtcdClient } from '../etcd/client.js';
import { KeyLayout } from '../etcd/keys.js';
import { EtcdLockTable } from '../locks/etcd-lock-table.js';
import { createClusterLocking } from '../locks/factory.js';
import { EtcdLeaseTtls } from '../membership/etcd-lease-ttl.js';
import { EtcdFailoverLedger } from '../orphans/etcd-failover-ledger.js';
import { EtcdMembership } from '../membership/etcd-membership.js';
import { createJobBus } from '../routing/create-job-bus.js';
import { EtcdStateStore } from '../state/etcd-state-store.js';
import { createStateMetrics } from '../state/metrics.js';
import type { BackendOptions, Backends } from './backends.js';

/**
 * A cluster member's backends: one etcd client shared by the state store, membership, and the
 * sessions and locks (a session supervisor making one lease per incarnation, a lock service per
 * session); RabbitMQ for jobs. The etcd client connects lazily, on first use.
 */
export function clusterBackends(options: BackendOptions): Backends {
  const { config, clock, registry, logger } = options;
  const keys = new KeyLayout(config.etcd.prefix);
  let etcd: Etcd3 | undefined;
  const client = (): Etcd3 => (etcd ??= createEtcdClient(config.etcd));
  return {
    mode: 'cluster',
    jobBus: createJobBus(config, { identity: { cluster: clusterId(config), host: hostId(config) }, logger, registry }),
    async prepare() {
      // Nothing to lock: the data dir may sit on a mount the members share.
    },
    openStateStore: () =>
      new EtcdStateStore({ client: client(), keys, clock, metrics: createStateMetrics(registry), logger: logger.child({ component: 'state' }) }),
    openMembership: async () => new EtcdMembership({ client: client(), keys, clock, logger: logger.child({ component: 'membership' }) }),
    createLocking: () => {
      const locking = createClusterLocking({ client: client(), config, registry, logger, clock });
      locking.sessions.start();
      return locking;
    },
    lockTable: () => new EtcdLockTable({ client: client(), keys }),
    leaseTtls: () => new EtcdLeaseTtls(client(), config.etcd.callTimeoutMs),
    failoverLedger: () => new EtcdFailoverLedger({ client: client(), keys }),
    healthy: () => ({ ok: true }),
    async close() {
      etcd?.close();
    },
  };
}
