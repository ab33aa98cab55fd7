import { join } from 'node:path';
import { DataDirLock } from '../locks/data-dir-lock.js';
import { createSingleNodeLocking, type SingleNodeLocking } from '../locks/factory.js';
import { LocalLockTable } from '../locks/local-lock-table.js';
import { noLeases } from '../membership/lease-ttl.js';
import { LocalFailoverLedger } from '../orphans/local-failover-ledger.js';
import { LocalMembership } from '../membership/local-membership.js';
import { LocalRecordFile } from '../membership/local-store.js';
import { hostId, clusterId } from '../config/rules.js';
import { createJobBus } from '../routing/create-job-bus.js';
import { createStateMetrics } from '../state/metrics.js';
import { SQLITE_STATE_FILE, SqliteStateStore } from '../state/sqlite-state-store.js';
import type { BackendOptions, Backends } from './backends.js';

/**
 * The single-node daemon's backends: SQLite under `dataDir`, the in-process session and fair
 * mutex, membership in `<dataDir>/membership.json`, the in-process job bus — and one file lock
 * on the data directory, so two daemons never share one store (a second exits 1 with
 * `DATA_DIR_LOCKED`).
 */
export function singleNodeBackends(options: BackendOptions): Backends {
  const { config, clock, registry, logger } = options;
  let dataDirLock: DataDirLock | undefined;
  let locking: SingleNodeLocking | undefined;
  return {
    mode: 'single-node',
    jobBus: createJobBus(config, { identity: { cluster: clusterId(config), host: hostId(config) }, logger, registry }),
    async prepare() {
      dataDirLock = await DataDirLock.acquire(config.dataDir, {
        onCompromised: (err) => logger.fatal({ err }, 'lost the data directory lock; another process may use the store'),
      });
    },
    openStateStore: () => SqliteStateStore.open({ path: join(config.dataDir, SQLITE_STATE_FILE), clock, metrics: createStateMetrics(registry) }),
    openMembership: async () => new LocalMembership(await LocalRecordFile.open(join(config.dataDir, 'membership.json')), clock),
    createLocking: () => (locking = createSingleNodeLocking({ config, registry })),
    lockTable: () => new LocalLockTable(() => locking?.local),
    leaseTtls: () => noLeases,
    failoverLedger: () => new LocalFailoverLedger(),
    healthy: () => (dataDirLock?.compromised ? { ok: false, detail: 'the data directory lock was lost' } : { ok: true }),
    async close() {
      await dataDirLock?.release();
    },
  };
}
