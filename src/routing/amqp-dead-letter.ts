/**
 * Reading a dead-lettered message back (the operator's dead-letter view): the reason hearth
 * stamped on it, or the broker's own `x-death` when RabbitMQ moved it.
 */
import type { GetMessage } from 'amqplib';
import type { DeadLetter } from './job-bus.js';
import { DEAD_LETTER_REASONS } from './job-message.js';
import { DEAD_LETTER_HEADERS } from './topology.js';

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
