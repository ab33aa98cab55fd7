import type { Etcd3, IKeyValue } from 'etcd3';
import { ClosedError } from '../errors.js';
import { fromEtcdError } from '../etcd/errors.js';
import { type KeyLayout, prefixEnd } from '../etcd/keys.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Logger } from '../observability/logger.js';
import { decideOpUpdate, decideResource, type DecideDeps } from './etcd-decide.js';
import { buildListIndexes } from './etcd-index-build.js';
import { bytesOf, EtcdListing } from './etcd-listing.js';
import { SeenCache } from './etcd-seen-cache.js';
import { decodeStoredOp, stampBatches } from './etcd-stored-op.js';
import { keyStateOf } from './etcd-txn.js';
import { type Seen, type WriteKeys, writeKeysOf } from './etcd-write-keys.js';
import { EtcdWriter } from './etcd-writer.js';
import { planList } from './list-plan.js';
import { matchesOpFilter, sortOps } from './listing.js';
import type { StateMetrics } from './metrics.js';
import { needsChildren, needsHolds, planCreate, planRemove, planTransition } from './plan.js';
import type { OpRecord, RecordOf, ResourceRecord, ResourceRef, ResourceType } from './records.js';
import { RecordVersions } from './record-versions.js';
import type {
  CreateRequest,
  ListQuery,
  OpFilter,
  OpUpdateRequest,
  OpUpdateResult,
  Page,
  RemoveRequest,
  StateStore,
  StoredOp,
  TransitionRequest,
  TransitionResult,
} from './state-store.js';

/** Options of {@link EtcdStateStore}. */
export interface EtcdStateStoreOptions {
  /** From `createEtcdClient` (deadlines, no blind retries); the store does not close it. */
  readonly client: Etcd3;
  readonly keys: KeyLayout;
  readonly clock: Clock;
  readonly metrics: StateMetrics;
  readonly logger: Logger;
  /** Transactions one write may send (lost races and reconciled resends). */
  readonly maxAttempts?: number;
  /** Re-reads tried when reconciling a write of unknown outcome. */
  readonly reconcileReads?: number;
  /** How long reconciliation waits for etcd's history. */
  readonly historyTimeoutMs?: number;
  /** Keys whose last seen state is remembered (optimistic first attempts). */
  readonly cacheSize?: number;
  /**
   * The record codec: the schema records are written at and the ones read (docs/upgrades.md).
   * Default: this build's lowest schema, which every release it may run beside reads.
   */
  readonly versions?: RecordVersions;
}

/**
 * The cluster's StateStore on etcd. A write reads the record and its op (one read-only txn, or
 * the last state this store saw of them), decides with the same pure planner as SQLite, then
 * commits one txn: `if mod_revision(resource) == seen and mod_revision(op) == seen [and every
 * fence guard] then put/delete … else read them all back`. A lost race costs no extra read: the
 * else branch returns the new values, and the conditions are checked again (bounded). The write
 * loop is etcd-writer.ts, the txn each plan becomes etcd-decide.ts, and listing etcd-listing.ts.
 *
 * Failure semantics: every call has the client's deadline. Reads fail with a retryable
 * `BACKEND_UNAVAILABLE`. A write that fails before etcd could have applied it fails the same
 * way; a write whose answer was lost (deadline, connection reset, partition) is never re-sent
 * blindly: it is reconciled by re-reading (see `etcd-reconcile.ts`) and then either returns the
 * outcome it actually had, or throws a retryable `OUTCOME_UNKNOWN` when etcd stays unreachable —
 * the write may still land, so the caller must re-read before deciding again. A fence guard that
 * fails (the writer's alive key or lock key is gone or someone else's) throws `FENCED`
 * atomically: nothing was written. During a partition a worker's lease may expire in etcd while
 * it still runs; its fenced writes then fail, because the guard compares are evaluated by etcd
 * at commit, not by the worker.
 */
export class EtcdStateStore implements StateStore {
  readonly backend = 'etcd' as const;
  private readonly client: Etcd3;
  private readonly keys: KeyLayout;
  private readonly cache: SeenCache;
  private readonly versions: RecordVersions;
  private readonly listing: EtcdListing;
  private readonly writer: EtcdWriter;
  /** What the decisions (etcd-decide.ts) need: the key layout, record codec and seen cache. */
  private readonly decideDeps: DecideDeps;
  private closed = false;

