/**
 * The lock table port: which locks are held right now, by whom, since when and under which
 * fencing revision — the operator's view (`GET /hearth/v1/locks`, `hearth locks`). Read-only:
 * it never takes, breaks or waits for a lock.
 */

/** One lock held now. */
export interface LockEntry {
  /** The lock's name, e.g. `<volume id>-delete_volume`. */
  readonly name: string;
  /** The holder's host (`<host>@<backend>`); null when the holder is not hearth (`etcdctl lock`). */
  readonly holderHost: string | null;
  /** The holder's incarnation; null when the holder is not hearth. */
  readonly holderIncarnation: string | null;
  /**
   * When the holder acquired it; null on etcd, which records no times (the fencing revision
   * orders holders instead).
   */
  readonly sinceMs: number | null;
  /** The holder's key's create revision: the fence a write under the lock compares. */
  readonly fencingRevision: string;
  /** The session lease (hex) the holder's key rides on; null on a single node. */
  readonly lease: string | null;
  /** Contenders queued behind the holder. */
  readonly waiters: number;
}

/** See the module doc. */
export interface LockTable {
  /** True when the table is the cluster's (etcd); false for this process's own locks. */
  readonly distributed: boolean;
  /**
   * Every lock held now, sorted by name.
   *
   * Failure semantics: a retryable `BackendUnavailableError` when etcd cannot be reached
   * (nothing is served from a stale copy). The answer is a snapshot: a lock may be released or
   * taken the moment after.
   */
  list(signal?: AbortSignal): Promise<LockEntry[]>;
}

/** The host of an incarnation id (`<host>:<suffix>`, see `identity.ts`). */
export function hostOfIncarnation(incarnation: string): string {
  const at = incarnation.lastIndexOf(':');
  return at > 0 ? incarnation.slice(0, at) : incarnation;
}

/** Orders entries by lock name. */
export function byName(a: LockEntry, b: LockEntry): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
