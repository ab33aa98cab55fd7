import { Counter, Gauge, type Registry } from 'prom-client';
import type { PoolReport } from '../membership/backend-report.js';

/** The sizes `hearth_backend_capacity_bytes` reports, as its `kind` label. */
export const CAPACITY_KINDS = ['total', 'free', 'provisioned', 'allocated'] as const;

/**
 * The backend's instruments (names as in docs/metrics.md): whether this worker's last check
 * passed, the pool as its driver last read it, and the threshold `HearthBackendNearlyFull`
 * compares against. Every worker of a cluster reports the same pool (shared storage): aggregate
 * with `max`, never `sum`.
 */
export class BackendMetrics {
  private readonly up: Gauge<'cluster'>;
  private readonly checks: Counter<'result'>;
  private readonly capacity: Gauge<'cluster' | 'kind'>;

  constructor(
    registry: Registry,
    private readonly cluster: string,
    nearlyFullRatio: number,
  ) {
    this.up = new Gauge({
      name: 'hearth_backend_up',
      help: 'Whether the last health check of this worker\'s backend passed (1) or not (0).',
      labelNames: ['cluster'] as const,
      registers: [registry],
    });
    this.checks = new Counter({
      name: 'hearth_backend_checks_total',
      help: 'Backend health checks this worker ran, by result.',
      labelNames: ['result'] as const,
      registers: [registry],
    });
    this.capacity = new Gauge({
      name: 'hearth_backend_capacity_bytes',
      help: 'The pool as this worker\'s driver last read it: total, free, provisioned and allocated bytes.',
      labelNames: ['cluster', 'kind'] as const,
      registers: [registry],
    });
    const threshold = new Gauge({
      name: 'hearth_backend_nearly_full_threshold_ratio',
      help: 'Share of the pool in use above which HearthBackendNearlyFull fires (alerts.backendNearlyFullPercent).',
      registers: [registry],
    });
    threshold.set(nearlyFullRatio);
    for (const result of ['up', 'down']) this.checks.inc({ result }, 0);
  }

  checked(up: boolean): void {
    this.checks.inc({ result: up ? 'up' : 'down' });
  }

  state(up: boolean): void {
    this.up.set({ cluster: this.cluster }, up ? 1 : 0);
  }

  pool(pool: PoolReport | null): void {
    if (!pool) return;
    const { cluster } = this;
    this.capacity.set({ cluster, kind: 'total' }, pool.totalBytes);
    this.capacity.set({ cluster, kind: 'free' }, pool.freeBytes);
    this.capacity.set({ cluster, kind: 'provisioned' }, pool.provisionedBytes);
    this.capacity.set({ cluster, kind: 'allocated' }, pool.allocatedBytes);
  }
}