  constructor(private readonly options: EtcdStateStoreOptions) {
    this.client = options.client;
    this.keys = options.keys;
    this.versions = options.versions ?? new RecordVersions();
    this.cache = new SeenCache(options.cacheSize, (json, key) => this.versions.decode<object>(json, key));
    this.decideDeps = { keys: this.keys, versions: this.versions, cache: this.cache };
    this.listing = new EtcdListing({
      client: this.client,
      keys: this.keys,
      decode: (kv) => this.decodeKv<ResourceRecord>(kv),
      call: (what, fn) => this.call(what, fn),
      countRead: (kind, bytes) => this.countRead(kind, bytes),
      now: () => this.options.clock.now(),
    });
    this.writer = new EtcdWriter({
      client: this.client,
      cache: this.cache,
      clock: options.clock,
      metrics: options.metrics,
      logger: options.logger,
      maxAttempts: options.maxAttempts ?? 8,
      reconcileReads: options.reconcileReads ?? 3,
      historyTimeoutMs: options.historyTimeoutMs ?? 3_000,
      call: (what, fn) => this.call(what, fn),
      countRead: (kind, bytes) => this.countRead(kind, bytes),
      closed: () => this.closed,
    });
  }

  create<T extends ResourceType>(type: T, request: CreateRequest<RecordOf<T>>): Promise<TransitionResult<RecordOf<T>>> {
    const ref = { type, id: request.record.id };
    const parentRef = request.parent?.ref;
    const keys = { ...this.keysOf(ref, 'res'), ...(parentRef ? { parent: this.keys.resource(parentRef.type, parentRef.id) } : {}) };
    // A new id is absent: the first attempt assumes so and needs no read unless a parent is unknown.
    const assumed: Seen | undefined = keys.parent === undefined ? { res: null, op: null } : this.writer.fromCache(keys, { res: null, op: null });
    return this.writer.write(ref, keys, request.fence, assumed, (seen) => {
      const parent = keys.parent === undefined ? undefined : (this.cache.decode<ResourceRecord>(seen.parent ?? null, keys.parent) ?? undefined);
      const plan = planCreate(ref, this.observe<RecordOf<T>>(keys, seen), request, this.options.clock.now(), parent);
      return decideResource(this.decideDeps, ref, keys, seen, plan, request.parent?.touch !== false);
    });
  }

  transition<T extends ResourceType>(
    ref: { readonly type: T; readonly id: string },
    request: TransitionRequest<RecordOf<T>>,
  ): Promise<TransitionResult<RecordOf<T>>> {
    const keys = this.keysOf(ref, 'res', needsChildren(ref.type, request.expect), needsHolds(request.expect));
    return this.writer.write(ref, keys, request.fence, this.writer.fromCache(keys), (seen) =>
      decideResource(this.decideDeps, ref, keys, seen, planTransition(ref, this.observe<RecordOf<T>>(keys, seen), request, this.options.clock.now())),
    );
  }

  remove<T extends ResourceType>(ref: { readonly type: T; readonly id: string }, request: RemoveRequest): Promise<TransitionResult<RecordOf<T>>> {
    const keys = this.keysOf(ref, 'res', needsChildren(ref.type, request.expect), needsHolds(request.expect));
    return this.writer.write(ref, keys, request.fence, this.writer.fromCache(keys), (seen) =>
      decideResource(this.decideDeps, ref, keys, seen, planRemove(ref, this.observe<RecordOf<T>>(keys, seen), request)),
    );
  }

  updateOp(ref: ResourceRef, request: OpUpdateRequest): Promise<OpUpdateResult> {
    const keys: WriteKeys = { ...this.keysOf(ref, 'op'), compareRes: false };
    const assumed = request.assume === undefined ? undefined : decodeStoredOp(request.assume);
    const first: Seen | undefined = assumed ? { res: null, op: assumed, opAssumed: true } : this.writer.fromCache(keys);
    return this.writer.write(ref, keys, request.fence, first, (seen) => decideOpUpdate(this.decideDeps, keys, seen, request, this.options.clock.now()));
  }

  async markPublished(ops: readonly OpRecord[], publishedAt: number): Promise<number> {
    if (this.closed) throw new ClosedError('state store');
    let stamped = 0;
    for (const batch of stampBatches(ops, (op) => this.keys.op(op.type, op.id), publishedAt, (op) => this.versions.encode(op))) {
      const res = await this.call('stamping published ops', () => this.client.kv.txn({ compare: [], success: batch.ops, failure: [] }));
      for (const [j, key] of batch.keys.entries()) {
        // Stamped or not, what this store saw of the key is out of date now.
        this.cache.forget(key);
        if (res.responses[j]?.response_txn?.succeeded) stamped++;
      }
    }
    return stamped;
  }

