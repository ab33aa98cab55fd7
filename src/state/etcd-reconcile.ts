/**
 * Reconciling an etcd write whose outcome is unknown: the transaction was sent, and then the
 * deadline passed or the connection broke before its answer came. It may have been applied,
 * may be applied later, or never. hearth never re-sends such a write blindly; it re-reads and
 * decides:
 *
 * - the primary key holds exactly the value the write intended (or, for a removal, is gone):
 *   it landed;
 * - the key is unchanged since the write's read: it has not landed (yet). Re-sending the very
 *   same transaction is then safe, because both copies compare the same mod revisions, so at
 *   most one of them can ever apply;
 * - the key changed to something else: look at the first change after the read (etcd keeps
 *   history until compaction). If that was this write, it landed (and was overwritten later);
 *   otherwise another writer won, and the caller re-checks its conditions against the new value;
 * - the re-read fails too, or history is gone: {@link OutcomeUnknownError}.
 */
import type { Etcd3, IKeyValue } from 'etcd3';
import { OutcomeUnknownError } from '../errors.js';
import type { Clock } from '../lifecycle/clock.js';
import { type KeyState, keyStateOf } from './etcd-txn.js';

/** What reconciliation found. */
export type Reconciled = { readonly kind: 'landed'; readonly revision: string } | { readonly kind: 'unchanged' } | { readonly kind: 'lost' };

/** The first change of a key after a revision: its value (null: deleted) and revision. */
interface Change {
  readonly json: string | null;
  readonly mod: string;
}

/** Options of {@link reconcile}. */
export interface ReconcileOptions {
  readonly client: Etcd3;
  readonly clock: Clock;
  readonly key: string;
  /** The primary key as the write's read saw it. */
  readonly before: KeyState | null;
  /** The primary key now (from a successful re-read), and the store revision of that read. */
  readonly now: KeyState | null;
  readonly nowRevision: string;
  /** The value the write puts on the primary key; null when it deletes it. */
  readonly intended: string | null;
  /** How long to wait for history. */
  readonly timeoutMs: number;
  readonly cause: unknown;
}

/**
 * Decides what became of a write of unknown outcome (see the module doc).
 *
 * @throws OutcomeUnknownError when history cannot tell.
 */
export async function reconcile(o: ReconcileOptions): Promise<Reconciled> {
  if (o.intended !== null && o.now?.json === o.intended) return { kind: 'landed', revision: o.now.mod };
  if (o.intended === null && o.now === null && o.before !== null) return { kind: 'landed', revision: o.nowRevision };
  if (o.now?.mod === o.before?.mod) return { kind: 'unchanged' };
  const first = await firstChange(o);
  if (first === undefined) {
    throw new OutcomeUnknownError(
      o.key,
      `the outcome of a write to ${o.key} is unknown: its answer was lost, the key changed since, and etcd's history no longer tells whether the write was the change; re-read before acting`,
      { cause: o.cause },
    );
  }
  return first.json === o.intended ? { kind: 'landed', revision: first.mod } : { kind: 'lost' };
}

async function firstChange(o: ReconcileOptions): Promise<Change | undefined> {
  const { before, now } = o;
  if (before === null && now !== null) {
    // The key was created since: read it as it was created.
    const res = await o.client.kv.range({ key: Buffer.from(o.key), revision: now.create }).catch(() => undefined);
    const kv = keyStateOf(res?.kvs[0]);
    return kv ? { json: kv.json, mod: kv.mod } : undefined;
  }
  if (before !== null && now !== null && BigInt(now.version) === BigInt(before.version) + 1n && now.create === before.create) {
    return { json: now.json, mod: now.mod };
  }
  if (before === null) return undefined;
  return watchFirstEvent(o, (BigInt(before.mod) + 1n).toString());
}

/** Replays the key's history from `startRevision` and returns its first event. */
async function watchFirstEvent(o: ReconcileOptions, startRevision: string): Promise<Change | undefined> {
  const watcher = o.client.watch().key(o.key).startRevision(startRevision).watcher();
  const stop = new AbortController();
  try {
    return await new Promise<Change | undefined>((resolve) => {
      watcher.once('put', (kv: IKeyValue) => resolve({ json: kv.value.toString(), mod: kv.mod_revision }));
      watcher.once('delete', (kv: IKeyValue) => resolve({ json: null, mod: kv.mod_revision }));
      watcher.once('error', () => resolve(undefined));
      o.clock.sleep(o.timeoutMs, stop.signal).then(
        () => resolve(undefined),
        () => undefined,
      );
    });
  } finally {
    stop.abort();
    await watcher.cancel().catch(() => undefined);
  }
}
