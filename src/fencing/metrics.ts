import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { WAIT_BUCKETS_SECONDS } from '../observability/metrics.js';

/** How an incarnation was fenced (a bounded metric label): the method, or `self`/`manual`. */
export type FenceMethodLabel = 'exec' | 'kubernetes' | 'lock-delay' | 'process-gone' | 'self' | 'manual';

/** The fencing concern's Prometheus instruments (names as in docs/metrics.md). */
export class FenceMetrics {
  /** `hearth_fences_total{method,result}`: fence attempts by this process. */
  readonly attempts: Counter<'method' | 'result'>;
  /** `hearth_fence_duration_seconds{method}`: death → fence on record. */
  readonly duration: Histogram<'method'>;
  /** `hearth_incarnations_awaiting_fence`: dead incarnations whose fence is not on record yet. */
  readonly awaiting: Gauge;

  constructor(registry: Registry) {
    this.attempts = new Counter({
      name: 'hearth_fences_total',
      help: 'Fence attempts this process made on dead incarnations, by method and result (fenced, failed).',
      labelNames: ['method', 'result'] as const,
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'hearth_fence_duration_seconds',
      help: 'Time from an incarnation\'s death (its alive key vanished) to its fence on record, by method.',
      labelNames: ['method'] as const,
      buckets: [...WAIT_BUCKETS_SECONDS, 60, 120, 300, 600, 1800, 3600],
      registers: [registry],
    });
    this.awaiting = new Gauge({
      name: 'hearth_incarnations_awaiting_fence',
      help: 'Dead incarnations whose fence is not on record yet: their orphans wait, and so do the locks they held.',
      registers: [registry],
    });
    for (const method of ['exec', 'kubernetes', 'lock-delay', 'process-gone'] as const) {
      this.attempts.inc({ method, result: 'fenced' }, 0);
      this.attempts.inc({ method, result: 'failed' }, 0);
    }
  }

  fenced(method: FenceMethodLabel, sinceDeathMs: number): void {
    this.attempts.inc({ method, result: 'fenced' });
    this.duration.observe({ method }, Math.max(0, sinceDeathMs) / 1_000);
  }

  failed(method: FenceMethodLabel): void {
    this.attempts.inc({ method, result: 'failed' });
  }
}
