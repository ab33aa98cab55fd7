/**
 * The etcd store's write loop. A write reads its keys (one read-only txn, or the states the seen
 * cache holds), decides (etcd-decide.ts), then commits one txn: `if every key is as seen [and
 * every fence guard holds] then put/delete … else read them all back`. A lost race costs no
 * extra read: the else branch returns the new states and the write decides again, at most
 * `maxAttempts` times. A write whose answer was lost is never re-sent blindly: it is reconciled
 * (etcd-reconcile.ts) from a re-read, and re-sent only when etcd shows it has not landed.
 */
import type { Etcd3, IResponseOp, ITxnResponse } from 'etcd3';
import { BackendUnavailableError, ClosedError, FencedError, OutcomeUnknownError } from '../errors.js';
import { fromEtcdError } from '../etcd/errors.js';
import { failedGuard, guardedKeyOf, releaseOps } from '../etcd/guards.js';
import { type Fence, NO_FENCE } from '../fence.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Logger } from '../observability/logger.js';
import type { Decided, Decision } from './etcd-decide.js';
import { bytesOfResponses } from './etcd-listing.js';
import { reconcile } from './etcd-reconcile.js';
import type { SeenCache } from './etcd-seen-cache.js';
import { encodeStoredOp } from './etcd-stored-op.js';
import type { KeyState } from './etcd-txn.js';
import { isPrimary, primaryOf, readCount, type Seen, seenAt, type WriteKeys, writeCompares, writeReads } from './etcd-write-keys.js';
import type { FailedCondition } from './expect.js';
import { measured, type StateMetrics } from './metrics.js';
import type { ResourceRef } from './records.js';

/** What {@link EtcdWriter} needs from the store. */
export interface EtcdWriterDeps {
  readonly client: Etcd3;
  /** The store's seen cache: read for optimistic first attempts, updated by every read and commit. */
  readonly cache: SeenCache;
  readonly clock: Clock;
  readonly metrics: StateMetrics;
  readonly logger: Logger;
  /** Transactions one write may send (lost races and reconciled resends). */
  readonly maxAttempts: number;
  /** Re-reads tried when reconciling a write of unknown outcome. */
  readonly reconcileReads: number;
  /** How long reconciliation waits for etcd's history. */
  readonly historyTimeoutMs: number;
  /** Runs one etcd read, translating its errors (and refusing once the store is closed). */
  readonly call: <T>(what: string, fn: () => Promise<T>) => Promise<T>;
  /** Counts bytes read from etcd, by request kind. */
  readonly countRead: (kind: string, bytes: number) => void;
  /** Whether the store was closed: a write then throws `CLOSED`. */
  readonly closed: () => boolean;
}

/** Sends the etcd store's writes: compare-guarded, re-decided after lost races, reconciled when their answer was lost. */
export class EtcdWriter {
  constructor(private readonly deps: EtcdWriterDeps) {}

  /**
   * The write loop: decide, commit, re-check after a lost race, reconcile an unknown outcome.
   * `first` is the state to decide on without reading (from the cache, or assumed); undefined
   * reads first.
   */
  write<T extends { ok: boolean }>(ref: ResourceRef, keys: WriteKeys, fence: Fence | undefined, first: Seen | undefined, decide: (seen: Seen) => Decision<T>): Promise<T> {
    const { client, maxAttempts } = this.deps;
    return measured(this.deps.metrics, 'etcd', ref.type, async () => {
      if (this.deps.closed()) throw new ClosedError('state store');
      const f = fence ?? NO_FENCE;
      let seen = first ?? (await this.read(keys));
      // A state from the cache (or assumed) may be stale: good enough to send a compare-guarded
      // write, not to refuse one. A refusal is only returned on a state etcd just gave us.
      let fresh = first === undefined;
      let decided: { seen: Seen; decision: Decision<T> } | undefined;
      const sent: Decided<T>[] = [];
      for (let attempt = 1; attempt <= maxAttempts; attempt++) {
        const landed = sent.find((d) => isPrimary(keys, seen, d.intended));
        if (landed) return landed.result(primaryOf(keys, seen)?.mod ?? '0');
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
          response = await client.kv.txn({ compare: writeCompares(keys, seen, f), success, failure: writeReads(keys, f) });
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
        const fenced = failedGuard(f.guards, f.guards.map((_, i) => guardedKeyOf(response.responses[readCount(keys) + i]?.response_range.kvs[0])));
        if (fenced) throw new FencedError(fenced, f.description);
        this.deps.countRead('write', bytesOfResponses(response.responses));
        seen = this.seenFrom(keys, response.responses);
        fresh = true;
        this.deps.logger.debug({ key: keys.res, attempt }, 'lost a race; checking the conditions again');
      }
      const failed: FailedCondition = { field: 'revision', expected: 'unchanged while writing', actual: `changed ${maxAttempts} times` };
      return { ok: false, failed } as unknown as T;
    });
  }

