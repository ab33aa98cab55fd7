/**
 * Cinder's replication actions on services (`cinder/api/v3/services.py`): failover (3.26, with
 * `cluster`), the legacy `failover_host`, `freeze` and `thaw` — each one conditional update of
 * the cluster record (membership/replication.ts). A `host` that belongs to a cluster acts on its
 * whole cluster, as in Cinder; hearth keeps these fields per cluster, never per service.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { matchesHost } from '../identity.js';
import type { ClusterChange, Membership } from '../membership/membership.js';
import type { ClusterRecord } from '../membership/records.js';
import { DEFAULT_BACKEND_ID, FREEZE, replicationRefusal, startFailover, THAW } from '../membership/replication.js';
import { previewKeys, previewText } from '../preview.js';
import { HttpError } from './faults.js';
import { atLeast } from './microversion.js';
import type { RouteModule } from './server.js';

/** The microversion that adds `cluster` to these actions and the `failover` action itself. */
export const REPLICATION_CLUSTER_MV = '3.26';

/** What the replication routes read and change. */
export interface ReplicationRoutesOptions {
  readonly membership: Pick<Membership, 'snapshot' | 'updateCluster'>;
  /** Why `cluster` cannot take replication commands now (a live process of an older release); undefined when it can. */
  readonly refuses: (cluster: string) => string | undefined;
  readonly now: () => number;
  readonly volumeBinary: string;
  /** Ids of failover ops (default: random UUIDs). */
  readonly newOpId?: () => string;
}

type Action = 'failover' | 'freeze' | 'thaw';

/** Cinder's `InvalidInput`: `Invalid input received: <reason>`. */
function invalidInput(reason: string): HttpError {
  return new HttpError(400, `Invalid input received: ${reason}`);
}

const HOST_PATTERN = /^[a-zA-Z0-9-._#@:/+[\]]*$/;

/** The body after Cinder's JSON schema (`freeze_and_thaw`, `failover_host`): additional properties refused, types checked. */
export function parseReplicationBody(body: unknown, action: Action): { host: string | null; cluster: string | null; backendId: string | null } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'Invalid input: the body must be a JSON object.');
  const o = body as Record<string, unknown>;
  const allowed = action === 'failover' ? ['host', 'backend_id', 'cluster'] : ['cluster', 'host'];
  const extra = Object.keys(o).filter((k) => !allowed.includes(k));
  if (extra.length > 0) throw new HttpError(400, `Additional properties are not allowed (${previewKeys(extra, { quoted: true })} ${extra.length === 1 ? 'was' : 'were'} unexpected)`);
  const host = o.host ?? null;
  if (host !== null && (typeof host !== 'string' || host.length < 1 || host.length > 255 || !HOST_PATTERN.test(host))) {
    throw new HttpError(400, 'Invalid input for field/attribute host. Value must be a host name of 1 to 255 characters (letters, digits and -._#@:/+[]).');
  }
  const nullableString = (key: string): string | null => {
    const v = o[key] ?? null;
    if (v !== null && (typeof v !== 'string' || v.length > 255)) throw new HttpError(400, `Invalid input for field/attribute ${key}. Value must be a string of at most 255 characters, or null.`);
    return v;
  };
  return { host, cluster: nullableString('cluster'), backendId: action === 'failover' ? nullableString('backend_id') : null };
}

/** Cinder's `get_cluster_host`: one and only one of `cluster` (from `clusterMv`) and `host`. */
export function clusterOrHost(req: FastifyRequest, body: { host: string | null; cluster: string | null }): { host: string | null; cluster: string | null } {
  const clustered = atLeast(req.apiVersion, REPLICATION_CLUSTER_MV);
  const cluster = clustered ? body.cluster : null;
  if (Boolean(cluster) === Boolean(body.host)) throw invalidInput(clustered ? 'One and only one of cluster and host must be set.' : 'Host field is missing.');
  return { host: cluster ? null : body.host, cluster: cluster || null };
}

/**
 * The cluster a request acts on (Cinder's `_get_cluster_and_services_for_replication`), with
 * whether any member of it is up. Cinder's `ServiceNotFound` answers 400 with its own message.
 */
