/**
 * Cinder's wire shapes for clusters and services (cinder/api/v3/views/clusters.py,
 * cinder/api/contrib/services.py), by microversion. Pure.
 */
import { formatCinderTime } from './cinder-time.js';
import type { ClusterView, ServiceView } from './cluster-views.js';

/** Cluster views write a missing datetime as `""` (Cinder's `_normalize`). */
function clusterTime(ms: number | null): string {
  return ms === null ? '' : formatCinderTime(ms);
}

/** What the negotiated microversion turns on. */
export interface ClusterShape {
  /** 3.26+: `replication_status` (and in detail `frozen`, `active_backend_id`). */
  readonly replication: boolean;
}

/** One item of `GET /clusters`. */
export function clusterSummaryJson(v: ClusterView, shape: ClusterShape): Record<string, unknown> {
  const out: Record<string, unknown> = {
    name: v.name,
    binary: v.binary,
    state: v.up ? 'up' : 'down',
    status: v.disabled ? 'disabled' : 'enabled',
  };
  if (shape.replication) out.replication_status = v.replicationStatus;
  return out;
}

/** One item of `GET /clusters/detail`, and the body of `GET /clusters/{name}`. */
export function clusterDetailJson(v: ClusterView, shape: ClusterShape): Record<string, unknown> {
  const out: Record<string, unknown> = {
    ...clusterSummaryJson(v, { replication: false }),
    num_hosts: v.numHosts,
    num_down_hosts: v.numDownHosts,
    last_heartbeat: clusterTime(v.lastHeartbeatMs),
    created_at: clusterTime(v.createdAtMs),
    updated_at: clusterTime(v.updatedAtMs),
    disabled_reason: v.disabledReason,
  };
  if (shape.replication) {
    out.replication_status = v.replicationStatus;
    out.frozen = v.frozen;
    out.active_backend_id = v.activeBackendId;
  }
  return out;
}

/** The body of `PUT /clusters/enable|disable`: the summary plus `disabled_reason`. */
export function clusterUpdateJson(v: ClusterView, shape: ClusterShape): { cluster: Record<string, unknown> } {
  return { cluster: { ...clusterSummaryJson(v, shape), disabled_reason: v.disabledReason } };
}

/** What the negotiated microversion turns on in `os-services`. */
export interface ServiceShape {
  /** 3.7+: `cluster`. */
  readonly cluster: boolean;
  /** 3.49+: `backend_state` on volume rows. */
  readonly backendState: boolean;
}

/**
 * One item of `GET /os-services`. Services (unlike clusters) write a missing datetime as null.
 * `backend_state` (3.49+) is what the live volume service last reported of its backend — `down`
 * while its health check fails (docs/drivers.md) — and null for a service that is not alive, as
 * Cinder reports a backend that has no pool in the scheduler. hearth adds `id` (Cinder's `services.id`, which
 * `workers/cleanup` takes and answers with); clients ignore keys they do not know.
 */
export function serviceJson(v: ServiceView, shape: ServiceShape, volumeBinary: string): Record<string, unknown> {
  const out: Record<string, unknown> = {
    // Not in Cinder's os-services, but the id `workers/cleanup` takes as `service_id` and answers with.
    id: v.id,
    binary: v.binary,
    host: v.host,
    zone: v.zone,
    status: v.disabled ? 'disabled' : 'enabled',
    state: v.up ? 'up' : 'down',
    updated_at: v.updatedAtMs === null ? null : formatCinderTime(v.updatedAtMs),
  };
  const volume = v.binary === volumeBinary;
  if (shape.backendState && volume) out.backend_state = v.backendState;
  if (shape.cluster) out.cluster = v.cluster;
  out.disabled_reason = v.disabledReason;
  if (volume) {
    out.replication_status = v.replicationStatus;
    out.active_backend_id = v.activeBackendId;
    out.frozen = v.frozen;
  }
  return out;
}
