import type { Etcd3, IKeyValue } from 'etcd3';
import { AbortedError, FencedError } from '../errors.js';
import type { KeyLayout } from '../etcd/keys.js';
import { fromEtcdError } from '../etcd/errors.js';
import { failedGuard, guardedKeyOf } from '../etcd/guards.js';
import { type Fence, guardRevision, guardTarget, NO_FENCE } from '../fence.js';
import type { Logger } from '../observability/logger.js';
import { decodeEnd, decodeIncarnation, encodeIncarnationRecord, type IncarnationEnd, type IncarnationRecord, type IncarnationView } from './incarnation-records.js';
import type { RecordEndResult } from './membership.js';

/** Where {@link EtcdIncarnations} reads and writes. */
export interface EtcdIncarnationsOptions {
  readonly client: Etcd3;
  readonly keys: KeyLayout;
  readonly logger: Logger;
}

/** The lease an etcd incarnation rides on: `<host>:<lease hex>` → the lease id, decimal. */
export function leaseOfIncarnation(incarnation: string): string | undefined {
  const hex = incarnation.slice(incarnation.lastIndexOf(':') + 1);
  return /^[0-9a-f]+$/.test(hex) ? BigInt(`0x${hex}`).toString() : undefined;
}

/**
 * The incarnation records on etcd: `incarnations/<incarnation>` (written by the join, in its
 * transaction) and `fenced/<incarnation>` (written once: by a clean leave, in its transaction,
 * or by whoever fenced it). Neither has a lease: they outlive the incarnation.
 */
export class EtcdIncarnations {
  constructor(private readonly options: EtcdIncarnationsOptions) {}

  /** One read-only transaction: the record, the end and the host's alive entry, at one revision. */
  async get(incarnation: string): Promise<IncarnationView> {
    const { client, keys } = this.options;
    const lease = leaseOfIncarnation(incarnation);
    const host = incarnation.slice(0, incarnation.lastIndexOf(':'));
    try {
      const tx = await client.kv.txn({
        compare: [],
        success: [keys.incarnation(incarnation), keys.fenced(incarnation), keys.alive(host)].map((key) => ({ request_range: { key: Buffer.from(key) } })),
        failure: [],
      });
      const kv = (i: number): IKeyValue | undefined => tx.responses[i]?.response_range.kvs[0];
      return { record: this.decode(kv(0), decodeIncarnation), end: this.decode(kv(1), decodeEnd), alive: lease !== undefined && kv(2)?.lease === lease };
    } catch (err) {
      throw fromEtcdError(err, `read incarnation ${incarnation}`);
    }
  }

  async list(): Promise<IncarnationView[]> {
    const { client, keys } = this.options;
    try {
      const [records, ends, alive] = await Promise.all([
        client.getAll().prefix(keys.incarnations()).exec(),
        client.getAll().prefix(keys.fencedAll()).exec(),
        client.getAll().prefix(keys.aliveAll()).exec(),
      ]);
      const leases = new Set(alive.kvs.map((kv) => kv.lease));
      const byInc = new Map<string, { record?: IncarnationRecord; end?: IncarnationEnd }>();
      for (const kv of records.kvs) {
        const record = this.decode(kv, decodeIncarnation);
        if (record) byInc.set(record.incarnation, { ...byInc.get(record.incarnation), record });
      }
      for (const kv of ends.kvs) {
        const end = this.decode(kv, decodeEnd);
        if (end) byInc.set(end.incarnation, { ...byInc.get(end.incarnation), end });
      }
      return [...byInc.entries()].map(([inc, v]) => ({ record: v.record, end: v.end, alive: leases.has(leaseOfIncarnation(inc) ?? '-') }));
    } catch (err) {
      throw fromEtcdError(err, 'list incarnations');
    }
  }

