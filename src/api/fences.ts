import type { FastifyInstance } from 'fastify';
import type { FenceOp, FenceQueue } from '../fencing/fence-queue.js';
import type { IncarnationEnd } from '../membership/incarnation-records.js';
import type { Membership } from '../membership/membership.js';
import type { Logger } from '../observability/logger.js';
import { previewText } from '../preview.js';
import { formatCinderTime } from './cinder-time.js';
import { HttpError } from './faults.js';
import type { RouteModule } from './server.js';

/** What the fence routes read and change. */
export interface FenceRoutesOptions {
  readonly membership: Pick<Membership, 'incarnation' | 'incarnations' | 'recordEnd'>;
  readonly queue: Pick<FenceQueue, 'list' | 'get' | 'remove'>;
  readonly logger: Logger;
}

const time = (ms: number): string | null => (ms > 0 ? formatCinderTime(ms) : null);

/** A dead incarnation whose fence is not on record, as `GET /hearth/v1/fences` shows it. */
export function awaitingJson(op: FenceOp): Record<string, unknown> {
  return {
    incarnation: op.incarnation,
    host: op.host,
    cluster: op.cluster,
    died_at: time(op.diedAtMs),
    seen_dying: op.observedLive,
    runner: op.owner?.incarnation ?? null,
    attempts: op.attempt,
    failures: op.failures,
    last_error: op.lastError,
    next_attempt_at: time(op.nextAttemptAtMs),
  };
}

/** How an incarnation ended, as `GET /hearth/v1/fences` shows it. */
export function endJson(end: IncarnationEnd): Record<string, unknown> {
  return { incarnation: end.incarnation, host: end.host, how: end.how, by: end.by, at: time(end.atMs), detail: end.detail };
}

/**
 * hearth's fence views and the operator's confirmation (`stonith_admin --confirm`):
 *
 * - `GET /hearth/v1/fences`: `{awaiting, ended}` — dead incarnations whose fence is not on
 *   record yet (with the last attempt's error: their orphans and the locks they held wait), and
 *   the incarnations whose end is on record (left cleanly, or fenced: how, by whom, when).
 * - `POST /hearth/v1/fences/{incarnation}/confirm` (body optional: `{"reason": "…"}`): records the
 *   fence by hand once the operator knows the process is stopped. 404 for an unknown
 *   incarnation, 409 while it is alive; an incarnation already fenced answers its end as it is.
 *   Admin only.
 *
 * Failure semantics: etcd unreachable → 503; a confirmation may or may not have landed: list again.
 */
export function fenceRoutes(options: FenceRoutesOptions): RouteModule {
  return (app: FastifyInstance) => {
    app.get('/hearth/v1/fences', { config: { skipVersion: true } }, async () => {
      const [ops, views] = await Promise.all([options.queue.list(), options.membership.incarnations()]);
      const ended = views.flatMap((v) => (v.end ? [v.end] : [])).sort((a, b) => b.atMs - a.atMs);
      return { awaiting: ops.sort((a, b) => a.diedAtMs - b.diedAtMs).map(awaitingJson), ended: ended.map(endJson) };
    });

    app.post<{ Params: { incarnation: string }; Body: unknown }>('/hearth/v1/fences/:incarnation/confirm', { config: { skipVersion: true } }, async (req) => {
      const { incarnation } = req.params;
      const reason = reasonOf(req.body);
      const [view, op] = await Promise.all([options.membership.incarnation(incarnation), options.queue.get(incarnation)]);
      if (view.end) return { fence: endJson(view.end), created: false };
      if (view.alive) throw new HttpError(409, `Incarnation ${previewText(incarnation)} is alive: there is nothing to fence. Stop its process first.`, 'CONFLICT');
      if (!view.record && !op) throw new HttpError(404, `Incarnation ${previewText(incarnation)} could not be found.`, 'NOT_FOUND');
      const host = view.record?.host ?? op?.host ?? incarnation.slice(0, incarnation.lastIndexOf(':'));
      const result = await options.membership.recordEnd({ incarnation, host, how: 'manual', by: 'operator', atMs: Date.now(), detail: reason });
      if (!result.ok) throw new HttpError(409, `Incarnation ${previewText(incarnation)} is alive: there is nothing to fence.`, 'CONFLICT');
      await options.queue.remove(incarnation);
      if (result.created) options.logger.warn({ incarnation, host, reason }, 'fence confirmed by an operator');
      return { fence: endJson(result.end), created: result.created };
    });
  };
}

function reasonOf(body: unknown): string {
  if (body === undefined || body === null) return 'confirmed by an operator';
  if (typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'Invalid input: the body must be an object such as {"reason": "…"}.');
  const { reason, ...rest } = body as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw new HttpError(400, `Invalid input: unknown field(s) ${unknown.map((k) => previewText(k)).join(', ')}.`);
  if (reason === undefined) return 'confirmed by an operator';
  if (typeof reason !== 'string' || reason.trim() === '' || reason.length > 255) throw new HttpError(400, 'Invalid input: reason must be a string of 1 to 255 characters.');
  return reason;
}
