/**
 * The replication targets an operator configures (`driver.replicationTargets`,
 * `driver.fakeReplicationTargets`): a list of `<backend_id>:<where>` items, `<where>` a
 * directory for the file driver. Pure: no I/O. The configuration checks the same rules when it
 * loads (src/config/schema.ts), so a bad list stops the process before a driver opens.
 */
import { InvalidInputError } from '../errors.js';
import { PRIMARY_BACKEND_ID } from './volume-driver.js';

/** One target: Cinder's `backend_id` and where its copies live. */
export interface ReplicationTarget {
  readonly backendId: string;
  /** The file driver: the target's directory (absolute or relative to the working directory). */
  readonly location: string;
}

/** A backend id becomes part of log lines, API bodies and (for the fake) file names. */
const BACKEND_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Why one `<backend_id>:<where>` item is not a target, or undefined when it is one. */
export function replicationTargetIssue(item: string): string | undefined {
  const i = item.indexOf(':');
  if (i < 0) return `${JSON.stringify(item)} is not <backend_id>:<directory> (e.g. dr-site:/mnt/dr/volumes)`;
  const id = item.slice(0, i);
  if (!BACKEND_ID.test(id)) return `backend id ${JSON.stringify(id)} must be 1-64 letters, digits, ".", "_" or "-", not starting with a symbol`;
  if (id === PRIMARY_BACKEND_ID) return `backend id "${PRIMARY_BACKEND_ID}" names the primary (the failback target); give the target another id`;
  if (item.slice(i + 1).trim() === '') return `target ${JSON.stringify(id)} names no directory`;
  return undefined;
}

/** Why a whole list is not a set of targets (each item's issue, ids or places named twice). */
export function replicationTargetListIssues(items: readonly string[]): string[] {
  const issues = items.map(replicationTargetIssue).filter((m): m is string => m !== undefined);
  if (issues.length > 0) return issues;
  const targets = items.map(splitItem);
  const ids = targets.map((t) => t.backendId);
  const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (twice.length > 0) issues.push(`backend id ${[...new Set(twice)].map((id) => JSON.stringify(id)).join(', ')} is named more than once`);
  const places = targets.map((t) => t.location);
  const shared = places.filter((p, i) => places.indexOf(p) !== i);
  if (shared.length > 0) issues.push(`${[...new Set(shared)].map((p) => JSON.stringify(p)).join(', ')} is the place of more than one target`);
  return issues;
}

/**
 * The targets of a configured list.
 *
 * @throws InvalidInputError naming every problem (see {@link replicationTargetListIssues})
 */
export function parseReplicationTargets(items: readonly string[]): ReplicationTarget[] {
  const issues = replicationTargetListIssues(items);
  if (issues.length > 0) throw new InvalidInputError(`replication targets: ${issues.join('; ')}`);
  return items.map(splitItem);
}

function splitItem(item: string): ReplicationTarget {
  const i = item.indexOf(':');
  return { backendId: item.slice(0, i), location: item.slice(i + 1).trim() };
}