async function targetCluster(o: ReplicationRoutesOptions, target: { host: string | null; cluster: string | null }): Promise<{ record: ClusterRecord; up: boolean }> {
  const snap = await o.membership.snapshot();
  const services = snap.services.filter((s) => s.binary === o.volumeBinary && (target.host ? matchesHost(s.host, target.host) : matchesHost(s.cluster, target.cluster as string)));
  if (services.length === 0) {
    throw new HttpError(400, target.host ? `No service found with host=${previewText(target.host)}` : `No service found with cluster=${previewText(target.cluster ?? '')}`);
  }
  const names = new Set(services.map((s) => (target.host ? s.host : s.cluster)));
  if (names.size > 1) throw new HttpError(400, 'Services from different clusters found.');
  const clusterName = services[0]?.cluster ?? null;
  const record = clusterName === null ? undefined : snap.clusters.find((c) => c.name === clusterName && c.binary === o.volumeBinary);
  if (!record) throw invalidInput(`${previewText(target.host ?? '')} belongs to no cluster; hearth keeps replication state per cluster.`);
  const alive = new Set(snap.alive.map((a) => a.host));
  return { record, up: snap.services.some((s) => s.cluster === record.name && s.binary === o.volumeBinary && alive.has(s.host)) };
}

/** The backend a failover promotes: `backend_id` if it is a target or `default`; none given: the first target (as Cinder's drivers pick). */
function backendFor(record: ClusterRecord, backendId: string | null): string | undefined {
  if (backendId === null || backendId === '') return record.replicationTargets[0];
  if (backendId === DEFAULT_BACKEND_ID || record.replicationTargets.includes(backendId)) return backendId;
  throw new HttpError(
    400,
    `Invalid Replication Target: ${previewText(backendId)} is not a replication target of ${record.name} (its targets: ${record.replicationTargets.join(', ')}; "${DEFAULT_BACKEND_ID}" fails back).`,
  );
}

/**
 * The routes. Failure semantics: bad input and a failed condition answer 400 with Cinder's
 * message and write nothing; while a live process of the cluster runs an older release, 409
 * (nothing written); 503 when etcd cannot be reached (a failover's outcome is then unknown:
 * read the cluster).
 */
export function replicationRoutes(o: ReplicationRoutesOptions): RouteModule {
  return (app: FastifyInstance) => {
    const act = async (req: FastifyRequest, action: Action): Promise<void> => {
      const body = parseReplicationBody(req.body, action);
      const target = clusterOrHost(req, body);
      const { record, up } = await targetCluster(o, target);
      const why = o.refuses(record.name);
      if (why !== undefined) throw new HttpError(409, `Cannot perform ${action} during system upgrade: ${why}.`, 'CONFLICT');
      let change: ClusterChange;
      if (action === 'failover') {
        const backend = record.replicationTargets.length > 0 ? backendFor(record, body.backendId) : undefined;
        // Cinder's check_up: the cluster must have a live member to run it.
        if (!up || backend === undefined) throw invalidInput(replicationRefusal(record.name, { field: 'replicationStatus', expected: ['enabled', 'failed-over'], actual: record.replicationStatus }, action));
        change = startFailover((o.newOpId ?? randomUUID)(), backend, o.now());
      } else {
        change = action === 'freeze' ? FREEZE : THAW;
      }
      const result = await o.membership.updateCluster(record.name, o.volumeBinary, change);
      if (result.ok) return;
      if (result.reason === 'not-found') throw new HttpError(400, `No service found with cluster=${previewText(record.name)}`);
      throw invalidInput(replicationRefusal(record.name, result.failed, action));
    };

    for (const action of ['freeze', 'thaw'] as const) {
      app.put(`/v3/:project_id/os-services/${action}`, async (req, reply) => {
        await act(req, action);
        // Cinder answers 200 with no body (its TODO says 204).
        return reply.code(200).send();
      });
    }
    const failover = async (req: FastifyRequest, reply: { code: (n: number) => { send: () => unknown } }) => {
      await act(req, 'failover');
      return reply.code(202).send();
    };
    app.put('/v3/:project_id/os-services/failover_host', failover);
    const since326 = { config: { minVersion: REPLICATION_CLUSTER_MV } };
    // Cinder routes `failover` as PUT; the issue names POST: both are served.
    app.put('/v3/:project_id/os-services/failover', since326, failover);
    app.post('/v3/:project_id/os-services/failover', since326, failover);
  };
}
