/**
 * The periodic loops of long-lived parts (the backend monitor, the incarnation-record collector,
 * the RabbitMQ replica poll) share one shape: a round, then the interval, until closed.
 */
import type { Clock } from './clock.js';

/**
 * Runs `round` every `intervalMs` on `clock` until `signal` aborts; the first round runs after
 * one interval (`immediately`: at once). A round that throws is handed to `onError` and the loop
 * goes on. Resolves once the signal aborted (a round in flight finishes first); never rejects.
 */
export async function everyInterval(
  clock: Clock,
  intervalMs: number,
  signal: AbortSignal,
  round: () => Promise<unknown>,
  options: { readonly immediately?: boolean; readonly onError?: (err: unknown) => void } = {},
): Promise<void> {
  let wait = options.immediately !== true;
  while (!signal.aborted) {
    if (wait) {
      try {
        await clock.sleep(intervalMs, signal);
      } catch {
        return;
      }
    }
    wait = true;
    try {
      await round();
    } catch (err) {
      options.onError?.(err);
    }
  }
}
