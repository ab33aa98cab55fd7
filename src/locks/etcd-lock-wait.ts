import type { Etcd3 } from 'etcd3';

/** Why a wait for a deletion ended without an abort. */
export type WaitOutcome =
  /** The key was deleted. */
  | 'deleted'
  /** The watch cannot be trusted to have seen everything (reconnect, compaction, cancel): read again. */
  | 'recheck';

/**
 * Waits until etcd deletes `key`, watching from `fromRevision` (the revision just after the
 * read that saw the key, so a deletion in between is not missed). Only DELETE events are
 * delivered; nothing polls.
 *
 * The etcd3 package's watcher has known gaps (its resume revision is taken from the creation
 * answer, not from the last event; a compacted start revision cancels the watch with an
 * `error`), so any reconnect, error or cancel ends the wait with `recheck` and the caller
 * reads the queue again. Rejects with `signal.reason` when `signal` aborts.
 */
export function waitForDelete(client: Etcd3, key: string, fromRevision: string, signal: AbortSignal): Promise<WaitOutcome> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    const watcher = client.watch().key(key).startRevision(fromRevision).only('delete').watcher();
    let disconnected = false;
    let settled = false;
    const settle = (outcome: WaitOutcome | undefined): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      void watcher.cancel().catch(() => undefined);
      if (outcome === undefined) reject(signal.reason as Error);
      else resolve(outcome);
    };
    const onAbort = (): void => settle(undefined);
    watcher.on('delete', () => settle('deleted'));
    // Compaction of fromRevision, or a server-side cancel: the caller re-reads.
    watcher.on('error', () => settle('recheck'));
    watcher.on('disconnected', () => {
      disconnected = true;
    });
    watcher.on('connected', () => {
      if (disconnected) settle('recheck');
    });
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
