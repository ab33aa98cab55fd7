/**
 * The census: how many volumes and snapshots there are in each status, and how old the oldest
 * unfinished operation of each kind is — what an operator needs to see work that is stuck on a
 * member that is still alive (orphans cover dead owners).
 *
 * It must stay cheap at 100,000 records, so nothing lists the records on a timer: on etcd the
 * counts follow a watch of `resources/` and `ops/` (one list at start, then events), on SQLite
 * the store's own writes keep a table of counts (triggers, in the same transactions). Only one
 * member exports it (`exporter.ts`), so one watch serves the cluster.
 *
 * Adapters: `EtcdCensus`, `SqliteCensus`.
 */

/** The census at one moment. */
export interface CensusSnapshot {
  /** Count per type and status (statuses with no record may show 0). */
  readonly resources: readonly { readonly type: string; readonly status: string; readonly count: number }[];
  /** Unfinished ops per cluster and kind, with the creation time of the oldest (epoch ms). */
  readonly operations: readonly { readonly cluster: string; readonly kind: string; readonly count: number; readonly oldestCreatedAtMs: number }[];
}

/** See the module doc. */
export interface Census {
  /** Starts following the records (etcd: lists them once, then watches). Resolves when the counts are known. */
  start(signal: AbortSignal): Promise<void>;
  /** The counts now; from memory (etcd) or a small table (SQLite). */
  snapshot(): Promise<CensusSnapshot>;
  /** Stops following and forgets. Idempotent. */
  close(): Promise<void>;
}

/** The type and status counting key. */
export function countKey(type: string, status: string): string {
  return `${type}\t${status}`;
}
