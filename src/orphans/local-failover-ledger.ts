import type { FailoverLedger } from './failover-ledger.js';

/** Deaths remembered at most; the oldest is forgotten first. */
const MAX_REMEMBERED = 4_096;

/**
 * A single node's failover ledger: the process is the whole cluster, so its memory is the
 * ledger. Failure semantics: none; it is memory.
 */
export class LocalFailoverLedger implements FailoverLedger {
  /** Insertion-ordered, so the oldest entry is the first. */
  private readonly recorded = new Set<string>();

  first(deadIncarnation: string): Promise<boolean> {
    if (this.recorded.has(deadIncarnation)) return Promise.resolve(false);
    this.recorded.add(deadIncarnation);
    if (this.recorded.size > MAX_REMEMBERED) this.recorded.delete(this.recorded.values().next().value as string);
    return Promise.resolve(true);
  }
}
