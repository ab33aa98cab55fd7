/**
 * Bounding a wait on work that does not take a signal itself: the wait ends, the work goes on
 * and its outcome is dropped. Timers are cleared as soon as the race is decided, so a settled
 * deadline never keeps the process alive.
 */
import { AbortedError } from '../errors.js';

/**
 * Rejects when `work` takes longer than `ms`, or at once when `signal` aborts (the work itself
 * goes on; its outcome is ignored).
 */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string, signal?: AbortSignal): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
    if (!signal) return;
    onAbort = () => reject(new Error(`${what} was cut short`, { cause: signal.reason }));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([work, timeout]).finally(() => {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  });
}

/**
 * Waits for `work` unless `signal` aborts first: then rejects with an {@link AbortedError}
 * naming `what`, and the work's own outcome is dropped (whoever started it tears it down).
 */
export function untilAborted<T>(work: Promise<T>, what: string, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(new AbortedError(what, { cause: signal.reason }));
  }
  work.catch(() => undefined);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new AbortedError(what, { cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
