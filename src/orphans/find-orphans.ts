/**
 * Orphan detection, the pure core: which in-flight operations belong to an incarnation that is
 * no longer alive. No I/O and no clock of its own: the caller passes what it read (op records,
 * alive members) and the time.
 *
 * An op is orphaned when it has an owner and that owner's incarnation is not the live one of its
 * host: the host has no alive entry (its lease expired, it left, it was killed), or its alive
 * entry belongs to a newer incarnation (the host restarted, or rejoined after losing its
 * session). A queued op (owner null) is never an orphan: nobody has it yet, and the job bus or
 * the republish sweep will hand it to someone.
 *
 * Correctness of one sweep depends on the order of the reads: list the ops first, then the alive
 * members. An incarnation never comes back once its alive entry is gone, so an owner missing
 * from the later read was dead by then; an owner present in it was alive when the ops were read.
 */
import type { OwnerRef } from '../identity.js';
import type { OpRecord } from '../state/records.js';

/** One live incarnation, as an alive entry names it (`AliveMember` fits). */
export interface LiveIncarnation {
  readonly host: string;
  readonly incarnation: string;
  /** Create revision of its alive key (`'0'` on a single node, where it is not used). */
  readonly aliveRevision: string;
}

/** Why an owner counts as dead. */
export type OrphanReason = 'owner-gone' | 'owner-replaced';

/** An in-flight operation whose owner is dead. */
export interface Orphan {
  /** The op exactly as listed: a claim compares it (opId, owner, attempt, revision). */
  readonly op: OpRecord;
  readonly owner: OwnerRef;
  /** `owner-gone`: its host has no alive entry; `owner-replaced`: a newer incarnation of the host is alive. */
  readonly reason: OrphanReason;
  /** Epoch ms: when the owner was seen to die if known, else when the op last changed. */
  readonly since: number;
  /** `now - since`, never negative. */
  readonly ageMs: number;
}

/** Why `owner` is dead given the live incarnations, or undefined while it is alive. */
export function deadReason(owner: OwnerRef, alive: ReadonlyMap<string, LiveIncarnation>): OrphanReason | undefined {
  const live = alive.get(owner.host);
  if (live === undefined) return 'owner-gone';
  if (live.incarnation !== owner.incarnation) return 'owner-replaced';
  // Same incarnation name but another alive key: the key was recreated (cannot happen on one
  // lease, but a revision is the stronger proof, so it wins). '0' means "not tracked" (single node).
  if (live.aliveRevision !== '0' && owner.aliveRevision !== '0' && live.aliveRevision !== owner.aliveRevision) return 'owner-replaced';
  return undefined;
}

/** The alive members by host. */
export function aliveByHost(alive: Iterable<LiveIncarnation>): Map<string, LiveIncarnation> {
  const byHost = new Map<string, LiveIncarnation>();
  for (const a of alive) byHost.set(a.host, a);
  return byHost;
}

/**
 * The orphans among `ops`, oldest `since` first (ties: type, then id).
 *
 * @param alive the live incarnations, read after `ops` (see the module doc).
 * @param deaths when each incarnation (by incarnation id) was seen to die, epoch ms; optional.
 */
export function findOrphans(
  ops: readonly OpRecord[],
  alive: Iterable<LiveIncarnation>,
  now: number,
  deaths: ReadonlyMap<string, number> = new Map(),
): Orphan[] {
  const byHost = aliveByHost(alive);
  const orphans: Orphan[] = [];
  for (const op of ops) {
    const owner = op.owner;
    if (owner === null) continue;
    const reason = deadReason(owner, byHost);
    if (reason === undefined) continue;
    const died = deaths.get(owner.incarnation);
    // The op cannot have been orphaned before it last changed (the API may stamp publishedAt
    // after the claim), nor before its owner died.
    const since = died === undefined ? op.updatedAt : Math.max(died, op.updatedAt);
    orphans.push({ op, owner, reason, since, ageMs: Math.max(0, now - since) });
  }
  return orphans.sort((a, b) => a.since - b.since || cmp(a.op.type, b.op.type) || cmp(a.op.id, b.op.id));
}

/** Orphans counted per cluster (the op's cluster), for `hearth_orphaned_operations`. */
export function countByCluster(orphans: readonly Orphan[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const o of orphans) counts.set(o.op.cluster, (counts.get(o.op.cluster) ?? 0) + 1);
  return counts;
}

/** A stable key of one orphan as listed (a new claim or attempt is a different orphan). */
export function orphanKey(o: Orphan): string {
  return `${o.op.type}/${o.op.id}/${o.op.opId}/${o.op.attempt}`;
}

/** Orphans at least `graceMs` old (automatic cleanup takes these). */
export function dueForCleanup(orphans: readonly Orphan[], graceMs: number): Orphan[] {
  return orphans.filter((o) => o.ageMs >= graceMs);
}

/** When the next orphan not yet due becomes due (epoch ms), or undefined when none waits. */
export function nextDueAt(orphans: readonly Orphan[], graceMs: number): number | undefined {
  let next: number | undefined;
  for (const o of orphans) {
    if (o.ageMs >= graceMs) continue;
    const at = o.since + graceMs;
    if (next === undefined || at < next) next = at;
  }
  return next;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
