/**
 * Confirmed publishing on one AMQP session, and reading dead-lettered messages back. Small
 * helpers of the AMQP bus; they translate amqplib's outcomes into hearth's errors.
 */
import type { GetMessage, Options } from 'amqplib';
import { AbortedError, BackendUnavailableError, messageOf } from '../errors.js';
import type { AmqpSession } from './connection.js';
import type { DeadLetter } from '../routing/job-bus.js';
import { DEAD_LETTER_REASONS } from '../routing/job-message.js';
import { DEAD_LETTER_HEADERS } from '../routing/topology.js';

/** How a confirmed publish ended. `returned`: no queue was bound for the routing key. */
export type SendOutcome = 'confirmed' | 'returned';

/**
 * Publishes one persistent, mandatory message on the session's confirm channel and resolves
 * when the broker confirmed it.
 *
 * Failure semantics: rejects with BackendUnavailableError when the broker refuses it (nack) or
 * the connection is lost before the confirm (the message may or may not be enqueued), and
 * with AbortedError when `signal` aborts first (the caller's deadline or cancellation).
 * `options.messageId` must be unique: returns are matched by it.
 */
export function sendConfirmed(
  session: AmqpSession,
  exchange: string,
  routingKey: string,
  content: Buffer,
  options: Options.Publish & { readonly messageId: string },
  signal: AbortSignal,
): Promise<SendOutcome> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      signal.removeEventListener('abort', onAbort);
      session.signal.removeEventListener('abort', onLost);
    };
    const onAbort = (): void => {
      cleanup();
      reject(new AbortedError('publish', { cause: signal.reason }));
    };
    const onLost = (): void => {
      cleanup();
      reject(new BackendUnavailableError('amqp', 'the RabbitMQ connection was lost before the broker confirmed the message', { cause: session.signal.reason }));
    };
    if (signal.aborted) return onAbort();
    if (session.signal.aborted) return onLost();
    signal.addEventListener('abort', onAbort, { once: true });
    session.signal.addEventListener('abort', onLost, { once: true });
    try {
      session.confirm.publish(exchange, routingKey, content, { ...options, persistent: true, mandatory: true }, (err: unknown) => {
        cleanup();
        const wasReturned = session.returned.delete(options.messageId);
        if (err) reject(new BackendUnavailableError('amqp', `RabbitMQ did not take the message: ${messageOf(err)}`, { cause: err }));
        else resolve(wasReturned ? 'returned' : 'confirmed');
      });
    } catch (err) {
      // amqplib throws synchronously when the channel is already closed.
      cleanup();
      reject(new BackendUnavailableError('amqp', `cannot publish: ${messageOf(err)}`, { cause: err }));
    }
  });
}

/** Deliveries so far including this one, from the quorum queue's `x-delivery-count`. */
export function deliveryCountOf(headers: Record<string, unknown> | undefined): number {
  const count = Number(headers?.['x-delivery-count'] ?? 0);
  return Number.isFinite(count) && count >= 0 ? count + 1 : 1;
}

/** A message taken from the dead-letter queue, described for people. */
export function toDeadLetter(msg: GetMessage): DeadLetter {
  const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
  const text = (key: string): string => {
    const value = headers[key];
    if (value === undefined || value === null) return '';
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    return Buffer.isBuffer(value) ? value.toString('utf8') : JSON.stringify(value);
  };
  const body = msg.content.subarray(0, 1024).toString('utf8');
  const ours = DEAD_LETTER_REASONS.find((r) => r === headers[DEAD_LETTER_HEADERS.reason]);
  if (ours) {
    return {
      reason: ours,
      detail: text(DEAD_LETTER_HEADERS.detail),
      queue: text(DEAD_LETTER_HEADERS.queue),
      by: text(DEAD_LETTER_HEADERS.by),
      at: Number(headers[DEAD_LETTER_HEADERS.at] ?? 0),
      deliveries: Number(headers[DEAD_LETTER_HEADERS.deliveries] ?? 0),
      body,
    };
  }
  // Moved by the broker itself (a rejection without requeue, or a broker-side delivery limit).
  const death = (Array.isArray(headers['x-death']) ? headers['x-death'][0] : undefined) as Record<string, unknown> | undefined;
  const time = death?.time as { value?: unknown } | number | undefined;
  const seconds = typeof time === 'object' ? Number(time.value) : Number(time ?? 0);
  return {
    reason: `broker:${text('x-first-death-reason') || 'unknown'}`,
    detail: 'dead-lettered by RabbitMQ',
    queue: text('x-first-death-queue'),
    by: '',
    at: Number.isFinite(seconds) ? seconds * 1_000 : 0,
    deliveries: Number(death?.count ?? 0),
    body,
  };
}
