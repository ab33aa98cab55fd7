/**
 * Which handler a delivered message goes to. The worker consumes one stream of messages (its
 * cluster's queue and its host's queue); each message type has one handler. `job` — an op to
 * run — is the volume manager's; `cleanup` — a `workers/cleanup` request for one service's
 * orphans — is the orphans concern's. A concern that adds a variant to
 * `src/routing/job-message.ts` extends {@link MessagesByType} and {@link messageTypeOf}, and
 * passes its handler in the worker's `extraHandlers`.
 */
import type { Logger } from '../observability/logger.js';
import { type Disposition, dispositions, type JobDelivery, type JobHandler } from '../routing/job-bus.js';
import type { BusMessage, CleanupMessage, JobMessage } from '../routing/job-message.js';

/** The message of each type the worker dispatches. */
export interface MessagesByType {
  readonly job: JobMessage;
  readonly cleanup: CleanupMessage;
}

/** The message types the worker dispatches. */
export type MessageType = keyof MessagesByType;

/** Every message type, for exhaustive checks. */
export const MESSAGE_TYPES: readonly MessageType[] = ['job', 'cleanup'];

/**
 * Handles one delivery of its type and says what becomes of the message (see `Disposition`).
 * Claim before `ack`; answer `requeue` while draining; never throw on purpose (a throw is
 * logged and retried later, counting toward `amqp.maxDeliveries`).
 */
export type MessageHandler<T extends MessageType = 'job'> = (delivery: JobDelivery<MessagesByType[T]>) => Promise<Disposition>;

/** One handler per message type, each taking its own message. */
export type MessageHandlers = { readonly [T in MessageType]?: MessageHandler<T> };

/** The type of a decoded message: `kind: 'cleanup'` is a cleanup request, every other kind a job. */
export function messageTypeOf(message: BusMessage): MessageType {
  return message.kind === 'cleanup' ? 'cleanup' : 'job';
}

/**
 * One bus handler that routes each delivery to the handler of its type. A type with no handler
 * (a message this process cannot serve) is dead-lettered with the reason `rejected`.
 */
export function dispatcher(handlers: MessageHandlers, logger: Logger): JobHandler {
  return async (delivery) => {
    const message = delivery.job;
    if (message.kind === 'cleanup') {
      if (handlers.cleanup) return handlers.cleanup({ ...delivery, job: message });
    } else if (handlers.job) {
      return handlers.job({ ...delivery, job: message });
    }
    const type = messageTypeOf(message);
    logger.warn({ type, ...(message.kind === 'cleanup' ? { requestId: message.requestId } : { opId: message.opId }) }, 'no handler for this message type; dead-lettering it');
    return dispositions.deadLetter(`no handler for message type ${type} on this worker`);
  };
}