  opOfStored(stored: StoredOp): OpRecord | undefined {
    const state = decodeStoredOp(stored);
    if (!state) return undefined;
    try {
      // The token holds the op's bytes as stored, `v` included: the record codec reads them.
      return this.cache.decode<OpRecord>(state, 'carried by a job') ?? undefined;
    } catch {
      return undefined;
    }
  }

  async get<T extends ResourceType>(ref: { readonly type: T; readonly id: string }): Promise<RecordOf<T> | undefined> {
    const key = this.keys.resource(ref.type, ref.id);
    const res = await this.call(`reading ${ref.type} ${ref.id}`, () => this.client.kv.range({ key: Buffer.from(key) }));
    this.countRead('get', bytesOf(res.kvs));
    const state = keyStateOf(res.kvs[0]);
    this.cache.remember(key, state);
    return this.cache.decode<RecordOf<T>>(state, key) ?? undefined;
  }

  async list<T extends ResourceType>(type: T, query: ListQuery = {}): Promise<Page<RecordOf<T>>> {
    if (this.closed) throw new ClosedError('state store');
    return this.listing.page<RecordOf<T>>(type, planList(query));
  }

  /**
   * Indexes the records written before the listing indexes existed, once per cluster (see
   * etcd-index-build.ts); resolves with how many records it indexed.
   */
  async buildListIndexes(signal?: AbortSignal): Promise<number> {
    if (this.closed) throw new ClosedError('state store');
    try {
      return await buildListIndexes(
        { client: this.client, keys: this.keys, decode: (kv) => this.decodeKv<ResourceRecord>(kv), countRead: (kind, bytes) => this.countRead(kind, bytes) },
        signal,
      );
    } catch (err) {
      throw fromEtcdError(err, 'building the listing indexes');
    }
  }

  async getOp(ref: ResourceRef): Promise<OpRecord | undefined> {
    const key = this.keys.op(ref.type, ref.id);
    const res = await this.call(`reading the op of ${ref.type} ${ref.id}`, () => this.client.kv.range({ key: Buffer.from(key) }));
    this.countRead('get', bytesOf(res.kvs));
    const state = keyStateOf(res.kvs[0]);
    this.cache.remember(key, state);
    return this.cache.decode<OpRecord>(state, key) ?? undefined;
  }

  async listOps(filter: OpFilter = {}): Promise<OpRecord[]> {
    // Ops exist only while their operation is in flight: bounded by the work in flight.
    const ops = await this.rangeAll<OpRecord>(this.keys.ops(filter.type), 'listing ops');
    return sortOps(ops.filter((op) => matchesOpFilter(op, filter)));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.cache.clear();
  }

  private keysOf(ref: ResourceRef, primary: 'res' | 'op', children = false, holds = false): WriteKeys {
    return writeKeysOf(this.keys, ref, primary, children, holds);
  }

  private observe<R>(keys: WriteKeys, seen: Seen): { record: R | undefined; op: OpRecord | undefined; children?: number; holds?: number } {
    const counts = { ...(seen.children === undefined ? {} : { children: seen.children }), ...(seen.holds === undefined ? {} : { holds: seen.holds }) };
    return { record: this.cache.decode<R>(seen.res, keys.res) ?? undefined, op: this.cache.decode<OpRecord>(seen.op, keys.op) ?? undefined, ...counts };
  }

  private async rangeAll<R>(prefix: string, what: string): Promise<R[]> {
    const res = await this.call(what, () => this.client.kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(prefix) }));
    this.countRead('list_ops', bytesOf(res.kvs));
    return res.kvs.map((kv) => this.decodeKv<R>(kv));
  }

  private decodeKv<R>(kv: IKeyValue): R {
    return { ...this.versions.decode<object>(kv.value.toString(), kv.key.toString()), revision: kv.mod_revision } as R;
  }

  private countRead(kind: string, bytes: number): void {
    this.options.metrics.etcdReadBytes.inc({ kind }, bytes);
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new ClosedError('state store');
    try {
      return await fn();
    } catch (err) {
      throw fromEtcdError(err, what);
    }
  }
}
