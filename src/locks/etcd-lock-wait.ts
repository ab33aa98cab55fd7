import type { Etcd3, Watcher } from 'etcd3';
import type { QueuedKey } from './etcd-lock-ops.js';

/** Why a wait for a deletion ended without an abort. */
export type WaitOutcome =
  /** The entry is gone. */
  | 'deleted'
  /** The watch cannot be trusted to have seen everything (reconnect, cancel, failed read): read again. */
  | 'recheck';

/** One watched queue entry. */
interface Watched {
  readonly entry: QueuedKey;
  readonly watcher: Watcher;
  /** `pending` until its watch is created and the key was read once. */
  state: 'pending' | 'live' | 'deleted' | 'unreliable';
}

/**
 * Watches queue entries (a key as created at a create revision) for their deletion, for one
 * waiter. Only DELETE events of those keys are delivered; nothing polls. Watches persist across
 * {@link next} calls, so a waiter that re-reads the queue and keeps its predecessor keeps its
 * watch too (no new watch, no new read), and a deletion that happens meanwhile is not lost.
 *
 * A watch starts at the current revision (no start revision), then its key is read once: an
 * entry already gone — or whose key exists with another create revision, because its session
 * released and queued again under the same key name — counts as deleted; otherwise its
 * deletion comes after the watch began and the watch sees it. Why not watch from the revision
 * of the read that found the entry, as etcd's Go Mutex does: when other writes happened since,
 * etcd registers such a watch as "unsynced" and catches it up only every 100 ms, so a hand-off
 * would take up to 100 ms instead of one event. Compaction cannot bite either.
 *
 * The etcd3 package's watcher has known gaps (its resume revision after a reconnect comes from
 * the creation answer, not the last event), so a reconnect, error or cancel makes that entry
 * `unreliable`: the wait ends with `recheck`, the caller reads the queue again, and the entry
 * gets a fresh watch.
 */
export class DeletionWatch {
  private readonly watched = new Map<string, Watched>();
  private wake: (() => void) | undefined;

  constructor(
    private readonly client: Etcd3,
    private readonly callTimeoutMs: number,
  ) {}

  /**
   * Watches exactly `entries` (keeping watches it has) and resolves with the first of them
   * that is deleted, in `entries` order, or `recheck`. Rejects with `signal.reason` on abort.
   */
  async next(entries: readonly QueuedKey[], signal: AbortSignal): Promise<{ outcome: WaitOutcome; entry: QueuedKey | undefined }> {
    const wanted = new Set(entries.map(id));
    for (const [key, w] of this.watched) if (!wanted.has(key) || w.state === 'unreliable') this.drop(key);
    const fresh = entries.filter((e) => !this.watched.has(id(e))).map((e) => this.watch(e));
    if (fresh.length > 0) this.readOnceCreated(fresh);
    for (;;) {
      if (signal.aborted) throw signal.reason as Error;
      const current = entries.map((e) => this.watched.get(id(e)));
      const deleted = current.find((w) => w?.state === 'deleted');
      if (deleted) return { outcome: 'deleted', entry: deleted.entry };
      if (current.some((w) => w === undefined || w.state === 'unreliable')) return { outcome: 'recheck', entry: undefined };
      await new Promise<void>((resolve) => {
        const onAbort = (): void => resolve();
        this.wake = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        signal.addEventListener('abort', onAbort, { once: true });
      });
      this.wake = undefined;
    }
  }

  /** Cancels every watch. */
  close(): void {
    for (const key of [...this.watched.keys()]) this.drop(key);
  }

  private watch(entry: QueuedKey): Watched {
    const watcher = this.client.watch().key(entry.key).only('delete').watcher();
    const w: Watched = { entry, watcher, state: 'pending' };
    let connected = false;
    const mark = (state: Watched['state']): void => {
      if (w.state === 'deleted' || w.state === 'unreliable') return;
      w.state = state;
      this.wake?.();
    };
    watcher.on('delete', () => mark('deleted'));
    watcher.on('error', () => mark('unreliable'));
    watcher.on('disconnected', () => mark('unreliable'));
    watcher.on('connected', () => {
      if (connected) mark('unreliable');
      connected = true;
    });
    this.watched.set(id(entry), w);
    return w;
  }

  /** Once all `fresh` watches are created, reads their keys in one transaction. */
  private readOnceCreated(fresh: readonly Watched[]): void {
    let waiting = fresh.length;
    const read = (): void => {
      const live = fresh.filter((w) => w.state === 'pending');
      if (live.length === 0) return;
      this.client.kv
        .txn(
          { compare: [], success: live.map((w) => ({ request_range: { key: Buffer.from(w.entry.key), keys_only: true } })), failure: [] },
          { deadline: Date.now() + this.callTimeoutMs },
        )
        .then(
          (res) =>
            live.forEach((w, i) => {
              if (w.state !== 'pending') return;
              w.state = res.responses[i]?.response_range.kvs[0]?.create_revision === w.entry.createRevision ? 'live' : 'deleted';
              this.wake?.();
            }),
          () =>
            live.forEach((w) => {
              if (w.state === 'pending') w.state = 'unreliable';
              this.wake?.();
            }),
        );
    };
    for (const w of fresh) w.watcher.once('connected', () => --waiting === 0 && read());
  }

  private drop(key: string): void {
    const w = this.watched.get(key);
    if (!w) return;
    this.watched.delete(key);
    void w.watcher.cancel().catch(() => undefined);
  }
}

/** Waits until etcd deletes `key` as created at `createRevision` (one-off {@link DeletionWatch}). */
export async function waitForDelete(
  client: Etcd3,
  key: string,
  createRevision: string,
  signal: AbortSignal,
  callTimeoutMs: number,
): Promise<WaitOutcome> {
  const watch = new DeletionWatch(client, callTimeoutMs);
  try {
    return (await watch.next([{ key, createRevision }], signal)).outcome;
  } finally {
    watch.close();
  }
}

function id(entry: QueuedKey): string {
  return `${entry.createRevision}:${entry.key}`;
}
