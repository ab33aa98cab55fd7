/**
 * The pools `scheduler-stats/get_pools` shows, built from a membership snapshot (pure).
 *
 * Each cluster is one pool on shared storage, named `<cluster>@<backend>#<backend>` (Cinder's
 * `host@backend#pool`, keyed by the cluster as Cinder keys clustered backends). Its numbers are
 * one member's report, never a sum: the freshest report of a member whose backend is up, else
 * the freshest of any live member (then `backend_state` is `down`). A cluster with no live
 * member reporting a pool shows no pool, as Cinder's scheduler drops a backend whose service is
 * down.
 */
import type { BackendReport, PoolReport } from '../membership/backend-report.js';
import type { AliveMember, MembershipSnapshot } from '../membership/records.js';

/** One pool, with the report it comes from. */
export interface PoolView {
  /** `<cluster>#<backend>`. */
  readonly name: string;
  readonly cluster: string;
  /** The backend name (Cinder's `volume_backend_name`). */
  readonly backend: string;
  readonly pool: PoolReport;
  readonly state: 'up' | 'down';
  /** The member whose report it is. */
  readonly reportedBy: string;
}

/** The backend part of a cluster id `<name>@<backend>`. */
export function backendOf(cluster: string): string {
  const at = cluster.lastIndexOf('@');
  return at < 0 ? cluster : cluster.slice(at + 1);
}

/** The pool name of a cluster. */
export function poolName(cluster: string): string {
  return `${cluster}#${backendOf(cluster)}`;
}

function better(a: AliveMember & { backend: BackendReport & { pool: PoolReport } }, b: typeof a | undefined): boolean {
  if (!b) return true;
  if (a.backend.state !== b.backend.state) return a.backend.state === 'up';
  return a.backend.pool.atMs > b.backend.pool.atMs;
}

/** Every cluster's pool, sorted by name. See the module doc. */
export function buildPoolViews(snapshot: Pick<MembershipSnapshot, 'alive'>): PoolView[] {
  type Reporting = AliveMember & { backend: BackendReport & { pool: PoolReport } };
  const best = new Map<string, Reporting>();
  for (const member of snapshot.alive) {
    if (!member.backend?.pool) continue;
    const m = member as Reporting;
    if (better(m, best.get(m.cluster))) best.set(m.cluster, m);
  }
  return [...best.values()]
    .map((m) => ({ name: poolName(m.cluster), cluster: m.cluster, backend: backendOf(m.cluster), pool: m.backend.pool, state: m.backend.state, reportedBy: m.host }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The backend state of a member: from its report, `up` for a live member that reported nothing yet (an older hearth). */
export function backendStateOf(member: AliveMember | undefined): 'up' | 'down' | null {
  if (!member) return null;
  return member.backend?.state ?? 'up';
}
