/**
 * Cinder's user messages API (`cinder message-list`, `message-show`, `message-delete`), from
 * microversion 3.3: `GET /v3/{project_id}/messages`, `GET …/messages/{id}`, `DELETE
 * …/messages/{id}` (204). From 3.5 the list takes Cinder's filters (`resource_type`,
 * `resource_uuid`, `event_id`, `request_id`, `message_level`; an admin's filter on anything
 * else matches nothing, anyone else's is a 400), `sort` / `sort_key` / `sort_dir`, `limit` and
 * `marker`, with a `messages_links` next link. An admin sees every
 * project's messages, anyone else its own project's; an id that is not a UUID, or a message
 * someone else's, is a 404 as in Cinder.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RequestAuth } from '../api/auth.js';
import { formatCinderTime } from '../api/cinder-time.js';
import { HttpError } from '../api/faults.js';
import { atLeast } from '../api/microversion.js';
import type { RouteModule } from '../api/server.js';
import { previewKeys, previewText } from '../preview.js';
import type { MessageStore, UserMessage } from './message-store.js';

const MESSAGES_MV = '3.3';
const PAGINATION_MV = '3.5';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Filter keys of the list (Cinder's message columns). */
const FILTERS = { resource_type: 'resourceType', resource_uuid: 'resourceUuid', event_id: 'eventId', request_id: 'requestId', message_level: 'messageLevel' } as const;
const SORT_KEYS = { created_at: 'createdAtMs', id: 'id', event_id: 'eventId', resource_type: 'resourceType', resource_uuid: 'resourceUuid', request_id: 'requestId', message_level: 'messageLevel' } as const;

type Req = FastifyRequest<{ Params: { project_id: string; id?: string }; Querystring: Record<string, string | string[] | undefined> }>;

/** What the message routes use. */
export interface MessageRoutesOptions {
  readonly messages: MessageStore;
  readonly now: () => number;
}

function scopeOf(req: Req): string | undefined {
  const auth = req.auth as RequestAuth | null;
  return auth?.role === 'admin' ? undefined : req.params.project_id;
}

function notFound(id: string): HttpError {
  return new HttpError(404, `Message ${previewText(id)} could not be found.`, 'NOT_FOUND');
}

/** One message as Cinder's view shows it. */
export function messageJson(m: UserMessage, baseUrl: string, projectId: string): Record<string, unknown> {
  return {
    id: m.id,
    event_id: m.eventId,
    user_message: m.userMessage,
    message_level: m.messageLevel,
    created_at: formatCinderTime(m.createdAtMs),
    guaranteed_until: formatCinderTime(m.expiresAtMs),
    request_id: m.requestId,
    links: [
      { href: `${baseUrl}/v3/${projectId}/messages/${m.id}`, rel: 'self' },
      { href: `${baseUrl}/${projectId}/messages/${m.id}`, rel: 'bookmark' },
    ],
    ...(m.resourceType ? { resource_type: m.resourceType } : {}),
    ...(m.resourceUuid ? { resource_uuid: m.resourceUuid } : {}),
  };
}

function last(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[value.length - 1] : value;
}

/** Cinder's `sort=key[:dir],…` or `sort_key` / `sort_dir`; default created_at desc, id desc. */
function sortOf(query: Req['query']): { key: keyof typeof SORT_KEYS; desc: boolean }[] {
  const keys: { key: keyof typeof SORT_KEYS; desc: boolean }[] = [];
  const add = (key: string, dir: string | undefined): void => {
    if (!(key in SORT_KEYS)) throw new HttpError(400, `Invalid input received: Invalid sort key ${previewText(key, 40)}.`);
    if (dir !== undefined && dir !== 'asc' && dir !== 'desc') throw new HttpError(400, `Invalid input received: Invalid sort direction ${previewText(dir, 10)}.`);
    keys.push({ key: key as keyof typeof SORT_KEYS, desc: dir !== 'asc' });
  };
  const sort = last(query.sort);
  if (sort) for (const part of sort.split(',')) add(...(part.trim().split(':') as [string, string | undefined]));
  else if (last(query.sort_key)) add(last(query.sort_key) as string, last(query.sort_dir));
  if (keys.length === 0) keys.push({ key: 'created_at', desc: true });
  if (!keys.some((k) => k.key === 'id')) keys.push({ key: 'id', desc: true });
  return keys;
}

