import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Membership } from '../membership/membership.js';
import { clusterDetailJson, clusterSummaryJson, clusterUpdateJson, serviceJson } from './cluster-json.js';
import { buildClusterViews, buildServiceViews, clusterMatches, findCluster, parseClusterFilters, serviceMatches } from './cluster-views.js';
import { HttpError } from './faults.js';
import { atLeast } from './microversion.js';
import { previewKeys, previewText } from '../preview.js';
import type { RouteModule } from './server.js';

/** Clusters appear at 3.7; replication fields and filters at 3.26; `backend_state` at 3.49. */
const CLUSTERS_MV = '3.7';
const REPLICATION_MV = '3.26';
const BACKEND_STATE_MV = '3.49';

/** What the cluster and service routes read and change. */
export type ClusterRoutesPort = Pick<Membership, 'snapshot' | 'setClusterDisabled'>;

type Query = Record<string, string | string[] | undefined>;

function lastOf(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[value.length - 1] : value;
}

function notFound(name: string): HttpError {
  return new HttpError(404, `Cluster ${previewText(name)} could not be found.`, 'NOT_FOUND');
}

/** A Cinder-style validation failure of one body field. */
function invalidField(field: string, why: string): HttpError {
  return new HttpError(400, `Invalid input for field/attribute ${field}. ${why}`);
}

/** The validated body of `PUT /clusters/enable|disable` (Cinder's JSON schema). */
export function parseUpdateBody(body: unknown, disable: boolean): { name: string; binary: string; reason: string | null } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'Invalid input: the body must be a JSON object.');
  const o = body as Record<string, unknown>;
  const allowed = disable ? ['name', 'binary', 'disabled_reason'] : ['name', 'binary'];
  const extra = Object.keys(o).filter((k) => !allowed.includes(k));
  if (extra.length > 0) throw new HttpError(400, `Additional properties are not allowed (${previewKeys(extra, { quoted: true })} ${extra.length === 1 ? 'was' : 'were'} unexpected)`);
  const name = o.name;
  if (name === undefined) throw new HttpError(400, "'name' is a required property");
  if (typeof name !== 'string' || name.length < 1 || name.length > 255 || name.trim() !== name) {
    throw invalidField('name', 'Value must be a string of 1 to 255 characters without leading or trailing spaces.');
  }
  const binary = o.binary ?? null;
  if (binary !== null && typeof binary !== 'string') throw invalidField('binary', 'Value must be a string or null.');
  let reason: string | null = null;
  const raw = o.disabled_reason ?? null;
  if (raw !== null) {
    if (typeof raw !== 'string') throw invalidField('disabled_reason', 'Value must be a string or null.');
    reason = raw.trim();
    if (reason.length < 1 || reason.length > 255) throw invalidField('disabled_reason', 'Disabled reason must be 1 to 255 characters long.');
  }
  return { name, binary: binary ?? 'cinder-volume', reason };
}

/**
 * Cinder's cluster API (`/v3/{project_id}/clusters…`, 3.7+) and service list
 * (`/v3/{project_id}/os-services`), with Cinder's filters, shapes and errors.
 *
 * Failure semantics: when etcd cannot be reached every call answers 503 `serviceUnavailable`
 * (nothing is served from a stale copy); an enable/disable whose outcome is unknown also
 * answers 503 and may have been applied — read the cluster again. Bad input is refused with
 * 400 before anything is written.
 */
export function clusterRoutes(port: ClusterRoutesPort, volumeBinary: string): RouteModule {
  return (app: FastifyInstance) => {
    const since37 = { config: { minVersion: CLUSTERS_MV } };

    const list = async (req: FastifyRequest, detail: boolean): Promise<unknown> => {
      const replication = atLeast(req.apiVersion, REPLICATION_MV);
      const filters = parseClusterFilters(req.query as Query, replication);
      const views = buildClusterViews(await port.snapshot()).filter((v) => clusterMatches(v, filters));
      const shape = { replication };
      return { clusters: views.map((v) => (detail ? clusterDetailJson(v, shape) : clusterSummaryJson(v, shape))) };
    };

    app.get('/v3/:project_id/clusters', since37, (req) => list(req, false));
    app.get('/v3/:project_id/clusters/detail', since37, (req) => list(req, true));

    app.get<{ Params: { name: string } }>('/v3/:project_id/clusters/:name', since37, async (req) => {
      const binary = lastOf((req.query as Query).binary) ?? volumeBinary;
      const view = findCluster(buildClusterViews(await port.snapshot()), req.params.name, binary);
      if (!view) throw notFound(req.params.name);
      return { cluster: clusterDetailJson(view, { replication: atLeast(req.apiVersion, REPLICATION_MV) }) };
    });

    app.put<{ Params: { action: string } }>('/v3/:project_id/clusters/:action', since37, async (req) => {
      const { action } = req.params;
      if (action !== 'enable' && action !== 'disable') throw new HttpError(404, 'Unknown action', 'NOT_FOUND');
      const disable = action === 'disable';
      const { name, binary, reason } = parseUpdateBody(req.body, disable);
      const updated = await port.setClusterDisabled(name, binary, disable, reason);
      if (!updated) throw notFound(name);
      const view = findCluster(buildClusterViews(await port.snapshot()), name, binary);
      if (!view) throw notFound(name);
      return clusterUpdateJson(view, { replication: atLeast(req.apiVersion, REPLICATION_MV) });
    });

    app.get('/v3/:project_id/os-services', async (req) => {
      const q = req.query as Query;
      const filters = { host: lastOf(q.host), binary: lastOf(q.binary) };
      const shape = { cluster: atLeast(req.apiVersion, CLUSTERS_MV), backendState: atLeast(req.apiVersion, BACKEND_STATE_MV) };
      const views = buildServiceViews(await port.snapshot()).filter((v) => serviceMatches(v, filters));
      return { services: views.map((v) => serviceJson(v, shape, volumeBinary)) };
    });
  };
}
