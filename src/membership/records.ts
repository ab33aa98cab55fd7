/**
 * The durable records of membership and the alive entry, with their JSON codecs.
 *
 * Cluster and service records have no lease: they outlive their members, so a dead member
 * still counts (as down) in its cluster, as in Cinder. The alive entry lives on the member's
 * session lease: it exists exactly while that incarnation is alive.
 */
import { type BackendReport, decodeBackendReport } from './backend-report.js';
import { bool, num, numOrNull, parseObject, str, strOrNull } from './json-fields.js';
import { type ClusterFields, decodeFailover, decodeTargets } from './replication-fields.js';

export type { FailoverInFlight } from './replication-fields.js';

/** Cinder's default replication status of a cluster or service that does not replicate. */
export const NOT_CAPABLE = 'not-capable';

/**
 * `clusters/<cluster>`: what an operator sets on a cluster, and where its backend stands
 * ({@link ClusterFields}: disabled, frozen, replication, the backend epoch, the failover in flight).
 */
export interface ClusterRecord extends ClusterFields {
  /** `<cluster>@<backend>`. */
  readonly name: string;
  readonly binary: string;
  /** Epoch ms. */
  readonly createdAtMs: number;
  /** Epoch ms of the last operator change; null until the first. */
  readonly updatedAtMs: number | null;
}

/** `services/<binary>/<host>`: one worker host, written by the worker itself. */
export interface ServiceRecord {
  /**
   * Stable integer id (Cinder's `services.id`, used by `workers/cleanup`'s `service_id`). On
   * etcd it is the create revision of the service key, filled in when the record is read and
   * never stored in the value; on a single node it is stored (1, 2, …). Absent on a record not
   * read from a store yet.
   */
  readonly id?: number;
  readonly binary: string;
  /** `<host>@<backend>`. */
  readonly host: string;
  /** `<cluster>@<backend>`, or null for an unclustered service. */
  readonly cluster: string | null;
  readonly zone: string;
  /** hearth version the host last ran. */
  readonly version: string;
  readonly disabled: boolean;
  readonly disabledReason: string | null;
  readonly frozen: boolean;
  readonly replicationStatus: string;
  readonly activeBackendId: string | null;
  readonly createdAtMs: number;
  /** When the current (or last) incarnation joined. */
  readonly startedAtMs: number;
  /** The last heartbeat written (Cinder's `services.updated_at`); survives the member. */
  readonly heartbeatAtMs: number | null;
  /** The last operator change (Cinder's `modified_at`). */
  readonly modifiedAtMs: number | null;
}

/** `alive/<host>`: one live incarnation, on its session lease. */
export interface AliveRecord {
  readonly host: string;
  readonly cluster: string;
  /** `<host>:<lease hex>` on etcd. */
  readonly incarnation: string;
  /** Heartbeat time from the member's clock: for display only, never for up/down. */
  readonly heartbeatAtMs: number;
  /** The member's last report of its backend (absent until its first check, and from older members). */
  readonly backend?: BackendReport;
}

/** An alive entry as read from the store, with the create revision that fences it. */
export interface AliveMember extends AliveRecord {
  /** Create revision of the alive key, decimal (`'0'` on a single node). */
  readonly aliveRevision: string;
}

/** Everything the views are built from, read at one point in time. */
export interface MembershipSnapshot {
  readonly clusters: readonly ClusterRecord[];
  readonly services: readonly ServiceRecord[];
  readonly alive: readonly AliveMember[];
}

/** A fresh cluster record, as Cinder creates it when the first member starts. */
export function newClusterRecord(name: string, binary: string, nowMs: number): ClusterRecord {
  return {
    name,
    binary,
    disabled: false,
    disabledReason: null,
    frozen: false,
    replicationStatus: NOT_CAPABLE,
    activeBackendId: null,
    backendEpoch: 0,
    replicationTargets: [],
    failover: null,
    createdAtMs: nowMs,
    updatedAtMs: null,
  };
}

/**
 * Reads a cluster record; throws {@link InvalidInputError} on a malformed value. The replication
 * fields added in release 2 (`backendEpoch`, `replicationTargets`, `failover`) default when
 * absent, so records written by release 1 read.
 */
