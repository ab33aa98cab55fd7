/**
 * The attachment routes (`/v3/{project_id}/attachments`, microversion 3.27; `os-complete` 3.44)
 * and the volume-type routes (`/v3/{project_id}/types`) of the Cinder-compatible API. Thin: each
 * handler validates its input, calls its service and renders Cinder's view.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { atLeast } from '../api/microversion.js';
import type { RouteModule } from '../api/server.js';
import { InvalidInputError, NotFoundError } from '../errors.js';
import { previewText } from '../preview.js';
import { attachmentDetail, attachmentSummary, volumeTypeView } from './attachment-views.js';
import { createAttachmentBody, createTypeBody, extraSpecsBody, isUuid, updateAttachmentBody } from './attachment-schemas.js';
import type { AttachmentService } from './attachment-service.js';
import { actionOf, parseBody } from './request-schemas.js';
import { contextOf, idOf, mapped, noQuery, type Req, requireAdmin } from './volume-routes.js';
import type { VolumeTypeService } from './volume-type-service.js';

/** Below its microversion a route does not exist (Cinder: 404, VersionNotFoundForAPIMethod). */
function since(req: Req, min: string): void {
  if (!atLeast(req.apiVersion, min)) throw new NotFoundError('api', min, `The resource could not be found: this API needs microversion ${min} or later.`);
}

/** A path id that is not a UUID names no attachment (Cinder: 404); nothing is read for it. */
function attachmentId(req: Req): string {
  const id = idOf(req);
  if (!isUuid(id)) throw new NotFoundError('attachment', id, `Volume attachment could not be found with filter: attachment_id = ${previewText(id)}.`);
  return id.toLowerCase();
}

