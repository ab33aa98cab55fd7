/**
 * Confirmed publishing on one AMQP session: a small helper of the AMQP bus that translates
 * amqplib's outcomes into hearth's errors.
 */
import type { Options } from 'amqplib';
import { AbortedError, BackendUnavailableError, messageOf } from '../errors.js';
import type { AmqpSession } from './connection.js';

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
