/**
 * Listings on etcd, served page by page from index keys (as the Kubernetes API server pages etcd:
 * a range read bounded by `limit`, continued from a key). Every order of state/list-plan.ts has
 * index entries `index/<type>/<order>/<scope>/<sortable>` whose value is the resource's id; the
 * store writes and deletes them in the same transaction as the record (see {@link indexEntries}),
 * so an entry and its record never disagree. A page reads `limit + 1` entries from the marker's
 * position, then the records they name, all at the index read's revision (one snapshot of the
 * store), in transactions of at most {@link RECORDS_PER_TXN} reads.
 */
import type { Etcd3, IKeyValue, IRequestOp, IResponseOp } from 'etcd3';
import { type KeyLayout, prefixEnd } from '../etcd/keys.js';
import {
  compareInOrder,
  INDEX_ORDERS,
  type IndexOrder,
  type ListPlan,
  markerNotFound,
  matchesPlan,
  nameKey,
  orderSegment,
  scopeSegment,
  scopesOf,
  sortableKey,
} from './list-plan.js';
import { TimeWindows, type WindowHint } from './etcd-time-windows.js';
import type { ResourceRecord, ResourceType } from './records.js';
import type { Page } from './state-store.js';

/** Range reads per transaction when fetching a page's records (etcd's default `--max-txn-ops` is 128). */
export const RECORDS_PER_TXN = 100;

/** Range reads one page may take: empty windows of creation time, and entries that must be skipped. */
const MAX_ROUNDS = 24;

/** What {@link EtcdListing} needs from the store. */
export interface EtcdListingDeps {
  readonly client: Etcd3;
  readonly keys: KeyLayout;
  /** Decodes a stored record (the record codec), with `revision` = the key's mod revision. */
  readonly decode: (kv: IKeyValue) => ResourceRecord;
  /** Runs one etcd call, translating its errors; `kind` labels the bytes read. */
  readonly call: <T>(what: string, fn: () => Promise<T>) => Promise<T>;
  /** Counts bytes read from etcd, by request kind. */
  readonly countRead: (kind: string, bytes: number) => void;
  /** Epoch ms: where a newest-first listing starts looking. */
  readonly now: () => number;
}

/** Bytes of the kvs of a response (keys and values): what a read moved. */
export function bytesOf(kvs: readonly IKeyValue[]): number {
  let n = 0;
  for (const kv of kvs) n += kv.key.length + kv.value.length;
  return n;
}

/** Bytes of every range response of a txn. */
export function bytesOfResponses(responses: readonly IResponseOp[]): number {
  let n = 0;
  for (const r of responses) if (r.response_range) n += bytesOf(r.response_range.kvs);
  return n;
}

/** The index entries (key → id) of a record; the store writes them with it. */
export function indexEntries(keys: KeyLayout, type: ResourceType, record: ResourceRecord | null): Map<string, string> {
  const entries = new Map<string, string>();
  if (record === null) return entries;
  for (const order of INDEX_ORDERS) {
    const sortable = sortableKey(record, order);
    for (const scope of scopesOf(record, order.byStatus)) {
      entries.set(`${keys.listIndex(type, orderSegment(order), scopeSegment(scope))}${sortable}`, record.id);
    }
  }
  return entries;
}

/**
 * The index operations of a write from `before` to `after` (null: absent): entries that only
 * `before` had are deleted, entries that only `after` has are put. A record unchanged in its
 * indexed fields costs nothing.
 */
export function indexOps(keys: KeyLayout, type: ResourceType, before: ResourceRecord | null, after: ResourceRecord | null): IRequestOp[] {
  const old = indexEntries(keys, type, before);
  const now = indexEntries(keys, type, after);
  const ops: IRequestOp[] = [];
  for (const key of old.keys()) if (!now.has(key)) ops.push({ request_delete_range: { key: Buffer.from(key) } });
  for (const [key, id] of now) if (!old.has(key)) ops.push({ request_put: { key: Buffer.from(key), value: Buffer.from(id) } });
  return ops;
}

/** Bounded ranges over a scope of an index (TimeWindows). */
interface ReadWindows {
  endFor(start: Buffer, end: Buffer): Buffer;
  observed(count: number, wanted: number, read: { readonly first: Buffer | undefined; readonly last: Buffer | undefined }, fromScopeStart: boolean): void;
  remember(exhausted: boolean): void;
}

/** Reads pages of one type's records from its index keys. */
export class EtcdListing {
  /** What served each scope's last page (bounded: see TimeWindows). */
  private readonly timeHints = new Map<string, WindowHint>();

  constructor(private readonly deps: EtcdListingDeps) {}