  /**
   * Writes `end` unless the incarnation has an end record already. Unless it is a `self` fence
   * (the same process, which knows its runs settled), the write also requires that the
   * incarnation is not alive: its host's alive entry is gone or rides on another lease.
   */
  async recordEnd(end: IncarnationEnd, fence: Fence = NO_FENCE): Promise<RecordEndResult> {
    if (!fence.holds()) throw new FencedError('holds()', fence.description);
    const { client, keys } = this.options;
    const endKey = keys.fenced(end.incarnation);
    const aliveKey = keys.alive(end.host);
    const lease = leaseOfIncarnation(end.incarnation);
    let txn = client.if(endKey, 'Create', '==', 0);
    if (end.how !== 'self' && lease !== undefined) txn = txn.and(aliveKey, 'Lease', '!=', lease);
    for (const g of fence.guards) {
      txn = txn.and(g.key, guardTarget(g), g.expect === 'equal' ? '==' : '!=', guardRevision(g).revision);
    }
    try {
      const tx = await txn.then(client.put(endKey).value(encodeIncarnationRecord(end))).else(client.get(endKey), client.get(aliveKey), ...fence.guards.map((g) => client.get(g.key))).commit();
      if (tx.succeeded) return { ok: true, end, created: true };
      const existing = this.decode(tx.responses[0]?.response_range.kvs[0], decodeEnd);
      if (existing) return { ok: true, end: existing, created: false };
      const alive = tx.responses[1]?.response_range.kvs[0];
      if (lease !== undefined && alive?.lease === lease) return { ok: false, reason: 'alive' };
      const failed = failedGuard(fence.guards, fence.guards.map((_, i) => guardedKeyOf(tx.responses[2 + i]?.response_range.kvs[0])));
      throw new FencedError(failed ?? 'a guard', fence.description);
    } catch (err) {
      if (err instanceof FencedError) throw err;
      throw fromEtcdError(err, `record the end of ${end.incarnation}`);
    }
  }

  /** Holds once `incarnation` has an end record (the create revision of `fenced/<inc>` is not 0). */
  ended(incarnation: string): Fence {
    const key = this.options.keys.fenced(incarnation);
    return { guards: [{ key, createRevision: '0', expect: 'notEqual' }], holds: () => true, description: `${incarnation} fenced (fenced/${incarnation} exists)` };
  }

  /** Resolves with the end record once there is one: a read, then a watch from that revision. */
  async waitEnded(incarnation: string, signal: AbortSignal): Promise<IncarnationEnd> {
    const { client, keys } = this.options;
    const key = keys.fenced(incarnation);
    for (;;) {
      if (signal.aborted) throw new AbortedError(`waiting for ${incarnation} to be fenced`, { cause: signal.reason });
      let revision: string;
      try {
        const res = await client.get(key).exec();
        const end = this.decode(res.kvs[0], decodeEnd);
        if (end) return end;
        revision = res.header.revision;
      } catch (err) {
        throw fromEtcdError(err, `read the end of ${incarnation}`);
      }
      const end = await this.watchPut(key, BigInt(revision) + 1n, signal);
      if (end) return end;
    }
  }

  /** Watches `key` for a put; undefined when the watch ended without one (read again). */
  private async watchPut(key: string, fromRevision: bigint, signal: AbortSignal): Promise<IncarnationEnd | undefined> {
    const watcher = await this.options.client.watch().key(key).startRevision(fromRevision.toString()).create();
    try {
      return await new Promise<IncarnationEnd | undefined>((resolve) => {
        const done = (value: IncarnationEnd | undefined): void => {
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        };
        const onAbort = (): void => done(undefined);
        // Aborted while the watch was being created: no abort event will come any more.
        if (signal.aborted) return done(undefined);
        signal.addEventListener('abort', onAbort, { once: true });
        watcher.on('put', (kv) => done(this.decode(kv, decodeEnd)));
        watcher.on('error', () => done(undefined));
        watcher.on('disconnected', () => done(undefined));
      });
    } finally {
      await watcher.cancel().catch(() => undefined);
    }
  }

  async forget(incarnation: string): Promise<void> {
    const { client, keys } = this.options;
    try {
      await Promise.all([client.delete().key(keys.incarnation(incarnation)).exec(), client.delete().key(keys.fenced(incarnation)).exec()]);
    } catch (err) {
      throw fromEtcdError(err, `forget incarnation ${incarnation}`);
    }
  }

  private decode<T>(kv: IKeyValue | undefined, decode: (text: string) => T): T | undefined {
    if (!kv) return undefined;
    try {
      return decode(kv.value.toString());
    } catch (err) {
      this.options.logger.warn({ err, key: kv.key.toString() }, 'ignoring a malformed incarnation record');
      return undefined;
    }
  }
}
