import type { Etcd3, ICompare, IKeyValue, IRequestOp, IResponseOp, ITxnResponse } from 'etcd3';
import { failedGuard, guardCompare, guardedKeyOf, releaseOps } from '../etcd/guards.js';
import { BackendUnavailableError, ClosedError, FencedError, OutcomeUnknownError } from '../errors.js';
import { fromEtcdError } from '../etcd/errors.js';
import { type KeyLayout, prefixEnd } from '../etcd/keys.js';
import { type Fence, NO_FENCE } from '../fence.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Logger } from '../observability/logger.js';
import { reconcile } from './etcd-reconcile.js';
import { DEFAULT_MAX_KEYS, SeenCache } from './etcd-seen-cache.js';
import {
  countAt,
  countOp,
  deleteOp,
  type KeyState,
  keyStateOf,
  holdIndexOps,
  modIs,
  putOp,
  rangeIsEmpty,
  rangeOp,
  stateAt,
  valueIs,
} from './etcd-txn.js';
import { decodeStoredOp, encodeStoredOp, stampBatches } from './etcd-stored-op.js';
import type { FailedCondition } from './expect.js';
import { buildListIndexes } from './etcd-index-build.js';
import { bytesOf, bytesOfResponses, EtcdListing, indexOps } from './etcd-listing.js';
import { planList } from './list-plan.js';
import { matchesOpFilter, sortOps } from './listing.js';
import { measured, type StateMetrics } from './metrics.js';
import { needsChildren, needsHolds, type Plan, planCreate, planOpUpdate, planRemove, planTransition } from './plan.js';
import { heldSourceOf, type OpRecord, type RecordOf, type ResourceRecord, type ResourceRef, type ResourceType } from './records.js';
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

/** The keys one write reads, compares and changes. */
interface WriteKeys {
  readonly res: string;
  readonly op: string;
  readonly parent?: string;
  readonly childrenPrefix?: string;
  readonly holdsPrefix?: string;
  /** The key whose value tells whether the write landed. */
  readonly primary: 'res' | 'op';
  /** Whether the transaction compares the resource key (an op-only update does not). */
  readonly compareRes: boolean;
}

/** What a write saw of its keys. */
interface Seen {
  readonly res: KeyState | null;
  readonly op: KeyState | null;
  readonly parent?: KeyState | null;
  readonly children?: number;
  readonly holds?: number;
  /** `op` came from a job message, not from etcd: the write compares its content too. */
  readonly opAssumed?: boolean;
}

/** A decided write: its operations, and the result once it committed at a revision. */
interface Decided<T> {
  readonly success: IRequestOp[];
  readonly intended: string | null;
  /** What the txn writes per key (null: deleted), with the record it encodes. */
  readonly written: ReadonlyMap<string, { readonly json: string; readonly body: object } | null>;
  /** The result at `revision`; `responses` are the txn's (absent when the write was reconciled). */
  readonly result: (revision: string, responses?: readonly IResponseOp[]) => T;
}

type Decision<T> = { readonly refused: T } | Decided<T>;

