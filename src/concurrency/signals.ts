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
