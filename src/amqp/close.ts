/**
 * Closing an amqplib connection without ever hanging a stopping process: a polite close
 * bounded in time, then the socket destroyed.
 */
import type { ChannelModel } from 'amqplib';
import { withDeadline } from '../lifecycle/deadline.js';

/** Connections that emitted 'close': there is nothing left to close on them. */
const closedModels = new WeakSet<ChannelModel>();

/** Records that `model` emitted 'close' (and drops its socket): nothing is left to close on it. */
export function markClosed(model: ChannelModel): void {
  closedModels.add(model);
  destroySocket(model);
}

/**
 * Closes a connection politely, but never waits more than `ms` for a broker that does not
 * answer, nor past `signal` (the connection's own `close()`): then the socket is destroyed (the
 * broker returns the unacknowledged messages). A connection that is already closed, or closes
 * by itself meanwhile, is done at once: amqplib never answers a close asked for while it was
 * tearing the connection down (a channel's 'close' fires first, e.g. after SIGSTOP/SIGCONT),
 * and the deadline's timer would otherwise hold a stopping process for `ms`.
 */
export async function closeModel(model: ChannelModel, ms: number, signal?: AbortSignal): Promise<void> {
  if (closedModels.has(model)) return;
  let onClose: (() => void) | undefined;
  const ended = new Promise<void>((resolve) => model.once('close', (onClose = resolve)));
  try {
    await withDeadline(Promise.race([model.close(), ended]), ms, 'closing the connection', signal);
  } catch {
    // The broker did not answer in time, or the close was cut short: drop the socket below.
  } finally {
    if (onClose) model.off('close', onClose);
    destroySocket(model);
  }
}

/**
 * Destroys a connection's socket. amqplib only half-closes it (`end()`) and waits for the
 * broker's FIN; after a SIGSTOP the broker may have given the connection up without ever sending
 * one, and the half-open socket would keep a stopping process alive indefinitely. Nothing is
 * lost: after close-ok, or after amqplib declared the connection closed, no frame is read or
 * written any more. The socket is destroyed *with an error*, so that amqplib, if it still thinks
 * the connection open (a close cut short), tears it down too — a bare `destroy()` emits no
 * 'error' or 'end', and its heartbeat timers would run on until two heartbeats were missed.
 */
function destroySocket(model: ChannelModel): void {
  const stream = (model.connection as unknown as { stream?: { destroyed?: boolean; destroy(err?: Error): void } }).stream;
  if (stream && !stream.destroyed) stream.destroy(new Error('connection dropped by hearth'));
}
