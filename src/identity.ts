/** The only clustered binary, as Cinder names it; service records and views use it. */
export const VOLUME_BINARY = 'cinder-volume';

/** Who this process is in the cluster. */
export interface Identity {
  /** The cluster id, `<cluster>@<backend>`. */
  readonly cluster: string;
  /** The host id, `<host>@<backend>`; unique per worker. */
  readonly host: string;
  /** Availability zone reported in service views. */
  readonly zone: string;
}

/**
 * One run of a host. A restart is a new incarnation, so work owned by an earlier run of the
 * same host is recognisably someone else's.
 */
export interface OwnerRef {
  /** The host id, `<host>@<backend>`. */
  readonly host: string;
  /** Unique per run: `<host>:<lease id in hex>` on etcd, `<host>:<random>` on a single node. */
  readonly incarnation: string;
  /** Create revision of the owner's `alive/<host>` key (etcd); `'0'` on a single node. */
  readonly aliveRevision: string;
}

/**
 * Which operating-system process runs an incarnation, and where: what a fence needs to find
 * and stop it (an `exec` fence command gets these in its environment; a Kubernetes fence looks
 * up the pod). Nothing in it is secret; it is recorded in etcd beside the incarnation.
 */
/** True when `a` and `b` are one process: the same pid and start time, in one pid namespace on one boot. */
export function isSameProcess(a: ProcessIdentity | null | undefined, b: ProcessIdentity | null | undefined): boolean {
  return !!a && !!b && a.pid === b.pid && a.startTicks === b.startTicks && a.bootId === b.bootId && a.pidNamespace === b.pidNamespace;
}

export interface ProcessIdentity {
  readonly pid: number;
  /**
   * Start time of the process in clock ticks since boot (`/proc/<pid>/stat`, field 22), decimal.
   * With `bootId` it tells this process from a later one that reused its pid.
   */
  readonly startTicks: string;
  /** `/proc/sys/kernel/random/boot_id` of the machine (changes at every boot). */
  readonly bootId: string;
  /**
   * The pid namespace (`/proc/self/ns/pid`, e.g. `pid:[4026531836]`): a pid means the same
   * process only to a reader in the same namespace on the same boot (containers on one node
   * share the boot id, not their pids).
   */
  readonly pidNamespace: string;
  /** The machine's host name. */
  readonly hostname: string;
  /** The machine's non-loopback IP addresses. */
  readonly addresses: readonly string[];
  /** Epoch ms when the process started (wall clock; absent in records written before it was kept). */
  readonly startedAtMs?: number;
  /**
   * Kubernetes: the pod (name, uid, namespace), its node, and the name of the container the
   * process runs in, from the Downward API and `fencing.pod.container`; absent elsewhere.
   */
  readonly pod?: { readonly name: string; readonly uid: string; readonly namespace: string; readonly node: string; readonly container?: string };
}

/**
 * Cinder's host and cluster matching (`_filter_host`): a value with `#` matches exactly; with
 * `@` it matches itself and `value#…`; otherwise itself, `value@…` and `value#…`. So
 * `?name=mycluster` lists every backend of that cluster.
 */
export function matchesHost(candidate: string | null, filter: string): boolean {
  if (candidate === null) return false;
  if (candidate === filter) return true;
  if (filter.includes('#')) return false;
  if (candidate.startsWith(`${filter}#`)) return true;
  return !filter.includes('@') && candidate.startsWith(`${filter}@`);
}
