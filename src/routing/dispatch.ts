/**
 * What both bus adapters do with a delivered message before and after the handler, so the
 * in-process bus and RabbitMQ behave the same: decode and vet it, call the handler, and turn a
 * throwing or confused handler into a safe disposition.
 */
import type { Logger } from '../observability/logger.js';
import type { Disposition, JobDelivery, JobHandler } from './job-bus.js';
import { type BusMessage, DEAD_LETTER_REASONS, type DeadLetterReason, decodeJob } from './job-message.js';

/** A handler that threw is retried after this long. */
export const HANDLER_ERROR_RETRY_MS = 1_000;

/** `retry-later` delays are capped here so a job is never parked for long on one member. */
export const MAX_RETRY_DELAY_MS = 60_000;

/** The bus's verdict on a message before any handler sees it. */
export type Intake =
  | { readonly action: 'deliver'; readonly job: BusMessage }
  | { readonly action: 'dead-letter'; readonly reason: DeadLetterReason; readonly detail: string };

/**
 * Decides whether a message reaches the handler. In order: it must decode (size, JSON,
 * version, schema); a job on a cluster queue must belong to that cluster; and it must not have
 * been delivered more than `maxDeliveries` times (a job that keeps failing, or keeps killing
 * its worker before it can say so, stops here).
 *
 * @param deliveryCount deliveries so far including this one (1 on the first).
 */
export function vet(content: Uint8Array, deliveryCount: number, limits: { readonly cluster: string; readonly maxDeliveries: number }): Intake {
  const decoded = decodeJob(content);
  if (!decoded.ok) return { action: 'dead-letter', reason: decoded.reason, detail: decoded.detail };
  if (decoded.job.cluster !== limits.cluster) {
    return { action: 'dead-letter', reason: 'misrouted', detail: `job of cluster ${decoded.job.cluster} on a queue of ${limits.cluster}` };
  }
  if (deliveryCount > limits.maxDeliveries) {
    return {
      action: 'dead-letter',
      reason: 'delivery-limit',
      detail: `delivered ${deliveryCount} times; the limit is ${limits.maxDeliveries}`,
    };
  }
  return { action: 'deliver', job: decoded.job };
}

/**
 * Runs the handler and returns a valid disposition whatever it does: a throw or an unknown
 * answer becomes `retry-later` (logged), and retry delays are clamped to [0, 60 s].
 */
export async function runHandler(handler: JobHandler, delivery: JobDelivery<BusMessage>, logger: Logger): Promise<Disposition> {
  let answer: unknown;
  try {
    answer = await handler(delivery);
  } catch (err) {
    logger.error({ err, ...idsOf(delivery.job), kind: delivery.job.kind, deliveryCount: delivery.deliveryCount }, 'job handler threw; retrying later');
    return { type: 'retry-later', delayMs: HANDLER_ERROR_RETRY_MS };
  }
  const disposition = normalize(answer);
  if (!disposition) {
    logger.error({ answer: String(JSON.stringify(answer)).slice(0, 200), ...idsOf(delivery.job) }, 'job handler returned no valid disposition; retrying later');
    return { type: 'retry-later', delayMs: HANDLER_ERROR_RETRY_MS };
  }
  return disposition;
}

/** The id a log line names: a job's `opId`, a cleanup request's `requestId`. */
function idsOf(message: BusMessage): { opId: string } | { requestId: string } {
  return message.kind === 'cleanup' ? { requestId: message.requestId } : { opId: message.opId };
}

function normalize(answer: unknown): Disposition | undefined {
  if (typeof answer !== 'object' || answer === null || !('type' in answer)) return undefined;
  const a = answer as Record<string, unknown>;
  switch (a.type) {
    case 'ack':
    case 'requeue':
      return { type: a.type };
    case 'drop':
      return typeof a.reason === 'string' ? { type: 'drop', reason: a.reason } : { type: 'drop' };
    case 'dead-letter': {
      // The reason is a metric label: only the bounded set passes.
      const reason = DEAD_LETTER_REASONS.find((r) => r === a.reason) ?? 'rejected';
      return { type: 'dead-letter', reason, detail: typeof a.detail === 'string' ? a.detail.slice(0, 500) : '' };
    }
    case 'retry-later': {
      const delay = typeof a.delayMs === 'number' && Number.isFinite(a.delayMs) ? a.delayMs : HANDLER_ERROR_RETRY_MS;
      return { type: 'retry-later', delayMs: Math.min(MAX_RETRY_DELAY_MS, Math.max(0, delay)) };
    }
    default:
      return undefined;
  }
}