  /** The last seen state of every key the write compares, when all are known and nothing must be counted. */
  fromCache(keys: WriteKeys, known: Partial<Seen> = {}): Seen | undefined {
    const { cache } = this.deps;
    if (keys.childrenPrefix !== undefined) return undefined;
    // An op-only write neither compares nor decides on the resource: its state is not needed.
    const res = known.res !== undefined ? known.res : keys.compareRes ? cache.get(keys.res) : (cache.get(keys.res) ?? null);
    const op = known.op !== undefined ? known.op : cache.get(keys.op);
    const parent = keys.parent === undefined ? null : cache.get(keys.parent);
    if (res === undefined || op === undefined || parent === undefined) return undefined;
    // No hold is assumed, and the write's compare checks it (`rangeIsEmpty`): a wrong guess costs the read it saved.
    return { res, op, ...(keys.parent === undefined ? {} : { parent }), ...(keys.holdsPrefix === undefined ? {} : { holds: 0 }) };
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
      this.deps.cache.remember(key, state, value?.body);
      if (key === keys.op) opState = state;
    }
    const result = decision.result(revision, responses);
    // The op as written, for a job message: the worker's claim compares against it instead of reading.
    return opState === null ? result : { ...result, stored: encodeStoredOp(opState) };
  }

  private async reconcileWrite<T>(keys: WriteKeys, seen: Seen, decision: Decided<T>, cause: unknown): Promise<{ kind: 'landed'; revision: string } | { kind: 'retry'; seen: Seen }> {
    for (const key of [keys.res, keys.op, keys.parent]) if (key !== undefined) this.deps.cache.forget(key);
    const key = keys.primary === 'res' ? keys.res : keys.op;
    const fresh = await this.rereadForReconcile(keys, key, cause);
    const outcome = await reconcile({
      client: this.deps.client,
      clock: this.deps.clock,
      key,
      before: primaryOf(keys, seen),
      now: primaryOf(keys, fresh.seen),
      nowRevision: fresh.revision,
      intended: decision.intended,
      timeoutMs: this.deps.historyTimeoutMs,
      cause,
    });
    this.deps.logger.warn({ key, outcome: outcome.kind, err: cause }, 'reconciled a write whose answer was lost');
    if (outcome.kind === 'landed') return outcome;
    return { kind: 'retry', seen: outcome.kind === 'unchanged' ? seen : fresh.seen };
  }

  private async rereadForReconcile(keys: WriteKeys, key: string, cause: unknown): Promise<{ seen: Seen; revision: string }> {
    const tries = this.deps.reconcileReads;
    for (let i = 1; ; i++) {
      try {
        const res = await this.deps.client.kv.txn({ compare: [], success: writeReads(keys, NO_FENCE) });
        return { seen: this.seenFrom(keys, res.responses), revision: res.header.revision };
      } catch (err) {
        if (i >= tries) {
          throw new OutcomeUnknownError(key, `the outcome of a write to ${key} is unknown: its answer was lost and etcd cannot be read to reconcile it; it may still land, re-read before acting`, { cause: err ?? cause });
        }
        await this.deps.clock.sleep(100 * i);
      }
    }
  }

  /** What the responses of the write's reads say, remembered in the seen cache. */
  private seenFrom(keys: WriteKeys, responses: readonly IResponseOp[]): Seen {
    const seen = seenAt(keys, responses);
    const { cache } = this.deps;
    cache.remember(keys.res, seen.res);
    cache.remember(keys.op, seen.op);
    if (keys.parent !== undefined) cache.remember(keys.parent, seen.parent ?? null);
    return seen;
  }

  private async read(keys: WriteKeys): Promise<Seen> {
    const res = await this.deps.call(`reading ${keys.res}`, () => this.deps.client.kv.txn({ compare: [], success: writeReads(keys, NO_FENCE) }));
    this.deps.countRead('write', bytesOfResponses(res.responses));
    return this.seenFrom(keys, res.responses);
  }
}
