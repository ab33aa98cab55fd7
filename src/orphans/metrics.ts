import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { WAIT_BUCKETS_SECONDS } from '../observability/metrics.js';

/** How a dead incarnation's work came to be taken over (a bounded metric label). */
export type FailoverReason = 'cleanup' | 'auto_cleanup' | 'restart';

/** The outcome of cleaning one orphan (a bounded metric label). */
export type CleanupResult = 'cleaned' | 'skipped' | 'error';

/** The orphans concern's Prometheus instruments (names as in docs/metrics.md). */
export class OrphanMetrics {
  /** `hearth_orphaned_operations{cluster}`: ops whose owner is dead, not cleaned yet. */
  readonly orphaned: Gauge<'cluster'>;
  /** `hearth_orphan_cleanups_total{result}`. */
  readonly cleanups: Counter<'result'>;
  /** `hearth_failovers_total{cluster,reason}`: one per op of a dead incarnation taken over. */
  readonly failovers: Counter<'cluster' | 'reason'>;
  /** `hearth_failover_duration_seconds`: owner's death (alive key gone) → takeover claim. */
  readonly failoverDuration: Histogram;
  private readonly clusters = new Set<string>();

  constructor(registry: Registry) {
    this.orphaned = new Gauge({
      name: 'hearth_orphaned_operations',
      help: 'Operations whose owner incarnation is no longer alive and that nobody has cleaned yet, per cluster.',
      labelNames: ['cluster'] as const,
      registers: [registry],
    });
    this.cleanups = new Counter({
      name: 'hearth_orphan_cleanups_total',
      help: 'Orphans this process tried to clean up, by result (cleaned, skipped: another cleaner won or the op changed, error).',
      labelNames: ['result'] as const,
      registers: [registry],
    });
    this.failovers = new Counter({
      name: 'hearth_failovers_total',
      help: 'Operations of a dead incarnation that this process took over, by cluster and reason.',
      labelNames: ['cluster', 'reason'] as const,
      registers: [registry],
    });
    this.failoverDuration = new Histogram({
      name: 'hearth_failover_duration_seconds',
      help: 'Time from the owner\'s death (its alive key vanished) to the takeover claim.',
      buckets: [...WAIT_BUCKETS_SECONDS, 60, 120, 300, 600, 1800, 3600],
      registers: [registry],
    });
    for (const result of ['cleaned', 'skipped', 'error'] as const) this.cleanups.inc({ result }, 0);
  }

  /** Declares a cluster, so its gauge reads 0 (not absent) while it has no orphans. */
  watchCluster(cluster: string): void {
    if (this.clusters.has(cluster)) return;
    this.clusters.add(cluster);
    this.orphaned.set({ cluster }, 0);
  }

  /** Sets the orphan count of every cluster seen so far (0 for those with none now). */
  setOrphans(counts: ReadonlyMap<string, number>): void {
    for (const cluster of counts.keys()) this.clusters.add(cluster);
    for (const cluster of this.clusters) this.orphaned.set({ cluster }, counts.get(cluster) ?? 0);
  }

  cleanup(result: CleanupResult): void {
    this.cleanups.inc({ result });
  }

  /** One op taken over; `durationMs` when the owner's death time is known. */
  failover(cluster: string, reason: FailoverReason, durationMs: number | undefined): void {
    this.failovers.inc({ cluster, reason });
    if (durationMs !== undefined) this.failoverDuration.observe(Math.max(0, durationMs) / 1000);
  }
}
