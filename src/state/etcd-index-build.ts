/**
 * The startup backfill of the etcd listing indexes: records written before the indexes existed
 * (hearth before 0.3) have no index entries, so a listing would not show them. Once per cluster
 * and index version, a process walks every record page by page and puts its entries, each
 * record's in a nested transaction guarded by the record's mod revision (a record changed since it
 * was read is read again and indexed as it is now: a write by this release keeps only the entries
 * its change moves, so a record from before the indexes still needs the others) — then marks the
 * type built
 * (`index/built/<type>`). Idempotent: two processes building at once put the same entries.
 */
import type { Etcd3, IKeyValue, IRequestOp } from 'etcd3';
import { type KeyLayout, prefixEnd } from '../etcd/keys.js';
import { bytesOf, indexEntries } from './etcd-listing.js';
import { modIs } from './etcd-txn.js';
import type { ResourceRecord, ResourceType } from './records.js';

/** The version of the listing indexes; a new layout bumps it and is built again. */
export const LIST_INDEX_VERSION = '1';

/** Records read (and indexed, one nested txn each) per transaction. */
const RECORDS_PER_BATCH = 100;

/** What the build needs from the store. */
export interface IndexBuildDeps {
  readonly client: Etcd3;
  readonly keys: KeyLayout;
  readonly decode: (kv: IKeyValue) => ResourceRecord;
  readonly countRead: (kind: string, bytes: number) => void;
}

/**
 * Builds the listing indexes of every type not yet marked built at {@link LIST_INDEX_VERSION};
 * resolves with how many records it indexed (0 when every type was built already).
 *
 * @throws whatever the etcd client throws (the caller logs it; the next start builds again).
 */
export async function buildListIndexes(deps: IndexBuildDeps, signal?: AbortSignal): Promise<number> {
  let indexed = 0;
  for (const type of ['volume', 'snapshot'] as const) {
    const marker = deps.keys.listIndexBuilt(type);
    const built = await deps.client.kv.range({ key: Buffer.from(marker) });
    if (built.kvs[0]?.value.toString() === LIST_INDEX_VERSION) continue;
    indexed += await buildType(deps, type, signal);
    await deps.client.kv.put({ key: Buffer.from(marker), value: Buffer.from(LIST_INDEX_VERSION) });
  }
  return indexed;
}

async function buildType(deps: IndexBuildDeps, type: ResourceType, signal: AbortSignal | undefined): Promise<number> {
  const prefix = deps.keys.resources(type);
  const end = prefixEnd(prefix);
  let start = Buffer.from(prefix);
  let indexed = 0;
  // Bounded by the number of records: every round moves `start` past the last key read.
  for (;;) {
    signal?.throwIfAborted();
    const page = await deps.client.kv.range({ key: start, range_end: end, limit: String(RECORDS_PER_BATCH) });
    deps.countRead('index_build', bytesOf(page.kvs));
    indexed += await indexRecords(deps, type, page.kvs);
    const last = page.kvs[page.kvs.length - 1];
    if (!page.more || !last) return indexed;
    start = Buffer.concat([last.key, Buffer.from([0])]);
  }
}

/** Tries to index a record that keeps changing under the build; beyond it, the build fails and runs again at the next start. */
const MAX_TRIES = 5;

/** Puts the index entries of `kvs`, each guarded by its mod revision; re-reads and retries those that changed. */
async function indexRecords(deps: IndexBuildDeps, type: ResourceType, kvs: readonly IKeyValue[]): Promise<number> {
  let pending = kvs;
  let indexed = 0;
  for (let attempt = 1; pending.length > 0; attempt++) {
    if (attempt > MAX_TRIES) throw new Error(`indexing ${type}s: ${pending.length} records kept changing while being indexed`);
    const ops: IRequestOp[] = [];
    const sent: IKeyValue[] = [];
    for (const kv of pending) {
      let record: ResourceRecord;
      try {
        record = deps.decode(kv);
      } catch {
        continue; // a record this build cannot read is indexed by the release that can
      }
      const puts: IRequestOp[] = [...indexEntries(deps.keys, type, record)].map(([key, id]) => ({ request_put: { key: Buffer.from(key), value: Buffer.from(id) } }));
      ops.push({ request_txn: { compare: [modIs(kv.key.toString(), kv.mod_revision)], success: puts, failure: [{ request_range: { key: kv.key } }] } });
      sent.push(kv);
    }
    if (ops.length === 0) return indexed;
    const res = await deps.client.kv.txn({ compare: [], success: ops, failure: [] });
    const changed: IKeyValue[] = [];
    for (const [i, r] of res.responses.entries()) {
      const nested = r.response_txn;
      if (nested?.succeeded) {
        indexed++;
        continue;
      }
      // Changed since it was read: index it as it is now (deleted since: nothing to index).
      const now = nested?.responses[0]?.response_range.kvs[0];
      if (now && sent[i]) changed.push(now);
    }
    pending = changed;
  }
  return indexed;
}
