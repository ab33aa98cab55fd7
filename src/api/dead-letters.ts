import type { FastifyInstance } from 'fastify';
import type { DeadLetter, JobBus } from '../routing/job-bus.js';
import { formatCinderTime } from './cinder-time.js';
import { HttpError } from './faults.js';
import { parseViewQuery } from './operator-views.js';
import type { RouteModule } from './server.js';

/** Most messages one request shows. */
export const MAX_DEAD_LETTERS = 1_000;
const DEFAULT_DEAD_LETTERS = 100;

/** One dead-lettered message as `GET /hearth/v1/dead-letters` shows it. */
export function deadLetterJson(d: DeadLetter): Record<string, unknown> {
  return { reason: d.reason, detail: d.detail, queue: d.queue, by: d.by || null, at: d.at > 0 ? formatCinderTime(d.at) : null, deliveries: d.deliveries, body: d.body };
}

/**
 * `GET /hearth/v1/dead-letters` (`?limit=`, 1–1000, default 100): the messages in the
 * dead-letter queue — why each went there (hearth's reason, or the broker's), which queue and
 * member, when, after how many deliveries, and the start of its body — without removing them.
 * What an operator looks at when `HearthMessagesDeadLettered` fires.
 *
 * Failure semantics: the broker unreachable → 503 with Cinder's fault body; a bad limit → 400.
 */
export function deadLetterRoutes(bus: Pick<JobBus, 'listDeadLetters'>): RouteModule {
  return (app: FastifyInstance) => {
    app.get('/hearth/v1/dead-letters', { config: { skipVersion: true } }, async (req) => {
      const q = parseViewQuery(req.query as Record<string, string | string[] | undefined>, ['limit'] as const);
      const limit = q.limit === undefined ? DEFAULT_DEAD_LETTERS : Number(q.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_DEAD_LETTERS) {
        throw new HttpError(400, `Invalid input: limit must be an integer from 1 to ${MAX_DEAD_LETTERS}.`);
      }
      const letters = await bus.listDeadLetters({ limit });
      return { dead_letters: letters.map(deadLetterJson) };
    });
  };
}
