/**
 * The volume and snapshot routes of the Cinder-compatible API (`/v3/{project_id}/…`). Thin: each
 * handler validates its input, calls the {@link VolumeService} and renders Cinder's view; domain
 * errors become Cinder's fault bodies (a failed condition is 400, as Cinder's InvalidVolume).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RequestAuth } from '../api/auth.js';
import { HttpError } from '../api/faults.js';
import { atLeast } from '../api/microversion.js';
import { previewKeys, previewText } from '../preview.js';
import type { RouteModule } from '../api/server.js';
import { InvalidInputError } from '../errors.js';
import type { Page } from '../state/state-store.js';
import { ClusterDisabledError, ConditionFailedError } from './errors.js';
import { parseListQuery, type ListRequest } from './list-query.js';
import {
  actionOf,
  createSnapshotBody,
  createVolumeBody,
  extendBody,
  parseBody,
  resetSnapshotStatusBody,
  resetVolumeStatusBody,
} from './request-schemas.js';
import type { RequestContext, VolumeService } from './volume-service.js';
import type { AttachmentService } from './attachment-service.js';
import { AttachmentFailedError } from './attachment-service.js';
import { forceDetachBody } from './attachment-schemas.js';
import { snapshotDetail, snapshotSummary, type ViewContext, volumeDetail, volumeSummary } from './views.js';

export type Params = { project_id: string; id?: string };
export type Req = FastifyRequest<{ Params: Params; Querystring: Record<string, unknown> }>;

/**
 * Who is asking, as the API's auth hook established it (`req.auth`): noauth callers and the
 * admin token are admins; the read-only token is not (it only reaches GETs). The project is the
 * one in the path.
 */
export function contextOf(req: Req): RequestContext {
  const auth = req.auth as RequestAuth | null;
  return { projectId: req.params.project_id, userId: auth?.userId ?? null, isAdmin: auth?.role === 'admin' };
}

export function viewOf(req: Req): ViewContext {
  return { baseUrl: req.publicBase, projectId: req.params.project_id, version: req.apiVersion };
}

export function idOf(req: Req): string {
  return req.params.id ?? '';
}

/** Domain errors the global handler does not know → Cinder's status codes. */
export async function mapped<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof ConditionFailedError) throw new HttpError(err.retryable ? 409 : 400, err.message, 'CONFLICT', { cause: err });
    if (err instanceof ClusterDisabledError) throw new HttpError(400, err.message, 'CLUSTER_DISABLED', { cause: err });
    if (err instanceof AttachmentFailedError) throw new HttpError(500, err.message, 'DRIVER_ERROR', { cause: err });
    throw err;
  }
}

function listBody<R extends { id: string }>(req: Req, collection: string, detail: boolean, list: ListRequest, page: Page<R>, render: (r: R) => unknown): Record<string, unknown> {
  const body: Record<string, unknown> = { [collection]: page.items.map(render) };
  const last = page.items[page.items.length - 1];
  if (page.more && last) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(req.query)) if (typeof v === 'string' && k !== 'marker' && k !== 'limit') params.set(k, v);
    params.set('limit', String(list.limit));
    params.set('marker', last.id);
    const view = viewOf(req);
    body[`${collection}_links`] = [{ href: `${view.baseUrl}/v3/${view.projectId}/${collection}${detail ? '/detail' : ''}?${params.toString()}`, rel: 'next' }];
  }
  if (list.withCount) body.count = page.total;
  return body;
}

export function noQuery(req: Req, allowed: readonly string[]): void {
  const unknown = Object.keys(req.query).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) throw new InvalidInputError(`Invalid input received: unsupported query parameters: ${previewKeys(unknown)}`);
}

/** Cinder's policy: only admins force-delete. */
export function requireAdmin(ctx: RequestContext, action: string): void {
  if (!ctx.isAdmin) throw new HttpError(403, `Policy doesn't allow ${action} to be performed.`, 'INVALID_INPUT');
}

export function flagOf(req: Req, name: string): boolean {
  const value = req.query[name];
  return typeof value === 'string' && ['1', 'true', 't', 'yes', 'y', 'on'].includes(value.toLowerCase());
}

function refuseFlag(req: Req, name: string, what: string): void {
  const value = req.query[name];
  if (typeof value === 'string' && ['1', 'true', 't', 'yes', 'y', 'on'].includes(value.toLowerCase())) {
    throw new InvalidInputError(`Invalid input received: ${what} is not supported by hearth.`);
  }
}

