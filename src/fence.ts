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
export interface CreateGuard {
  readonly key: string;
  /** Create revision as a decimal string; `'0'` means the key does not exist. */
  readonly createRevision: string;
  /** `equal`: the key still has exactly this create revision; `notEqual`: it no longer has. */
  readonly expect: 'equal' | 'notEqual';
  /**
   * Delete the key in the same transaction when the write lands: a lock released by the write
   * that ends the work it protected, instead of by a request of its own. Only an `equal` guard
   * (the key is still the writer's) can ask for it.
   */
  readonly releaseWithWrite?: boolean;
}

/** One etcd key whose last change a write depends on: the key is unchanged since it was read. */
export interface ModGuard {
  readonly key: string;
  /** Mod revision as a decimal string; `'0'` means the key does not exist. */
  readonly modRevision: string;
  readonly expect: 'equal';
}

/**
 * One etcd key whose version (how many times it was written since it was created) a write
 * depends on: a counter kept by etcd itself, such as a cluster's backend epoch (one put per
 * failover), compared without reading its value.
 */
export interface VersionGuard {
  readonly key: string;
  /** Version as a decimal string; `'0'` means the key does not exist. */
  readonly version: string;
  readonly expect: 'equal';
}

/** A condition on one etcd key outside the record being written; see the module doc. */
export type KeyGuard = CreateGuard | ModGuard | VersionGuard;

/** What a guard compares: the create revision, the mod revision of a {@link ModGuard}, or the version of a {@link VersionGuard}. */
export function guardRevision(guard: KeyGuard): { readonly target: 'create' | 'mod' | 'version'; readonly revision: string } {
  if ('modRevision' in guard) return { target: 'mod', revision: guard.modRevision };
  if ('version' in guard) return { target: 'version', revision: guard.version };
  return { target: 'create', revision: guard.createRevision };
}

/** The etcd compare target of a guard (`etcd3`'s builder spelling). */
export function guardTarget(guard: KeyGuard): 'Create' | 'Mod' | 'Version' {
  const { target } = guardRevision(guard);
  return target === 'mod' ? 'Mod' : target === 'version' ? 'Version' : 'Create';
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
 * Describes a guard, e.g. `/hearth/alive/n1@rbd create_revision == 42` (`mod_revision` for a
 * {@link ModGuard}). A `FencedError` from
 * an etcd write names the guard that failed this way (followed by ` (is <actual>)`).
 */
export function describeGuard(guard: KeyGuard): string {
  const { target, revision } = guardRevision(guard);
  return `${guard.key} ${target === 'version' ? 'version' : `${target}_revision`} ${guard.expect === 'equal' ? '==' : '!='} ${revision}`;
}

/** The fence that always holds (API-side writes, which no lease backs). */
export const NO_FENCE: Fence = { guards: [], holds: () => true, description: 'none' };

/** A fence that holds only while every part holds. */
export function allOf(...fences: readonly Fence[]): Fence {
  const parts = fences.filter((f) => f !== NO_FENCE);
  if (parts.length === 0) return NO_FENCE;
  if (parts.length === 1) return parts[0] as Fence;
  let guards: KeyGuard[] = [];
  for (const f of parts) guards = guards.concat(f.guards);
  let description: string | undefined;
  return {
    guards,
    holds: () => parts.every((f) => f.holds()),
    // Made when asked for (errors and logs): most writes never need it.
    get description() {
      return (description ??= parts.map((f) => f.description).join(' + '));
    },
  };
}
