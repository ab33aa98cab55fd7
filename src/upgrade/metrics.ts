import { Counter, Gauge, type Registry } from 'prom-client';

/** What the scrape-time gauges read: since when each cluster has run mixed releases. */
export type MixedSource = () => ReadonlyMap<string, number | null>;

/** The upgrade concern's Prometheus instruments (names as in docs/metrics.md). */
export class UpgradeMetrics {
  /** `hearth_upgrade_schema_version`: the record schema the cluster has finalized. */
  readonly schemaVersion: Gauge;
  /** `hearth_upgrade_migration_in_progress`: 1 while the data migration toward it is unfinished. */
  readonly migrationInProgress: Gauge;
  /** `hearth_upgrade_migrated_records_total`: records this process rewrote in data migrations. */
  readonly migrated: Counter;
  /** `hearth_upgrade_message_version{cluster}`: the message version this process writes to a cluster. */
  readonly messageVersion: Gauge<'cluster'>;
  /** `hearth_upgrade_processes{cluster,release}`: live processes per hearth release, as this process sees them. */
  readonly processes: Gauge<'cluster' | 'release'>;
  /** `hearth_upgrade_mixed_versions_allowed_seconds`: `upgrade.maxMixedVersionsMs`, for the alert. */
  readonly mixedAllowed: Gauge;

  constructor(registry: Registry, now: () => number, mixed: MixedSource) {
    this.schemaVersion = new Gauge({ name: 'hearth_upgrade_schema_version', help: 'The record schema the cluster has finalized.', registers: [registry] });
    this.migrationInProgress = new Gauge({
      name: 'hearth_upgrade_migration_in_progress',
      help: '1 while the data migration toward the finalized record schema is unfinished.',
      registers: [registry],
    });
    this.migrated = new Counter({ name: 'hearth_upgrade_migrated_records_total', help: 'Records this process rewrote in data migrations.', registers: [registry] });
    this.messageVersion = new Gauge({
      name: 'hearth_upgrade_message_version',
      help: 'The message version this process writes to a cluster: the highest every live process of it reads.',
      labelNames: ['cluster'] as const,
      registers: [registry],
    });
    this.processes = new Gauge({
      name: 'hearth_upgrade_processes',
      help: 'Live hearth processes per release, as this process sees them.',
      labelNames: ['cluster', 'release'] as const,
      registers: [registry],
    });
    new Gauge({
      name: 'hearth_upgrade_mixed_versions_seconds',
      help: 'How long the live processes of a cluster have run more than one hearth release (0: one release).',
      labelNames: ['cluster'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const [cluster, since] of mixed()) this.set({ cluster }, since === null ? 0 : Math.max(0, (now() - since) / 1_000));
      },
    });
    this.mixedAllowed = new Gauge({
      name: 'hearth_upgrade_mixed_versions_allowed_seconds',
      help: 'How long a cluster may run mixed releases before HearthMixedVersions fires (upgrade.maxMixedVersionsMs).',
      registers: [registry],
    });
  }
}
