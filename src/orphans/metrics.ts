import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { WAIT_BUCKETS_SECONDS } from '../observability/metrics.js';

/** How a dead incarnation's work came to be taken over (a bounded metric label). */
export type FailoverReason = 'cleanup' | 'auto_cleanup' | 'restart';

/** The outcome of cleaning one orphan (a bounded metric label). */
export type CleanupResult = 'cleaned' | 'skipped' | 'error';

/** How many dead incarnations a process remembers having taken work of (far more than a cluster has deaths in an hour). */
export const MAX_REMEMBERED_DEATHS = 4_096;

/** The orphans concern's Prometheus instruments (names as in docs/metrics.md). */
export class OrphanMetrics {
  /** `hearth_orphaned_operations{cluster}`: ops whose owner is dead, not cleaned yet. */
  readonly orphaned: Gauge<'cluster'>;
  /** `hearth_orphan_cleanups_total{result}`. */
  readonly cleanups: Counter<'result'>;
  /**
   * `hearth_failovers_total{cluster,reason}`: dead incarnations whose work was taken over, each
   * counted once in the cluster, by the member whose takeover the failover ledger recorded first.
   */
  readonly failovers: Counter<'cluster' | 'reason'>;
  /** `hearth_failover_duration_seconds`: owner's death (alive key gone) → takeover claim. */
  readonly failoverDuration: Histogram;
  private readonly clusters = new Set<string>();
  /** Dead incarnations already counted, oldest first (a Set keeps insertion order). */
  private readonly counted = new Set<string>();

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
      help: 'Dead incarnations whose work was taken over, counted once per death in the cluster (by the member that took it over first), by cluster and reason.',
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

  /**
   * True the first time this process takes over an op of `deadIncarnation` (then it asks the
   * failover ledger whether the death is counted), false afterwards. Memory is bounded: an
   * incarnation forgotten after {@link MAX_REMEMBERED_DEATHS} later deaths would be asked again.
   */
  firstInProcess(deadIncarnation: string): boolean {
    if (this.counted.has(deadIncarnation)) return false;
    this.counted.add(deadIncarnation);
    if (this.counted.size > MAX_REMEMBERED_DEATHS) this.counted.delete(this.counted.values().next().value as string);
    return true;
  }

  /** One failover: a dead incarnation's work taken over; `durationMs` when its death time is known. */
  failover(cluster: string, reason: FailoverReason, durationMs: number | undefined): void {
    this.failovers.inc({ cluster, reason });
    if (durationMs !== undefined) this.failoverDuration.observe(Math.max(0, durationMs) / 1000);
  }
}
