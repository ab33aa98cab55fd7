/**
 * The failover ledger: which dead incarnations have had their work taken over, so that
 * `hearth_failovers_total` counts each death once across the cluster, not once per operation or
 * per member that took some of its operations (docs/orphans.md, "Counting failovers").
 */
import type { OwnerRef } from '../identity.js';

/** See the module doc. */
export interface FailoverLedger {
  /**
   * Records that `by` took over work of the dead incarnation `deadIncarnation`. True for the
   * first record of that death (the caller counts the failover), false when another member (or
   * this one) recorded it before. On etcd the record rides on `by`'s session lease: it lives
   * as long as that incarnation, so a death whose work is taken over again after its first
   * taker died too counts again.
   *
   * Failure semantics: a retryable `BackendUnavailableError` when etcd cannot be reached (the
   * caller decides whether to count); false when `by`'s lease is already gone.
   */
  first(deadIncarnation: string, by: OwnerRef): Promise<boolean>;
}
