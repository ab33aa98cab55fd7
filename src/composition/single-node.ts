import { join } from 'node:path';
import { clusterId, hostId } from '../config/rules.js';
import { DataDirLock } from '../locks/data-dir-lock.js';
import { LocalLockService } from '../locks/local-lock-service.js';
import { LocalLockTable } from '../locks/local-lock-table.js';
import { LockMetrics } from '../locks/metrics.js';
import { noLeases } from '../membership/lease-ttl.js';
import { LocalMembership } from '../membership/local-membership.js';
import { LocalRecordFile } from '../membership/local-store.js';
import { LocalFenceQueue } from '../fencing/local-fence-queue.js';
import { SqliteMessageStore } from '../messages/sqlite-message-store.js';
import { SqliteVolumeTypeStore } from '../volume-types/sqlite-volume-type-store.js';
import { SqliteCensus } from '../census/sqlite-census.js';
import { LocalFailoverLedger } from '../orphans/local-failover-ledger.js';
import { LocalBroker } from '../routing/local-broker.js';
import { LocalJobBus } from '../routing/local-job-bus.js';
import { LocalSession } from '../session/local-session.js';
import { createStateMetrics } from '../state/metrics.js';
import { SQLITE_STATE_FILE, SqliteStateStore } from '../state/sqlite-state-store.js';
import { PROTOCOL } from '../protocol.js';
import { MessageVersions } from '../routing/message-versions.js';
import { RecordVersions } from '../state/record-versions.js';
import { LocalUpgradeRegistry } from '../upgrade/local-upgrade-registry.js';
import type { Backends, CompositionContext } from './backends.js';

/**
 * The single-node daemon's backends: SQLite under `dataDir`, the in-process session and fair
 * mutex, membership in `<dataDir>/membership.json`, the in-process job bus — and, first of all,
 * one file lock on the data directory, so two daemons never share one store (a second exits 1
 * with `DATA_DIR_LOCKED`).
 */
export async function openSingleNodeBackends(ctx: CompositionContext): Promise<Backends> {
  const { config, clock, registry, logger, closer } = ctx;
  const dataDirLock = await DataDirLock.acquire(config.dataDir, {
    onCompromised: (err) => logger.fatal({ err }, 'lost the data directory lock; another process may use the store'),
  });
  closer.add('data-dir lock', () => dataDirLock.release());
  const store = closer.use('state store', SqliteStateStore.open({ path: join(config.dataDir, SQLITE_STATE_FILE), clock, metrics: createStateMetrics(registry) }));
  const messages = closer.use('user messages', SqliteMessageStore.open(join(config.dataDir, SQLITE_STATE_FILE)));
  const volumeTypes = closer.use('volume types', SqliteVolumeTypeStore.open(join(config.dataDir, SQLITE_STATE_FILE)));
  const migrated = store.recordSchema.migrated;
  if (migrated) logger.info({ from: migrated.from, to: store.recordSchema.schema, backup: migrated.backup }, 'migrated the records of the state file; the backup taken first is kept');
  // One process: it writes the newest message version, and its file is at its newest schema.
  const protocol = { records: new RecordVersions(PROTOCOL.schema, store.recordSchema.schema), messages: new MessageVersions() };
  const membership = closer.use('membership', new LocalMembership(await LocalRecordFile.open(join(config.dataDir, 'membership.json')), clock));
  const lockMetrics = new LockMetrics(registry);
  let locks: LocalLockService | undefined;
  return {
    mode: 'single-node',
    store,
    membership,
    jobBus: new LocalJobBus(config.amqp, {
      broker: new LocalBroker(),
      identity: { cluster: clusterId(config), host: hostId(config) },
      logger: logger.child({ component: 'job-bus' }),
      registry,
      versions: protocol.messages,
    }),
    lockTable: new LocalLockTable(() => locks),
    leaseTtls: noLeases,
    failoverLedger: new LocalFailoverLedger(),
    fenceQueue: new LocalFenceQueue(() => clock.now()),
    messages,
    volumeTypes,
    openCensus: () => SqliteCensus.open(join(config.dataDir, SQLITE_STATE_FILE)),
    upgrade: closer.use('upgrade registry', new LocalUpgradeRegistry(store.recordSchema.schema)),
    protocol,
    openSession: async () => new LocalSession(hostId(config)),
    lockServiceFor: (session) => (locks = new LocalLockService({ metrics: lockMetrics, incarnation: session.incarnation })),
    healthy: () => (dataDirLock.compromised ? { ok: false, detail: 'the data directory lock was lost' } : { ok: true }),
  };
}
