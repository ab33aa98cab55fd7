import { Gauge, type Registry } from 'prom-client';
import type { Census, CensusSnapshot } from './census.js';

/**
 * The census's instruments (names as in docs/metrics.md). Only the exporting member has
 * samples for the counts (see `exporter.ts`); every worker exports the threshold
 * `HearthOperationStuck` compares against. Alert rules aggregate with `max`, so a hand-over
 * that briefly shows two exporters changes nothing.
 */
export class CensusMetrics {
  private source: Census | undefined;
  private readonly exporting: Gauge;

  constructor(registry: Registry, stuckAfterSeconds: number, private readonly onError: (err: unknown) => void) {
    const read = (): Promise<CensusSnapshot | undefined> => this.read();
    new Gauge({
      name: 'hearth_resources',
      help: 'Volumes and snapshots by status, from the exporting member\'s census (a watch on etcd, the store\'s own counts on SQLite).',
      labelNames: ['type', 'status'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        const snapshot = await read();
        for (const r of snapshot?.resources ?? []) this.set({ type: r.type, status: r.status }, r.count);
      },
    });
    new Gauge({
      name: 'hearth_operations_unfinished',
      help: 'Operations recorded and not finished yet (queued, running, or orphaned), by cluster and kind.',
      labelNames: ['cluster', 'operation'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        const snapshot = await read();
        for (const o of snapshot?.operations ?? []) this.set({ cluster: o.cluster, operation: o.kind }, o.count);
      },
    });
    new Gauge({
      name: 'hearth_operation_oldest_created_timestamp_seconds',
      help: 'When the oldest unfinished operation of each kind was recorded; its age is time() minus this.',
      labelNames: ['cluster', 'operation'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        const snapshot = await read();
        for (const o of snapshot?.operations ?? []) this.set({ cluster: o.cluster, operation: o.kind }, o.oldestCreatedAtMs / 1000);
      },
    });
    new Gauge({
      name: 'hearth_operation_stuck_threshold_seconds',
      help: 'Age above which an unfinished operation counts as stuck (alerts.operationStuckMs): HearthOperationStuck compares against it.',
      registers: [registry],
    }).set(stuckAfterSeconds);
    this.exporting = new Gauge({
      name: 'hearth_census_exporter',
      help: 'Whether this member exports the census (1: the oldest live member) or not (0).',
      registers: [registry],
    });
    this.exporting.set(0);
  }

  /** Exports `census` from now on (undefined: exports nothing). */
  follow(census: Census | undefined): void {
    this.source = census;
    this.exporting.set(census ? 1 : 0);
  }

  private async read(): Promise<CensusSnapshot | undefined> {
    if (!this.source) return undefined;
    try {
      return await this.source.snapshot();
    } catch (err) {
      this.onError(err);
      return undefined;
    }
  }
}
