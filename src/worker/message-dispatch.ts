/**
 * Which handler a delivered message goes to. The worker consumes one stream of messages (its
 * cluster's queue and its host's queue); each message type has one handler. `job` — an op to
 * run — is the volume manager's. Other concerns add their own types and handlers: extend
 * {@link MessageType} and {@link messageTypeOf} when `src/routing/job-message.ts` gains a variant,
 * and pass the handler in the worker's `extraHandlers`.
 */
import type { Logger } from '../observability/logger.js';
import { type Disposition, dispositions, type JobDelivery, type JobHandler } from '../routing/job-bus.js';
import type { JobMessage } from '../routing/job-message.js';

/** The message types the worker dispatches. */
export type MessageType = 'job';

/** Every message type, for exhaustive checks. */
export const MESSAGE_TYPES: readonly MessageType[] = ['job'];

/**
 * Handles one delivery of its type and says what becomes of the message (see `Disposition`).
 * Claim before `ack`; answer `requeue` while draining; never throw on purpose (a throw is
 * logged and retried later, counting toward `amqp.maxDeliveries`).
 */
export type MessageHandler = (delivery: JobDelivery) => Promise<Disposition>;

/** The type of a decoded message; every version-1 message is a job. */
export function messageTypeOf(_message: JobMessage): MessageType {
  return 'job';
}

/**
 * One bus handler that routes each delivery to the handler of its type. A type with no handler
 * (a message this process cannot serve) is dead-lettered with the reason `rejected`.
 */
export function dispatcher(handlers: Partial<Record<MessageType, MessageHandler>>, logger: Logger): JobHandler {
  return async (delivery) => {
    const type = messageTypeOf(delivery.job);
    const handler = handlers[type];
    if (handler) return handler(delivery);
    logger.warn({ type, opId: delivery.job.opId }, 'no handler for this message type; dead-lettering it');
    return dispositions.deadLetter(`no handler for message type ${type} on this worker`);
  };
}
