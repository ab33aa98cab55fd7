import { CoordinatorError } from '../errors.js';

/**
 * One signal that aborts when any of `signals` does, with the first one's reason. Unlike
 * `AbortSignal.any`, it unhooks itself from long-lived sources (a session's signal lives for
 * hours) when `dispose()` is called, so waits leave nothing behind.
 */
export function anySignal(signals: readonly AbortSignal[]): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onAbort = (event: Event): void => {
    dispose();
    controller.abort((event.target as AbortSignal).reason);
  };
  const dispose = (): void => {
    for (const s of signals) s.removeEventListener('abort', onAbort);
  };
  for (const s of signals) {
    if (s.aborted) {
      controller.abort(s.reason);
      dispose();
      break;
    }
    s.addEventListener('abort', onAbort, { once: true });
  }
  return { signal: controller.signal, dispose };
}

/** Rejects with `signal.reason` as soon as `signal` aborts, without waiting for `promise`. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new CoordinatorError('INTERNAL', String(e)));
      },
    );
  });
}