/**
 * The cluster's StateStore on etcd. A write reads the record and its op (one read-only txn, or
 * the last state this store saw of them), decides with the same pure planner as SQLite, then
 * commits one txn: `if mod_revision(resource) == seen and mod_revision(op) == seen [and every
 * fence guard] then put/delete … else read them all back`. A lost race costs no extra read: the
 * else branch returns the new values, and the conditions are checked again (bounded).
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
  private readonly maxAttempts: number;
  private readonly versions: RecordVersions;
  private readonly listing: EtcdListing;
  private closed = false;

  constructor(private readonly options: EtcdStateStoreOptions) {
    this.client = options.client;
    this.keys = options.keys;
    this.maxAttempts = options.maxAttempts ?? 8;
    this.versions = options.versions ?? new RecordVersions();
    this.cache = new SeenCache(options.cacheSize ?? DEFAULT_MAX_KEYS, (json, key) => this.versions.decode<object>(json, key));
    this.listing = new EtcdListing({
      client: this.client,
      keys: this.keys,
      decode: (kv) => this.decodeKv<ResourceRecord>(kv),
      call: (what, fn) => this.call(what, fn),
      countRead: (kind, bytes) => this.countRead(kind, bytes),
      now: () => this.options.clock.now(),
    });
  }

  create<T extends ResourceType>(type: T, request: CreateRequest<RecordOf<T>>): Promise<TransitionResult<RecordOf<T>>> {
    const ref = { type, id: request.record.id };
    const parentRef = request.parent?.ref;
    const keys = { ...this.keysOf(ref, 'res'), ...(parentRef ? { parent: this.keys.resource(parentRef.type, parentRef.id) } : {}) };
    // A new id is absent: the first attempt assumes so and needs no read unless a parent is unknown.
    const assumed: Seen | undefined = keys.parent === undefined ? { res: null, op: null } : this.fromCache(keys, { res: null, op: null });
    return this.write(ref, keys, request.fence, assumed, (seen) => {
      const parent = keys.parent === undefined ? undefined : (this.cache.decode<ResourceRecord>(seen.parent ?? null, keys.parent) ?? undefined);
      const plan = planCreate(ref, this.observe<RecordOf<T>>(keys, seen), request, this.options.clock.now(), parent);
      return this.decideResource(ref, keys, seen, plan, request.parent?.touch !== false);
    });
  }

  transition<T extends ResourceType>(
    ref: { readonly type: T; readonly id: string },
    request: TransitionRequest<RecordOf<T>>,
  ): Promise<TransitionResult<RecordOf<T>>> {
    const keys = this.keysOf(ref, 'res', needsChildren(ref.type, request.expect), needsHolds(request.expect));
    return this.write(ref, keys, request.fence, this.fromCache(keys), (seen) =>
      this.decideResource(ref, keys, seen, planTransition(ref, this.observe<RecordOf<T>>(keys, seen), request, this.options.clock.now())),
    );
  }

  remove<T extends ResourceType>(ref: { readonly type: T; readonly id: string }, request: RemoveRequest): Promise<TransitionResult<RecordOf<T>>> {
    const keys = this.keysOf(ref, 'res', needsChildren(ref.type, request.expect), needsHolds(request.expect));
    return this.write(ref, keys, request.fence, this.fromCache(keys), (seen) =>
      this.decideResource(ref, keys, seen, planRemove(ref, this.observe<RecordOf<T>>(keys, seen), request)),
    );
  }

  updateOp(ref: ResourceRef, request: OpUpdateRequest): Promise<OpUpdateResult> {
    const keys: WriteKeys = { ...this.keysOf(ref, 'op'), compareRes: false };
    const assumed = request.assume === undefined ? undefined : decodeStoredOp(request.assume);
    const first: Seen | undefined = assumed ? { res: null, op: assumed, opAssumed: true } : this.fromCache(keys);
    return this.write(ref, keys, request.fence, first, (seen): Decision<OpUpdateResult> => {
      const plan = planOpUpdate(this.cache.decode<OpRecord>(seen.op, keys.op) ?? undefined, request, this.options.clock.now());
      if ('failed' in plan) return { refused: { ok: false, failed: plan.failed } };
      const json = this.versions.encode(plan.op);
      // The resource read in the same txn, after the put: as it is at the write's revision.
      const success = request.withRecord ? [putOp(keys.op, json), rangeOp(keys.res)] : [putOp(keys.op, json)];
      return {
        success,
        intended: json,
        written: new Map([[keys.op, { json, body: plan.op }]]),
        result: (revision, responses) => {
          const op = { ...plan.op, revision };
          if (!request.withRecord || responses === undefined) return { ok: true, revision, op };
          const state = stateAt(responses, 1);
          this.cache.remember(keys.res, state);
          return { ok: true, revision, op, record: this.cache.decode<ResourceRecord>(state, keys.res) };
        },
      };
    });
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
    return {
      res: this.keys.resource(ref.type, ref.id),
      op: this.keys.op(ref.type, ref.id),
      ...(children ? { childrenPrefix: this.keys.volumeSnapshots(ref.id) } : {}), ...(holds ? { holdsPrefix: this.keys.sourceHolds(ref.type, ref.id) } : {}),
      primary,
      compareRes: true,
    };
  }

  /** The write loop: decide, commit, re-check after a lost race, reconcile an unknown outcome. */
  private write<T extends { ok: boolean }>(ref: ResourceRef, keys: WriteKeys, fence: Fence | undefined, first: Seen | undefined, decide: (seen: Seen) => Decision<T>): Promise<T> {
    return measured(this.options.metrics, 'etcd', ref.type, async () => {
      if (this.closed) throw new ClosedError('state store');
      const f = fence ?? NO_FENCE;
      let seen = first ?? (await this.read(keys));
      // A state from the cache (or assumed) may be stale: good enough to send a compare-guarded
      // write, not to refuse one. A refusal is only returned on a state etcd just gave us.
      let fresh = first === undefined;
      let decided: { seen: Seen; decision: Decision<T> } | undefined;
      const sent: Decided<T>[] = [];
      for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
        const landed = sent.find((d) => this.isPrimary(keys, seen, d.intended));
        if (landed) return landed.result(this.primaryOf(keys, seen)?.mod ?? '0');
        // After an unchanged reconcile the same decision is re-sent (same compares: at most one lands).
        if (decided?.seen !== seen) decided = { seen, decision: decide(seen) };
        const decision = decided.decision;
        if ('refused' in decision) {
          if (fresh) return decision.refused;
          seen = await this.read(keys);
          fresh = true;
          continue;
        }
        if (!f.holds()) throw new FencedError('holds()', f.description);
        let response: ITxnResponse;
        try {
          const release = releaseOps(f.guards);
          const success = release.length === 0 ? decision.success : [...decision.success, ...release];
          response = await this.client.kv.txn({ compare: this.compares(keys, seen, f), success, failure: this.reads(keys, f) });
        } catch (err) {
          const error = fromEtcdError(err, `writing ${ref.type} ${ref.id}`);
          if (!(error instanceof BackendUnavailableError)) throw error;
          sent.push(decision);
          const outcome = await this.reconcileWrite(keys, seen, decision, error);
          if (outcome.kind === 'landed') return decision.result(outcome.revision);
          seen = outcome.seen;
          fresh = true;
          continue;
        }
        if (response.succeeded) return this.committed(keys, seen, decision, response.header.revision, response.responses);
        const fenced = failedGuard(f.guards, f.guards.map((_, i) => guardedKeyOf(response.responses[this.readCount(keys) + i]?.response_range.kvs[0])));
        if (fenced) throw new FencedError(fenced, f.description);
        this.countRead('write', bytesOfResponses(response.responses));
        seen = this.seenFrom(keys, response.responses);
        fresh = true;
        this.options.logger.debug({ key: keys.res, attempt }, 'lost a race; checking the conditions again');
      }
      const failed: FailedCondition = { field: 'revision', expected: 'unchanged while writing', actual: `changed ${this.maxAttempts} times` };
      return { ok: false, failed } as unknown as T;
    });
  }

  /** Remembers what a committed txn wrote on top of the states it compared against. */
  private committed<T>(keys: WriteKeys, seen: Seen, decision: Decided<T>, revision: string, responses: readonly IResponseOp[]): T {
    const before = new Map([
      [keys.res, seen.res],
      [keys.op, seen.op],
      ...(keys.parent === undefined ? [] : [[keys.parent, seen.parent ?? null] as const]),
    ]);
    let opState: KeyState | null = null;
    for (const [key, value] of decision.written) {
      const prior = before.get(key) ?? null;
      const state = value && { json: value.json, mod: revision, create: prior?.create ?? revision, version: String(Number(prior?.version ?? 0) + 1) };
      this.cache.remember(key, state, value?.body);
      if (key === keys.op) opState = state;
    }
    const result = decision.result(revision, responses);
    // The op as written, for a job message: the worker's claim compares against it instead of reading.
    return opState === null ? result : { ...result, stored: encodeStoredOp(opState) };
  }

  private async reconcileWrite<T>(keys: WriteKeys, seen: Seen, decision: Decided<T>, cause: unknown): Promise<{ kind: 'landed'; revision: string } | { kind: 'retry'; seen: Seen }> {
    for (const key of [keys.res, keys.op, keys.parent]) if (key !== undefined) this.cache.forget(key);
    const key = keys.primary === 'res' ? keys.res : keys.op;
    const fresh = await this.rereadForReconcile(keys, key, cause);
    const outcome = await reconcile({
      client: this.client,
      clock: this.options.clock,
      key,
      before: this.primaryOf(keys, seen),
      now: this.primaryOf(keys, fresh.seen),
      nowRevision: fresh.revision,
      intended: decision.intended,
      timeoutMs: this.options.historyTimeoutMs ?? 3_000,
      cause,
    });
    this.options.logger.warn({ key, outcome: outcome.kind, err: cause }, 'reconciled a write whose answer was lost');
    if (outcome.kind === 'landed') return outcome;
    return { kind: 'retry', seen: outcome.kind === 'unchanged' ? seen : fresh.seen };
  }

  private async rereadForReconcile(keys: WriteKeys, key: string, cause: unknown): Promise<{ seen: Seen; revision: string }> {
    const tries = this.options.reconcileReads ?? 3;
    for (let i = 1; ; i++) {
      try {
        const res = await this.client.kv.txn({ compare: [], success: this.reads(keys, NO_FENCE) });
        return { seen: this.seenFrom(keys, res.responses), revision: res.header.revision };
      } catch (err) {
        if (i >= tries) {
          throw new OutcomeUnknownError(key, `the outcome of a write to ${key} is unknown: its answer was lost and etcd cannot be read to reconcile it; it may still land, re-read before acting`, { cause: err ?? cause });
        }
        await this.options.clock.sleep(100 * i);
      }
    }
  }

  private isPrimary(keys: WriteKeys, seen: Seen, intended: string | null): boolean {
    const state = this.primaryOf(keys, seen);
    return intended === null ? state === null : state?.json === intended;
  }

  private primaryOf(keys: WriteKeys, seen: Seen): KeyState | null {
    return keys.primary === 'res' ? seen.res : seen.op;
  }

  private compares(keys: WriteKeys, seen: Seen, fence: Fence): ICompare[] {
    const compares = [modIs(keys.op, seen.op?.mod ?? '0')];
    // A state a message carried is trusted only byte for byte: the put must replace exactly it.
    if (seen.opAssumed && seen.op) compares.push(valueIs(keys.op, seen.op.json));
    if (keys.compareRes) compares.push(modIs(keys.res, seen.res?.mod ?? '0'));
    if (keys.parent !== undefined) compares.push(modIs(keys.parent, seen.parent?.mod ?? '0'));
    if (keys.holdsPrefix !== undefined && seen.holds === 0) compares.push(rangeIsEmpty(keys.holdsPrefix));
    return [...compares, ...fence.guards.map(guardCompare)];
  }

  /** Reads of every key a write depends on, in a fixed order (see {@link seenFrom}). */
  private reads(keys: WriteKeys, fence: Fence): IRequestOp[] {
    const reads = [rangeOp(keys.res), rangeOp(keys.op)];
    if (keys.parent !== undefined) reads.push(rangeOp(keys.parent));
    if (keys.childrenPrefix !== undefined) reads.push(countOp(keys.childrenPrefix));
    if (keys.holdsPrefix !== undefined) reads.push(countOp(keys.holdsPrefix));
    return [...reads, ...fence.guards.map((g) => rangeOp(g.key))];
  }

  private readCount(keys: WriteKeys): number {
    return 2 + (keys.parent === undefined ? 0 : 1) + (keys.childrenPrefix === undefined ? 0 : 1) + (keys.holdsPrefix === undefined ? 0 : 1);
  }

  private seenFrom(keys: WriteKeys, responses: ITxnResponse['responses']): Seen {
    const seen: Seen = {
      res: stateAt(responses, 0),
      op: stateAt(responses, 1),
      ...(keys.parent === undefined ? {} : { parent: stateAt(responses, 2) }),
      ...(keys.childrenPrefix === undefined ? {} : { children: countAt(responses, keys.parent === undefined ? 2 : 3) }),
      ...(keys.holdsPrefix === undefined ? {} : { holds: countAt(responses, this.readCount(keys) - 1) }),
    };
    this.cache.remember(keys.res, seen.res);
    this.cache.remember(keys.op, seen.op);
    if (keys.parent !== undefined) this.cache.remember(keys.parent, seen.parent ?? null);
    return seen;
  }

  private async read(keys: WriteKeys): Promise<Seen> {
    const res = await this.call(`reading ${keys.res}`, () => this.client.kv.txn({ compare: [], success: this.reads(keys, NO_FENCE) }));
    this.countRead('write', bytesOfResponses(res.responses));
    return this.seenFrom(keys, res.responses);
  }

  /** The last seen state of every key the write compares, when all are known and nothing must be counted. */
  private fromCache(keys: WriteKeys, known: Partial<Seen> = {}): Seen | undefined {
    if (keys.childrenPrefix !== undefined) return undefined;
    // An op-only write neither compares nor decides on the resource: its state is not needed.
    const res = known.res !== undefined ? known.res : keys.compareRes ? this.cache.get(keys.res) : (this.cache.get(keys.res) ?? null);
    const op = known.op !== undefined ? known.op : this.cache.get(keys.op);
    const parent = keys.parent === undefined ? null : this.cache.get(keys.parent);
    if (res === undefined || op === undefined || parent === undefined) return undefined;
    // No hold is assumed, and the write's compare checks it (`rangeIsEmpty`): a wrong guess costs the read it saved.
    return { res, op, ...(keys.parent === undefined ? {} : { parent }), ...(keys.holdsPrefix === undefined ? {} : { holds: 0 }) };
  }

  private observe<R>(keys: WriteKeys, seen: Seen): { record: R | undefined; op: OpRecord | undefined; children?: number; holds?: number } {
    const counts = { ...(seen.children === undefined ? {} : { children: seen.children }), ...(seen.holds === undefined ? {} : { holds: seen.holds }) };
    return { record: this.cache.decode<R>(seen.res, keys.res) ?? undefined, op: this.cache.decode<OpRecord>(seen.op, keys.op) ?? undefined, ...counts };
  }

  /** Turns a resource plan into txn operations and the result builder. */
  private decideResource<R extends ResourceRecord>(ref: ResourceRef, keys: WriteKeys, seen: Seen, plan: Plan<R>, touchParent = true): Decision<TransitionResult<R>> {
    if ('failed' in plan) return { refused: { ok: false, failed: plan.failed } };
    const { record, op } = plan.write;
    const success: IRequestOp[] = [];
    const written = new Map<string, { json: string; body: object } | null>();
    const json = record === null ? null : this.versions.encode(record);
    success.push(json === null ? deleteOp(keys.res) : putOp(keys.res, json));
    written.set(keys.res, record && json !== null ? { json, body: record } : null);
    if (op !== 'keep') {
      const opJson = op === null ? null : this.versions.encode(op);
      if (opJson !== null || seen.op !== null) {
        success.push(opJson === null ? deleteOp(keys.op) : putOp(keys.op, opJson));
        written.set(keys.op, op && opJson !== null ? { json: opJson, body: op } : null);
      }
    }
    const parent = keys.parent === undefined ? null : seen.parent;
    if (keys.parent !== undefined && parent && touchParent) {
      success.push(putOp(keys.parent, parent.json));
      written.set(keys.parent, { json: parent.json, body: this.cache.decode<object>(parent, keys.parent) as object });
    }
    // The listing indexes change in the same txn as the record: they never disagree (etcd-listing.ts).
    success.push(...indexOps(this.keys, ref.type, this.cache.decode<ResourceRecord>(seen.res, keys.res), record as ResourceRecord | null));
    const snapshot = ref.type === 'snapshot' ? ((record ?? this.cache.decode<ResourceRecord>(seen.res, keys.res)) as { volume_id?: string } | null) : null;
    if (snapshot?.volume_id !== undefined && (seen.res === null || record === null)) {
      const index = this.keys.volumeSnapshot(snapshot.volume_id, ref.id);
      success.push(record === null ? deleteOp(index) : putOp(index, ''));
    }
    // The source-holds index follows `source_held` (plan.ts). A holds condition that counted none is checked again at commit (`compares`): a copy holds its source without rewriting it.
    if (ref.type === 'volume') success.push(...holdIndexOps(this.keys, ref.id, heldSourceOf(this.cache.decode<ResourceRecord>(seen.res, keys.res)), heldSourceOf(record as ResourceRecord | null)));
    return {
      success,
      intended: json,
      written,
      result: (revision) => ({
        ok: true,
        revision,
        record: record === null ? (this.cache.decode<R>(seen.res, keys.res) as R) : ({ ...record, revision } as R),
        op: op === 'keep' ? this.cache.decode<OpRecord>(seen.op, keys.op) : op && { ...op, revision },
      }),
    };
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