export function decodeCluster(text: string): ClusterRecord {
  const what = 'cluster record';
  const o = parseObject(text, what);
  return {
    name: str(o, 'name', what),
    binary: str(o, 'binary', what),
    disabled: bool(o, 'disabled', what),
    disabledReason: strOrNull(o, 'disabledReason', what),
    frozen: bool(o, 'frozen', what),
    replicationStatus: str(o, 'replicationStatus', what),
    activeBackendId: strOrNull(o, 'activeBackendId', what),
    backendEpoch: o.backendEpoch === undefined ? 0 : num(o, 'backendEpoch', what),
    replicationTargets: decodeTargets(o.replicationTargets, what),
    failover: decodeFailover(o.failover, what),
    createdAtMs: num(o, 'createdAtMs', what),
    updatedAtMs: numOrNull(o, 'updatedAtMs', what),
  };
}

/** Reads a service record; throws {@link InvalidInputError} on a malformed value. */
export function decodeService(text: string): ServiceRecord {
  const what = 'service record';
  const o = parseObject(text, what);
  const id = numOrNull(o, 'id', what);
  return {
    ...(id === null ? {} : { id }),
    binary: str(o, 'binary', what),
    host: str(o, 'host', what),
    cluster: strOrNull(o, 'cluster', what),
    zone: str(o, 'zone', what),
    version: str(o, 'version', what),
    disabled: bool(o, 'disabled', what),
    disabledReason: strOrNull(o, 'disabledReason', what),
    frozen: bool(o, 'frozen', what),
    replicationStatus: str(o, 'replicationStatus', what),
    activeBackendId: strOrNull(o, 'activeBackendId', what),
    createdAtMs: num(o, 'createdAtMs', what),
    startedAtMs: num(o, 'startedAtMs', what),
    heartbeatAtMs: numOrNull(o, 'heartbeatAtMs', what),
    modifiedAtMs: numOrNull(o, 'modifiedAtMs', what),
  };
}

/** Reads an alive entry; throws {@link InvalidInputError} on a malformed value. */
export function decodeAlive(text: string): AliveRecord {
  const what = 'alive entry';
  const o = parseObject(text, what);
  let backend: BackendReport | undefined;
  try {
    backend = decodeBackendReport(o.backend);
  } catch {
    // A report this reader cannot read (a newer member's) is as good as none: liveness does not depend on it.
    backend = undefined;
  }
  return {
    host: str(o, 'host', what),
    cluster: str(o, 'cluster', what),
    incarnation: str(o, 'incarnation', what),
    heartbeatAtMs: num(o, 'heartbeatAtMs', what),
    ...(backend ? { backend } : {}),
  };
}

/** The stored form of any record (one JSON object). */
export function encodeRecord(record: ClusterRecord | ServiceRecord | AliveRecord): string {
  return JSON.stringify(record);
}

/** Replication states in which a service keeps its own replication fields (Cinder's rule). */
const OWN_REPLICATION_STATES = new Set(['error', 'failover-error']);

/** What a joining worker brings to its service record. */
export interface JoinFacts {
  readonly binary: string;
  readonly host: string;
  readonly cluster: string;
  readonly zone: string;
  readonly version: string;
  readonly nowMs: number;
}

/**
 * The service record a worker writes when it joins. A new host starts enabled; a returning
 * host keeps its creation time and operator settings. The replication fields are copied from
 * the cluster on every join (Cinder copies them only on the first, so a member that was down
 * during a failover can come back pointing at the old backend), unless the service is in an
 * error state of its own. The service moves to the cluster it is configured for now.
 */
export function serviceForJoin(previous: ServiceRecord | undefined, cluster: ClusterRecord, facts: JoinFacts): ServiceRecord {
  const keepOwn = previous !== undefined && OWN_REPLICATION_STATES.has(previous.replicationStatus);
  const replication = keepOwn
    ? { frozen: previous.frozen, replicationStatus: previous.replicationStatus, activeBackendId: previous.activeBackendId }
    : { frozen: cluster.frozen, replicationStatus: cluster.replicationStatus, activeBackendId: cluster.activeBackendId };
  return {
    ...(previous?.id === undefined ? {} : { id: previous.id }),
    binary: facts.binary,
    host: facts.host,
    cluster: facts.cluster,
    zone: facts.zone,
    version: facts.version,
    disabled: previous?.disabled ?? false,
    disabledReason: previous?.disabledReason ?? null,
    ...replication,
    createdAtMs: previous?.createdAtMs ?? facts.nowMs,
    startedAtMs: facts.nowMs,
    heartbeatAtMs: facts.nowMs,
    modifiedAtMs: previous?.modifiedAtMs ?? null,
  };
}

/** A cluster record after an operator enabled or disabled it. */
export function withClusterDisabled(record: ClusterRecord, disabled: boolean, reason: string | null, nowMs: number): ClusterRecord {
  return { ...record, disabled, disabledReason: disabled ? reason : null, updatedAtMs: nowMs };
}
