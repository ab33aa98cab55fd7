import type { Etcd3 } from 'etcd3';
import type { QueuedKey } from './etcd-lock-ops.js';

/** How a wait for a deletion ended without an abort. */
export type WaitOutcome =
  /** The entry is gone. */
  | 'deleted'
  /** The watch cannot be trusted to have seen everything (disconnect, cancel, failed read): read again. */
  | 'recheck';

/**
 * Waits until etcd deletes one queue entry (a key as created at a create revision). One watch
 * on that one key, DELETE events only; nothing polls.
 *
 * The watch starts at the current revision (no start revision), then the key is read once
 * (a linearizable read): an entry already gone — or whose key exists with another create
 * revision, because its session released and queued again under the same key name — counts as
 * deleted; otherwise its deletion comes after the watch began and the watch delivers it. Why
 * not watch from the revision of the read that found the entry, as etcd's Go Mutex does: when
 * other writes happened since, etcd registers such a watch as "unsynced" and catches it up
 * only every 100 ms, so a hand-off would take up to 100 ms instead of one event. Compaction
 * cannot bite either.
 *
 * The etcd3 package's watcher cannot be trusted across a reconnect: it resumes from the
 * revision after the header of its last "watch created" answer, which on a re-created (and
 * therefore catching-up) watch lies past events etcd has not delivered yet, so a second
 * disconnect at that moment loses them for good. So this never relies on a resumed watch: a
 * disconnect, a second "created", an error or a cancel ends the wait with `recheck`, and the
 * caller reads the queue again and starts a fresh wait.
 *
 * Rejects with `signal.reason` when `signal` aborts. The watch is cancelled however it ends.
 */
export function waitForDelete(client: Etcd3, entry: QueuedKey, signal: AbortSignal, callTimeoutMs: number): Promise<WaitOutcome> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    const watcher = client.watch().key(entry.key).only('delete').watcher();
    let created = false;
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
    const recheck = (): void => settle('recheck');
    // Any DELETE of the key after the watch began ends this entry: the key of a later
    // incarnation (same session, queued again) exists only after this one was deleted.
    watcher.on('delete', () => settle('deleted'));
    watcher.on('error', recheck);
    watcher.on('disconnected', recheck);
    watcher.on('connected', () => {
      if (created) {
        recheck(); // re-created after a reconnect: see above
        return;
      }
      created = true;
      client.kv.range({ key: Buffer.from(entry.key), keys_only: true }, { deadline: Date.now() + callTimeoutMs }).then(
        (res) => {
          if (res.kvs[0]?.create_revision !== entry.createRevision) settle('deleted');
        },
        recheck,
      );
    });
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