  /**
   * One page of the plan. The marker must name an existing record visible in the plan's project;
   * the page continues after its position in the order (as Cinder's keyset pagination does), so
   * a marker whose status changed since still continues the listing.
   *
   * @throws InvalidInputError when the marker does not exist.
   */
  async page<R extends ResourceRecord>(type: ResourceType, plan: ListPlan): Promise<Page<R>> {
    const marker = plan.marker === undefined ? undefined : await this.marker(type, plan, plan.marker);
    if (plan.volumeId !== undefined) return this.children<R>(type, plan, marker);
    const base = this.deps.keys.listIndex(type, orderSegment(plan.order), scopeSegment(plan));
    const prefix = plan.name === undefined ? base : `${base}${nameKey(plan.name, plan.order.dir)}`;
    const end = prefixEnd(prefix);
    let start: Buffer = Buffer.from(prefix);
    if (marker !== undefined) {
      const after = Buffer.from(`${base}${sortableKey(marker, plan.order)}\u0000`);
      if (Buffer.compare(after, start) > 0) start = after;
    }
    const items: R[] = [];
    let total: number | undefined;
    if (plan.withCount) {
      // A count covers the whole scope: etcd walks all of it (Cinder's with_count is opt-in).
      const counted = await this.deps.call(`counting ${type}s`, () => this.deps.client.kv.range({ key: Buffer.from(prefix), range_end: end, count_only: true }));
      total = Number(counted.count);
    }
    // A range to the end of a large scope would have etcd walk all of it: created_at orders read
    // in windows of creation time. Name orders range to the scope's end (docs/state.md); a name
    // filter's range holds only that name's entries.
    const windows: ReadWindows | undefined =
      plan.name === undefined && plan.order.by === 'created_at' ? new TimeWindows(base, plan.order.dir, this.timeHints, this.deps.now()) : undefined;
    // Whether index entries may follow what was read (rounds can end before the range does).
    let unread = false;
    const scopeStart = Buffer.from(base);
    for (let round = 0; round < MAX_ROUNDS && Buffer.compare(start, end) < 0; round++) {
      const wanted = plan.limit + 1 - items.length;
      const fromScopeStart = start.equals(scopeStart);
      const rangeEnd = windows ? windows.endFor(start, end) : end;
      const res = await this.deps.call(`listing ${type}s`, () => this.deps.client.kv.range({ key: start, range_end: rangeEnd, limit: String(wanted) }));
      const entries = res.kvs;
      this.deps.countRead('list', bytesOf(entries));
      const records = await this.records(type, entries.map((kv) => kv.value.toString()), res.header.revision);
      for (const [i, kv] of entries.entries()) {
        const record = records[i];
        // An entry is trusted only when its record still sorts there (an entry a writer without
        // index upkeep left behind — a release before the indexes — is skipped).
        if (record && matchesPlan(record, plan) && `${base}${sortableKey(record, plan.order)}` === kv.key.toString()) items.push(record as R);
      }
      const last = entries[entries.length - 1];
      const windowDone = !res.more;
      windows?.observed(Number(res.count), wanted, { first: entries[0]?.key, last: entries[entries.length - 1]?.key }, fromScopeStart);
      if (items.length > plan.limit) break;
      if (!windowDone && last) {
        start = Buffer.concat([last.key, Buffer.from([0])]);
        unread = true;
      } else if (Buffer.compare(rangeEnd, end) < 0) {
        start = rangeEnd;
        unread = true;
      } else {
        unread = false;
        break;
      }
    }
    windows?.remember(!unread);
    const page = items.slice(0, plan.limit);
    return { items: page, more: items.length > plan.limit || (unread && page.length > 0), ...(total === undefined ? {} : { total }) };
  }

  /** The marker's record: it must exist and be visible in the plan's project. */
  private async marker(type: ResourceType, plan: ListPlan, id: string): Promise<ResourceRecord> {
    const [record] = await this.records(type, [id]);
    if (!record || (plan.projectId !== undefined && record.project_id !== plan.projectId)) throw markerNotFound(id);
    return record;
  }

  /** Snapshots of one volume: bounded by that volume's snapshots (its index), ordered here. */
  private async children<R extends ResourceRecord>(type: ResourceType, plan: ListPlan, marker: ResourceRecord | undefined): Promise<Page<R>> {
    if (type !== 'snapshot' || plan.volumeId === undefined) return { items: [], more: false, ...(plan.withCount ? { total: 0 } : {}) };
    const prefix = this.deps.keys.volumeSnapshots(plan.volumeId);
    const res = await this.deps.call(`listing the snapshots of ${plan.volumeId}`, () =>
      this.deps.client.kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(prefix), keys_only: true }),
    );
    this.deps.countRead('list', bytesOf(res.kvs));
    const ids = res.kvs.map((kv) => kv.key.toString().slice(prefix.length));
    const matching = (await this.records(type, ids, res.header.revision)).filter((r): r is ResourceRecord => r !== undefined && matchesPlan(r, plan));
    return pageInMemory(matching as R[], plan.order, plan.limit, marker, plan.withCount);
  }

  /** The records of `ids` (undefined where absent), read at `revision` when given, in bounded txns. */
  private async records(type: ResourceType, ids: readonly string[], revision?: string): Promise<(ResourceRecord | undefined)[]> {
    const out: (ResourceRecord | undefined)[] = [];
    for (let i = 0; i < ids.length; i += RECORDS_PER_TXN) {
      const batch = ids.slice(i, i + RECORDS_PER_TXN);
      const ops: IRequestOp[] = batch.map((id) => ({ request_range: { key: Buffer.from(this.deps.keys.resource(type, id)), ...(revision === undefined ? {} : { revision }) } }));
      const res = await this.deps.call(`reading ${type}s`, () => this.deps.client.kv.txn({ compare: [], success: ops, failure: [] }));
      this.deps.countRead('list', bytesOfResponses(res.responses));
      for (const r of res.responses) {
        const kv = r.response_range.kvs[0];
        out.push(kv ? this.deps.decode(kv) : undefined);
      }
    }
    return out;
  }
}

/** A page of records already read (a bounded set): ordered, continued after the marker, cut. */
export function pageInMemory<R extends ResourceRecord>(records: readonly R[], order: IndexOrder, limit: number, marker: ResourceRecord | undefined, withCount: boolean): Page<R> {
  const sorted = [...records].sort((a, b) => compareInOrder(a, b, order));
  const after = marker === undefined ? sorted : sorted.filter((r) => compareInOrder(r, marker, order) > 0);
  return { items: after.slice(0, limit), more: after.length > limit, ...(withCount ? { total: sorted.length } : {}) };
}
