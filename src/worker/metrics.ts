import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { DURATION_BUCKETS_SECONDS } from '../observability/metrics.js';
import { MANAGED_KINDS } from './plan.js';

/**
 * How a run of an operation ended (the `result` label):
 * - `success` / `error`: the final transition wrote the success / Cinder's error status;
 * - `handed_back`: released (owner none) and re-published for another member (drain);
 * - `fenced`: this incarnation lost its lease or lock, so it wrote nothing more;
 * - `gone`: the op was no longer this run's to finish (reset by an admin meanwhile, replaced by a force-delete);
 * - `refused`: the pool had no room for it (a create or an extend); no driver call was made.
 */
export type OperationResult = 'success' | 'error' | 'handed_back' | 'fenced' | 'gone' | 'refused';

export const OPERATION_RESULTS: readonly OperationResult[] = ['success', 'error', 'handed_back', 'fenced', 'gone', 'refused'];

const byRegistry = new WeakMap<Registry, WorkerMetrics>();

/** The worker's instruments on `registry`; several workers on one registry (tests) share them. */
export function workerMetrics(registry: Registry): WorkerMetrics {
  let metrics = byRegistry.get(registry);
  if (!metrics) byRegistry.set(registry, (metrics = new WorkerMetrics(registry)));
  return metrics;
}

/** The worker's instruments (names as in docs/metrics.md); get them with {@link workerMetrics}. */
export class WorkerMetrics {
  private readonly total: Counter<'operation' | 'result'>;
  private readonly duration: Histogram<'operation'>;
  private readonly inProgress: Gauge<'operation'>;

  constructor(registry: Registry) {
    this.total = new Counter({
      name: 'hearth_operations_total',
      help: 'Operations a worker finished, by kind and result.',
      labelNames: ['operation', 'result'] as const,
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'hearth_operation_duration_seconds',
      help: 'Time from the claim of an operation to its final transition.',
      labelNames: ['operation'] as const,
      buckets: DURATION_BUCKETS_SECONDS,
      registers: [registry],
    });
    this.inProgress = new Gauge({
      name: 'hearth_operations_in_progress',
      help: 'Operations this worker runs now.',
      labelNames: ['operation'] as const,
      registers: [registry],
    });
    // Every series from the start, so rate() and alerts work from the first operation.
    for (const operation of MANAGED_KINDS) {
      this.inProgress.set({ operation }, 0);
      for (const result of OPERATION_RESULTS) this.total.inc({ operation, result }, 0);
    }
  }

  /** Counts an operation as running; call the returned function once, with how it ended. */
  started(operation: string, now: () => number): (result: OperationResult) => void {
    const startedAt = now();
    this.inProgress.inc({ operation });
    let done = false;
    return (result) => {
      if (done) return;
      done = true;
      this.inProgress.dec({ operation });
      this.total.inc({ operation, result });
      this.duration.observe({ operation }, (now() - startedAt) / 1_000);
    };
  }
}
