import type { Etcd3 } from 'etcd3';

/** Why a wait for a deletion ended without an abort. */
export type WaitOutcome =
  /** The key is gone. */
  | 'deleted'
  /** The watch cannot be trusted to have seen everything (reconnect, cancel, failed read): read again. */
  | 'recheck';

/**
 * Waits until etcd deletes `key` as created at `createRevision`. Only DELETE events of that one
 * key are delivered; nothing polls.
 *
 * The watch starts at the current revision (no start revision), then the key is read once: if
 * it is already gone — or exists with another create revision, because its session released
 * and queued again under the same key name — the wait ends; otherwise its deletion comes after
 * the watch began and the watch sees it. Why not watch from the revision of the read that found the key, as etcd's Go
 * Mutex does: when other writes happened since, etcd registers such a watch as "unsynced" and
 * catches it up only every 100 ms — a hand-off would then take up to 100 ms instead of one
 * event. Compaction can then not bite either.
 *
 * The etcd3 package's watcher has known gaps (its resume revision after a reconnect comes from
 * the creation answer, not the last event), so any reconnect, error or cancel ends the wait
 * with `recheck` and the caller reads the queue again. Rejects with `signal.reason` when
 * `signal` aborts.
 */
export function waitForDelete(
  client: Etcd3,
  key: string,
  createRevision: string,
  signal: AbortSignal,
  callTimeoutMs: number,
): Promise<WaitOutcome> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    const watcher = client.watch().key(key).only('delete').watcher();
    let created = false;
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
    watcher.on('error', () => settle('recheck'));
    watcher.on('disconnected', () => {
      disconnected = true;
    });
    watcher.on('connected', () => {
      if (created || disconnected) {
        settle('recheck');
        return;
      }
      created = true;
      client.kv.range({ key: Buffer.from(key), keys_only: true }, { deadline: Date.now() + callTimeoutMs }).then(
        (res) => {
          if (res.kvs[0]?.create_revision !== createRevision) settle('deleted');
        },
        () => settle('recheck'),
      );
    });
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