function volumeRoutesOn(app: FastifyInstance, service: VolumeService, attachments?: AttachmentService): void {
  const base = '/v3/:project_id/volumes';
  app.post(base, async (req: Req, reply: FastifyReply) =>
    mapped(async () => {
      noQuery(req, []);
      const { volume: v } = parseBody(createVolumeBody, req.body);
      if (v.multiattach === true) {
        throw new InvalidInputError(
          'multiattach parameter has been removed. The default behavior is to use multiattach enabled volume types. Contact your administrator to create a multiattach enabled volume type and use it to create multiattach volumes.',
        );
      }
      const created = await service.createVolume(contextOf(req), {
        size: v.size ?? null,
        name: v.name ?? null,
        description: v.description ?? null,
        metadata: v.metadata ?? {},
        availabilityZone: v.availability_zone ?? null,
        volumeType: v.volume_type ?? null,
        snapshotId: v.snapshot_id ?? null,
        sourceVolid: v.source_volid ?? null,
      });
      return reply.code(202).send({ volume: volumeDetail(viewOf(req), created) });
    }),
  );
  for (const detail of [false, true]) {
    app.get(detail ? `${base}/detail` : base, async (req: Req) =>
      mapped(async () => {
        const list = parseListQuery('volume', req.query, req.apiVersion);
        const page = await service.listVolumes(contextOf(req), list.query, list.allTenants);
        const view = viewOf(req);
        return listBody(req, 'volumes', detail, list, page, (v) => (detail ? volumeDetail(view, v) : volumeSummary(view, v)));
      }),
    );
  }
  app.get(`${base}/:id`, async (req: Req) => mapped(async () => ({ volume: volumeDetail(viewOf(req), await service.getVolume(contextOf(req), idOf(req))) })));
  app.delete(`${base}/:id`, async (req: Req, reply: FastifyReply) =>
    mapped(async () => {
      refuseFlag(req, 'cascade', 'deleting a volume together with its snapshots (cascade)');
      noQuery(req, ['cascade', 'force']);
      const ctx = contextOf(req);
      // `DELETE …?force=true` (3.23) is os-force_delete by another name.
      if (atLeast(req.apiVersion, '3.23') && flagOf(req, 'force')) {
        requireAdmin(ctx, 'volume:force_delete');
        await service.forceDeleteVolume(ctx, idOf(req));
      } else {
        refuseFlag(req, 'force', 'force-deleting a volume before microversion 3.23');
        await service.deleteVolume(ctx, idOf(req));
      }
      return reply.code(202).send();
    }),
  );
  app.post(`${base}/:id/action`, async (req: Req, reply: FastifyReply) =>
    mapped(async () => {
      noQuery(req, []);
      const { name, args } = actionOf(req.body);
      const ctx = contextOf(req);
      if (name === 'os-extend') {
        const { new_size } = parseBody(extendBody, args, name);
        await service.extendVolume(ctx, idOf(req), new_size, atLeast(req.apiVersion, '3.42'));
      } else if (name === 'os-force_delete') {
        requireAdmin(ctx, 'volume_extension:volume_admin_actions:force_delete');
        await service.forceDeleteVolume(ctx, idOf(req));
      } else if (name === 'os-force_detach' && attachments) {
        requireAdmin(ctx, 'volume_extension:volume_admin_actions:force_detach');
        const b = parseBody(forceDetachBody, args, name);
        await attachments.forceDetach(ctx, idOf(req), b?.attachment_id ?? null);
      } else if (name === 'os-reset_status') {
        const b = parseBody(resetVolumeStatusBody, args, name);
        const migration = b.migration_status === undefined ? {} : { migrationStatus: b.migration_status === 'none' ? null : b.migration_status };
        await service.resetVolumeStatus(ctx, idOf(req), {
          ...(b.status === undefined ? {} : { status: b.status }),
          ...(b.attach_status === undefined ? {} : { attachStatus: b.attach_status }),
          ...migration,
        });
      } else {
        throw new InvalidInputError(`There is no such action: ${previewText(name, 60)}`);
      }
      return reply.code(202).send();
    }),
  );
}

function snapshotRoutesOn(app: FastifyInstance, service: VolumeService): void {
  const base = '/v3/:project_id/snapshots';
  app.post(base, async (req: Req, reply: FastifyReply) =>
    mapped(async () => {
      noQuery(req, []);
      const { snapshot: s } = parseBody(createSnapshotBody, req.body);
      const implied = atLeast(req.apiVersion, '3.66');
      if (implied && s.force === false) {
        throw new InvalidInputError('Invalid input received: from microversion 3.66 in-use volumes are snapshotted without force, and force=false is not allowed.');
      }
      const created = await service.createSnapshot(contextOf(req), {
        volumeId: s.volume_id,
        name: s.name ?? null,
        description: s.description ?? null,
        metadata: s.metadata ?? {},
        allowInUse: implied || s.force === true,
      });
      return reply.code(202).send({ snapshot: snapshotDetail(viewOf(req), created) });
    }),
  );
  for (const detail of [false, true]) {
    app.get(detail ? `${base}/detail` : base, async (req: Req) =>
      mapped(async () => {
        const list = parseListQuery('snapshot', req.query, req.apiVersion);
        const page = await service.listSnapshots(contextOf(req), list.query, list.allTenants);
        const view = viewOf(req);
        return listBody(req, 'snapshots', detail, list, page, (s) => (detail ? snapshotDetail(view, s) : snapshotSummary(s)));
      }),
    );
  }
  app.get(`${base}/:id`, async (req: Req) => mapped(async () => ({ snapshot: snapshotDetail(viewOf(req), await service.getSnapshot(contextOf(req), idOf(req))) })));
  app.delete(`${base}/:id`, async (req: Req, reply: FastifyReply) =>
    mapped(async () => {
      noQuery(req, []);
      await service.deleteSnapshot(contextOf(req), idOf(req));
      return reply.code(202).send();
    }),
  );
  app.post(`${base}/:id/action`, async (req: Req, reply: FastifyReply) =>
    mapped(async () => {
      noQuery(req, []);
      const { name, args } = actionOf(req.body);
      const ctx = contextOf(req);
      if (name === 'os-force_delete') {
        requireAdmin(ctx, 'volume_extension:snapshot_admin_actions:force_delete');
        await service.forceDeleteSnapshot(ctx, idOf(req));
        return reply.code(202).send();
      }
      if (name !== 'os-reset_status') throw new InvalidInputError(`There is no such action: ${previewText(name, 60)}`);
      const { status } = parseBody(resetSnapshotStatusBody, args, name);
      await service.resetSnapshotStatus(ctx, idOf(req), status);
      return reply.code(202).send();
    }),
  );
}

/** The route module for `ApiServer.register`. */
export function volumeRoutes(service: VolumeService, attachments?: AttachmentService): RouteModule {
  return (app) => {
    volumeRoutesOn(app, service, attachments);
    snapshotRoutesOn(app, service);
  };
}
