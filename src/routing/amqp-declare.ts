/**
 * Declaring hearth's quorum queues so that a running system can be upgraded.
 *
 * A queue is created with `x-quorum-initial-group-size` (`amqp.quorumInitialGroupSize`). RabbitMQ
 * refuses a redeclaration whose arguments differ from the queue's (406 PRECONDITION_FAILED, and
 * the channel dies), and the group size is one of the arguments it compares: a queue made by a
 * earlier hearth without it, or with another size, would refuse every redeclaration. So the
 * argument counts only when a queue is created: an existing queue keeps its declaration.
 *
 * 1. Declare with the group size. Accepted: the queue is new, or was made the same way.
 * 2. Refused over the group size only: declare without it. Accepted: an older queue, whose
 *    other arguments match.
 * 3. Refused over the group size again: the queue was made with another size; it stays as it is.
 *
 * Any other refusal (another argument, another queue type) is thrown, as before. Each try runs on
 * a channel of its own, since a refusal closes the channel it came on.
 */
import type { ChannelModel, Options } from 'amqplib';
import { messageOf } from '../errors.js';

/** The queue argument RabbitMQ reads the number of replicas of a new quorum queue from. */
export const GROUP_SIZE_ARGUMENT = 'x-quorum-initial-group-size';

/** How a declaration went: `declared` (new, or the same arguments), `kept` (an existing queue declared otherwise). */
export type DeclareOutcome = 'declared' | 'kept';

/**
 * Declares the durable quorum queue `queue` with `args` and, when it is created, `groupSize`
 * replicas. See the module doc.
 *
 * @throws amqplib's error when the broker refuses the queue for another reason, or the
 *   connection fails.
 */
export async function declareQuorumQueue(model: ChannelModel, queue: string, args: Record<string, unknown>, groupSize: number): Promise<DeclareOutcome> {
  try {
    await assertOnOwnChannel(model, queue, { durable: true, arguments: { ...args, [GROUP_SIZE_ARGUMENT]: groupSize } });
    return 'declared';
  } catch (err) {
    if (!refusedOverGroupSize(err)) throw err;
  }
  try {
    await assertOnOwnChannel(model, queue, { durable: true, arguments: args });
    return 'declared';
  } catch (err) {
    if (!refusedOverGroupSize(err)) throw err;
    return 'kept';
  }
}

/** True for RabbitMQ's 406 about the initial group size (and no other argument). */
export function refusedOverGroupSize(err: unknown): boolean {
  const text = messageOf(err);
  return /PRECONDITION[_-]FAILED/.test(text) && text.includes(`inequivalent arg '${GROUP_SIZE_ARGUMENT}'`);
}

async function assertOnOwnChannel(model: ChannelModel, queue: string, options: Options.AssertQueue): Promise<void> {
  const ch = await model.createChannel();
  // A refusal closes the channel with an error; the error is the assert's rejection.
  ch.on('error', () => undefined);
  let closed = false;
  ch.once('close', () => {
    closed = true;
  });
  try {
    await ch.assertQueue(queue, options);
  } finally {
    if (!closed) await ch.close().catch(() => undefined);
  }
}