function listOf(req: Req, all: UserMessage[]): { items: UserMessage[]; more: boolean; limit: number } {
  const query = req.query;
  if (!atLeast(req.apiVersion, PAGINATION_MV)) return { items: all.sort((a, b) => b.createdAtMs - a.createdAtMs || (a.id < b.id ? 1 : -1)), more: false, limit: all.length };
  // `all_tenants` changes nothing here: an admin sees every project's messages anyway.
  const paging = new Set(['marker', 'limit', 'offset', 'sort', 'sort_key', 'sort_dir', 'all_tenants']);
  const unknown = Object.keys(query).filter((k) => !paging.has(k) && !(k in FILTERS));
  // Cinder: an admin may filter on anything, and a key that is no message column matches nothing; anyone else gets a 400.
  if (unknown.length > 0 && scopeOf(req) !== undefined) throw new HttpError(400, `Invalid input received: Invalid filter keys: ${previewKeys(unknown)}`);
  if (unknown.length > 0) return { items: [], more: false, limit: 0 };
  let items = all.filter((m) => Object.entries(FILTERS).every(([param, field]) => last(query[param]) === undefined || String(m[field]) === last(query[param])));
  const keys = sortOf(query);
  items.sort((a, b) => {
    for (const { key, desc } of keys) {
      const x = a[SORT_KEYS[key]] ?? '';
      const y = b[SORT_KEYS[key]] ?? '';
      if (x !== y) return (x < y ? -1 : 1) * (desc ? -1 : 1);
    }
    return 0;
  });
  const marker = last(query.marker);
  if (marker !== undefined) {
    const at = items.findIndex((m) => m.id === marker);
    if (at < 0) throw new HttpError(400, `Invalid input received: marker [${previewText(marker, 40)}] not found`);
    items = items.slice(at + 1);
  }
  const offset = Number(last(query.offset) ?? 0);
  const limitText = last(query.limit);
  const limit = limitText === undefined ? items.length : Number(limitText);
  if (!Number.isInteger(offset) || offset < 0) throw new HttpError(400, 'Invalid input received: offset must be a non-negative integer.');
  if (!Number.isInteger(limit) || limit < 0) throw new HttpError(400, 'Invalid input received: limit must be a non-negative integer.');
  const page = items.slice(offset, offset + limit);
  return { items: page, more: offset + limit < items.length, limit };
}

/** See the module doc. */
export function messageRoutes(options: MessageRoutesOptions): RouteModule {
  return (app: FastifyInstance) => {
    const since = { config: { minVersion: MESSAGES_MV } };
    const find = async (req: Req): Promise<UserMessage> => {
      const id = req.params.id ?? '';
      if (!UUID.test(id)) throw notFound(id);
      const message = await options.messages.get(id.toLowerCase(), options.now());
      const scope = scopeOf(req);
      if (!message || (scope !== undefined && message.projectId !== scope)) throw notFound(id);
      return message;
    };

    app.get('/v3/:project_id/messages', since, async (req: Req) => {
      const { items, more, limit } = listOf(req, await options.messages.list(scopeOf(req), options.now()));
      const body: Record<string, unknown> = { messages: items.map((m) => messageJson(m, req.publicBase, req.params.project_id)) };
      const lastItem = items[items.length - 1];
      if (more && lastItem) {
        const params = new URLSearchParams();
        for (const [k, v] of Object.entries(req.query)) if (typeof v === 'string' && k !== 'marker' && k !== 'offset') params.set(k, v);
        params.set('limit', String(limit));
        params.set('marker', lastItem.id);
        body.messages_links = [{ href: `${req.publicBase}/v3/${req.params.project_id}/messages?${params.toString()}`, rel: 'next' }];
      }
      return body;
    });

    app.get('/v3/:project_id/messages/:id', since, async (req: Req) => ({ message: messageJson(await find(req), req.publicBase, req.params.project_id) }));

    app.delete('/v3/:project_id/messages/:id', since, async (req: Req, reply: FastifyReply) => {
      const message = await find(req);
      await options.messages.delete(message.id);
      return reply.code(204).send();
    });
  };
}