function stringQuery(req: Req, name: string): string | undefined {
  const value = req.query[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function attachmentRoutesOn(app: FastifyInstance, attachments: AttachmentService): void {
  const base = '/v3/:project_id/attachments';
  app.post(base, async (req: Req) =>
    mapped(async () => {
      since(req, '3.27');
      noQuery(req, []);
      const { attachment: a } = parseBody(createAttachmentBody, req.body);
      if (a.mode !== undefined && !atLeast(req.apiVersion, '3.54')) {
        throw new InvalidInputError("Invalid input for field/attribute attachment. Additional properties are not allowed ('mode' was unexpected).");
      }
      const created = await attachments.create(contextOf(req), { volumeId: a.volume_uuid, instanceUuid: a.instance_uuid ?? null, connector: a.connector ?? null, mode: a.mode ?? 'null' });
      return { attachment: attachmentDetail(created.attachment, created.volume.id) };
    }),
  );
  for (const detail of [false, true]) {
    app.get(detail ? `${base}/detail` : base, async (req: Req) =>
      mapped(async () => {
        since(req, '3.27');
        noQuery(req, ['all_tenants', 'volume_id', 'status', 'instance_id', 'project_id', 'limit', 'marker', 'sort', 'sort_key', 'sort_dir']);
        const all = stringQuery(req, 'all_tenants');
        const volumeId = stringQuery(req, 'volume_id');
        const status = stringQuery(req, 'status');
        const instanceId = stringQuery(req, 'instance_id');
        const limitText = stringQuery(req, 'limit');
        if (limitText !== undefined && !/^[0-9]{1,6}$/.test(limitText)) throw new InvalidInputError(`Invalid input received: limit must be a non-negative integer, got ${previewText(limitText)}.`);
        const marker = stringQuery(req, 'marker');
        const found = await attachments.list(
          contextOf(req),
          { ...(volumeId === undefined ? {} : { volumeId }), ...(status === undefined ? {} : { status }), ...(instanceId === undefined ? {} : { instanceId }) },
          all !== undefined && all !== '0' && all.toLowerCase() !== 'false',
          { ...(limitText === undefined ? {} : { limit: Number(limitText) }), ...(marker === undefined ? {} : { marker }) },
        );
        return { attachments: found.map(({ attachment, volume }) => (detail ? attachmentDetail(attachment, volume.id) : attachmentSummary(attachment, volume.id))) };
      }),
    );
  }
  app.get(`${base}/:id`, async (req: Req) =>
    mapped(async () => {
      since(req, '3.27');
      const found = await attachments.get(contextOf(req), attachmentId(req));
      return { attachment: attachmentDetail(found.attachment, found.volume.id) };
    }),
  );
  app.put(`${base}/:id`, async (req: Req) =>
    mapped(async () => {
      since(req, '3.27');
      noQuery(req, []);
      const id = attachmentId(req);
      const { attachment: a } = parseBody(updateAttachmentBody, req.body);
      const updated = await attachments.update(contextOf(req), id, a.connector);
      return { attachment: attachmentDetail(updated.attachment, updated.volume.id) };
    }),
  );
  app.delete(`${base}/:id`, async (req: Req) =>
    mapped(async () => {
      since(req, '3.27');
      noQuery(req, []);
      const remaining = await attachments.delete(contextOf(req), attachmentId(req));
      return { attachments: remaining.map(({ attachment, volume }) => attachmentSummary(attachment, volume.id)) };
    }),
  );
  app.post(`${base}/:id/action`, async (req: Req, reply: FastifyReply) =>
    mapped(async () => {
      noQuery(req, []);
      const id = attachmentId(req);
      const { name } = actionOf(req.body);
      if (name !== 'os-complete') throw new InvalidInputError(`There is no such action: ${previewText(name, 60)}`);
      since(req, '3.44');
      await attachments.complete(contextOf(req), id);
      return reply.code(204).send();
    }),
  );
}

function typeRoutesOn(app: FastifyInstance, types: VolumeTypeService): void {
  const base = '/v3/:project_id/types';
  app.post(base, async (req: Req) =>
    mapped(async () => {
      noQuery(req, []);
      requireAdmin(contextOf(req), 'volume_extension:types_manage');
      const { volume_type: t } = parseBody(createTypeBody, req.body);
      let created = await types.create({ name: t.name, description: t.description ?? null, isPublic: t['os-volume-type-access:is_public'] ?? t.is_public ?? true });
      if (t.extra_specs && Object.keys(t.extra_specs).length > 0) created = await types.changeSpecs(created.id, { set: t.extra_specs });
      return { volume_type: volumeTypeView(created) };
    }),
  );
  app.get(base, async () => mapped(async () => ({ volume_types: (await types.list()).map(volumeTypeView) })));
  app.get(`${base}/:id`, async (req: Req) => mapped(async () => ({ volume_type: volumeTypeView(await types.get(idOf(req))) })));
  app.delete(`${base}/:id`, async (req: Req, reply: FastifyReply) =>
    mapped(async () => {
      noQuery(req, []);
      requireAdmin(contextOf(req), 'volume_extension:types_manage');
      await types.delete(idOf(req));
      return reply.code(202).send();
    }),
  );
  app.get(`${base}/:id/extra_specs`, async (req: Req) => mapped(async () => ({ extra_specs: { ...(await types.extraSpecs(idOf(req))) } })));
  app.post(`${base}/:id/extra_specs`, async (req: Req) =>
    mapped(async () => {
      noQuery(req, []);
      requireAdmin(contextOf(req), 'volume_extension:types_extra_specs:create');
      const { extra_specs } = parseBody(extraSpecsBody, req.body);
      await types.changeSpecs(idOf(req), { set: extra_specs });
      return { extra_specs };
    }),
  );
  app.delete(`${base}/:id/extra_specs/:key`, async (req: Req, reply: FastifyReply) =>
    mapped(async () => {
      noQuery(req, []);
      requireAdmin(contextOf(req), 'volume_extension:types_extra_specs:delete');
      const key = (req.params as { key?: string }).key ?? '';
      await types.changeSpecs(idOf(req), { unset: key });
      return reply.code(202).send();
    }),
  );
}

/** The route modules for `ApiServer.register`. */
export function attachmentRoutes(attachments: AttachmentService, types: VolumeTypeService): RouteModule {
  return (app) => {
    attachmentRoutesOn(app, attachments);
    typeRoutesOn(app, types);
  };
}
