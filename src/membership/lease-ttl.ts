/**
 * Lease times of live members, for the operator's members view (`GET /hearth/v1/members`):
 * how long each member's session lease was granted for and how much of it is left. Display
 * only — up and down come from the alive entries, never from these numbers.
 */

/** One member's session lease as etcd reports it. */
export interface LeaseTtl {
  /** The lease id, hex (as in the incarnation id). */
  readonly id: string;
  /** TTL the lease was granted with, seconds. */
  readonly grantedTtlS: number;
  /** Seconds left before etcd expires it unless kept alive; 0 once expired. */
  readonly remainingTtlS: number;
}

/** See the module doc. */
export interface LeaseTtls {
  /**
   * The lease of each incarnation given, by incarnation; incarnations without a lease (single
   * node) or whose lease is gone are left out.
   *
   * Failure semantics: a retryable `BackendUnavailableError` when etcd cannot be reached.
   */
  of(incarnations: readonly string[], signal?: AbortSignal): Promise<ReadonlyMap<string, LeaseTtl>>;
}

/** A single node has no leases: the process itself is its liveness. */
export const noLeases: LeaseTtls = {
  of: () => Promise.resolve(new Map()),
};

/** The lease id (hex) in an etcd incarnation id `<host>:<leaseHex>`, if it has one. */
export function leaseHexOf(incarnation: string): string | undefined {
  const hex = incarnation.slice(incarnation.lastIndexOf(':') + 1);
  return /^[0-9a-f]{1,16}$/.test(hex) ? hex : undefined;
}
