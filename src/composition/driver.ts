import { join } from 'node:path';
import { clusterId, hostId } from '../config/rules.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { parseReplicationTargets } from '../drivers/replication-targets.js';
import type { VolumeDriver } from '../drivers/volume-driver.js';

/** What {@link openDriver} needs besides the configuration. */
export interface DriverOptions {
  readonly logger: Logger;
  /** Randomness for the fake driver's failures; inject a seeded one in tests. */
  readonly random?: () => number;
}

/**
 * Builds the volume driver the configuration names (`driver.name`): `file` on `driver.fileDir`
 * (default `<dataDir>/volumes`), or `fake` with its latency, failure rate and journal; each
 * with its replication targets when configured (`driver.replicationTargets`,
 * `driver.fakeReplicationTargets`). The caller checks `requireActiveActive(driver, clustered)`
 * before taking work, and makes the driver serve the backend its cluster record names
 * (`driver.replication.serve`). Only the named driver's code is loaded.
 */
export async function openDriver(config: Pick<Config, 'driver' | 'dataDir' | 'backendHealth' | 'cluster' | 'backend' | 'host'>, options: DriverOptions): Promise<VolumeDriver> {
  const logger = options.logger.child({ component: 'driver' });
  const pool = { maxOverSubscriptionRatio: config.driver.maxOverSubscriptionRatio, reservedPercentage: config.driver.reservedPercentage };
  switch (config.driver.name) {
    case 'file': {
      const dir = config.driver.fileDir || join(config.dataDir, 'volumes');
      const replicationTargets = parseReplicationTargets(config.driver.replicationTargets);
      const [{ FileVolumeDriver }, { probeCopyTool }] = await Promise.all([import('../drivers/file-volume-driver.js'), import('../drivers/sparse-copy.js')]);
      const driver = await FileVolumeDriver.open({
        replicationTargets,
        dir,
        cluster: clusterId(config),
        member: hostId(config),
        stateDir: config.dataDir,
        probeTimeoutMs: config.backendHealth.probeTimeoutMs,
        minFreeBytes: config.backendHealth.minFreeBytes,
        pool,
      });
      try {
        const targets = replicationTargets.map((t) => `${t.backendId}:${t.location}`);
        logger.info({ driver: 'file', dir, copyTool: await probeCopyTool(), ...(targets.length > 0 ? { replicationTargets: targets } : {}) }, 'volume driver ready');
      } catch (err) {
        // Volumes can still be created, extended and deleted; snapshots will fail with this error.
        logger.warn({ driver: 'file', dir, err }, 'volume driver ready, but it cannot copy: snapshots will fail');
      }
      return driver;
    }
    case 'fake': {
      const { fakeLatencyMs, fakeFailureRate, fakeJournal, fakeDownFile, fakeCapacityGiB, fakeHang, fakeHangIgnoresAbort, fakeReplicationTargets } = config.driver;
      const { FakeVolumeDriver } = await import('../drivers/fake-volume-driver.js');
      logger.info({ driver: 'fake', latencyMs: fakeLatencyMs, failureRate: fakeFailureRate, journal: fakeJournal || undefined, hang: fakeHang }, 'volume driver ready');
      return FakeVolumeDriver.open({
        latencyMs: fakeLatencyMs,
        failureRate: fakeFailureRate,
        journalPath: fakeJournal,
        ...(fakeDownFile ? { downFile: fakeDownFile } : {}),
        capacityGiB: fakeCapacityGiB,
        pool,
        hang: fakeHang,
        hangIgnoresAbort: fakeHangIgnoresAbort,
        replicationTargets: parseReplicationTargets(fakeReplicationTargets),
        ...(options.random ? { random: options.random } : {}),
      });
    }
  }
}
