/**
 * Fences: conditions, outside the record being written, that a write depends on.
 *
 * A worker writes only while it still holds what entitled it to write: its own `alive/` key
 * (it is still the live incarnation) and, for lock-protected work, its lock key. On etcd each
 * such condition is a {@link KeyGuard} compiled into the write's transaction, so the write
 * fails atomically once the condition is gone — even if the worker does not know it yet. On a
 * single node the same contract is a synchronous predicate, checked in the same tick as the
 * write. The same shape also proves the opposite: that an operation's owner is dead
 * (`expect: 'notEqual'` on the owner's alive key).
 */

/** One etcd key whose create revision a write depends on. */
export interface KeyGuard {
  readonly key: string;
  /** Create revision as a decimal string; `'0'` means the key does not exist. */
  readonly createRevision: string;
  /** `equal`: the key still has exactly this create revision; `notEqual`: it no longer has. */
  readonly expect: 'equal' | 'notEqual';
}

/** What a write must still be entitled to; see the module doc. */
export interface Fence {
  /** Guards an etcd adapter compiles into the transaction; empty on a single node. */
  readonly guards: readonly KeyGuard[];
  /**
   * Checked by every adapter just before it commits. False once the holder knows it lost what
   * it held (e.g. its lease went to `lost`). On a single node this is the whole fence.
   */
  readonly holds: () => boolean;
  /** For error messages and logs, e.g. `alive/node1@rbd rev 42 + lock vol-1-delete_volume rev 57`. */
  readonly description: string;
}

/**
 * Describes a guard, e.g. `/hearth/alive/n1@rbd create_revision == 42`. A `FencedError` from
 * an etcd write names the guard that failed this way (followed by ` (is <actual>)`).
 */
export function describeGuard(guard: KeyGuard): string {
  return `${guard.key} create_revision ${guard.expect === 'equal' ? '==' : '!='} ${guard.createRevision}`;
}

/** The fence that always holds (API-side writes, which no lease backs). */
export const NO_FENCE: Fence = { guards: [], holds: () => true, description: 'none' };

/** A fence that holds only while every part holds. */
export function allOf(...fences: readonly Fence[]): Fence {
  const parts = fences.filter((f) => f !== NO_FENCE);
  if (parts.length === 0) return NO_FENCE;
  if (parts.length === 1) return parts[0] as Fence;
  return {
    guards: parts.flatMap((f) => f.guards),
    holds: () => parts.every((f) => f.holds()),
    description: parts.map((f) => f.description).join(' + '),
  };
}
