import type { Etcd3, IKeyValue } from 'etcd3';
import type { KeyLayout } from '../etcd/keys.js';
import { fromEtcdError } from '../etcd/errors.js';
import { FencedError, InvalidInputError } from '../errors.js';
import { failedGuard, guardedKeyOf } from '../etcd/guards.js';
import { type Fence, guardRevision, guardTarget } from '../fence.js';
import type { Member } from '../membership/membership.js';
import type { Logger } from '../observability/logger.js';
import { decodeFenceOp, encodeFenceOp } from './fence-op-codec.js';
import { type FenceOp, type FenceQueue, type FenceRequest, type FenceWrite, seenLive } from './fence-queue.js';

/** Where {@link EtcdFenceQueue} keeps its operations. */
export interface EtcdFenceQueueOptions {
  readonly client: Etcd3;
  readonly keys: KeyLayout;
  readonly logger: Logger;
  readonly now: () => number;
}

/**
 * Fence operations on etcd, one key per dead incarnation: `fences/<incarnation>`, without a
 * lease (it must outlive whoever runs it). Claims and updates are compare-and-swaps on the
 * key's mod revision carrying the writer's fence.
 */
export class EtcdFenceQueue implements FenceQueue {
  constructor(private readonly options: EtcdFenceQueueOptions) {}

  async request(request: FenceRequest): Promise<FenceOp> {
    const { client, keys } = this.options;
    const key = keys.fence(request.incarnation);
    const fresh = { ...request, requestedAtMs: this.options.now(), owner: null, attempt: 0, failures: 0, lastError: null, nextAttemptAtMs: 0 };
    try {
      for (let attempt = 0; ; attempt++) {
        const tx = await client.if(key, 'Create', '==', 0).then(client.put(key).value(encodeFenceOp(fresh))).else(client.get(key)).commit();
        if (tx.succeeded) return { ...fresh, revision: tx.header.revision };
        const kv = tx.responses[0]?.response_range.kvs[0];
        const existing = kv && this.decode(kv);
        if (!existing) return { ...fresh, revision: kv?.mod_revision ?? tx.header.revision };
        const upgraded = seenLive(existing, request);
        if (!upgraded || attempt >= 3) return existing;
        const swapped = await client.if(key, 'Mod', '==', existing.revision).then(client.put(key).value(encodeFenceOp(upgraded))).commit();
        if (swapped.succeeded) return { ...upgraded, revision: swapped.header.revision };
      }
    } catch (err) {
      throw fromEtcdError(err, `request a fence of ${request.incarnation}`);
    }
  }

  async get(incarnation: string): Promise<FenceOp | undefined> {
    try {
      const kv = (await this.options.client.get(this.options.keys.fence(incarnation)).exec()).kvs[0];
      return kv && this.decode(kv);
    } catch (err) {
      throw fromEtcdError(err, `read the fence of ${incarnation}`);
    }
  }

  async list(): Promise<FenceOp[]> {
    try {
      const res = await this.options.client.getAll().prefix(this.options.keys.fences()).exec();
      return res.kvs.map((kv) => this.decode(kv)).filter((op): op is FenceOp => op !== undefined);
    } catch (err) {
      throw fromEtcdError(err, 'list fences');
    }
  }

  claim(op: FenceOp, me: Member, fence: Fence): Promise<FenceWrite> {
    return this.swap(op, { ...op, owner: me.owner, attempt: op.attempt + 1 }, fence, 'claim');
  }

  failed(op: FenceOp, me: Member, reason: string, nextAttemptAtMs: number, postponed = false): Promise<FenceWrite> {
    return this.swap(op, { ...op, lastError: reason.slice(0, 500), nextAttemptAtMs, failures: op.failures + (postponed ? 0 : 1) }, me.fence(), 'record a failed attempt of');
  }

  async remove(incarnation: string): Promise<void> {
    try {
      await this.options.client.delete().key(this.options.keys.fence(incarnation)).exec();
    } catch (err) {
      throw fromEtcdError(err, `remove the fence of ${incarnation}`);
    }
  }

  /** Writes `next` if `op` is unchanged and `fence` holds. */
  private async swap(op: FenceOp, next: FenceOp, fence: Fence, what: string): Promise<FenceWrite> {
    if (!fence.holds()) throw new FencedError('holds()', fence.description);
    const { client, keys } = this.options;
    const key = keys.fence(op.incarnation);
    let txn = client.if(key, 'Mod', '==', op.revision);
    for (const g of fence.guards) {
      txn = txn.and(g.key, guardTarget(g), g.expect === 'equal' ? '==' : '!=', guardRevision(g).revision);
    }
    try {
      const tx = await txn.then(client.put(key).value(encodeFenceOp(next))).else(client.get(key), ...fence.guards.map((g) => client.get(g.key))).commit();
      if (tx.succeeded) return { ok: true, op: { ...next, revision: tx.header.revision } };
      const failed = failedGuard(fence.guards, fence.guards.map((_, i) => guardedKeyOf(tx.responses[1 + i]?.response_range.kvs[0])));
      if (failed) throw new FencedError(failed, fence.description);
      return { ok: false, reason: tx.responses[0]?.response_range.kvs[0] ? 'conflict' : 'gone' };
    } catch (err) {
      if (err instanceof FencedError) throw err;
      throw fromEtcdError(err, `${what} the fence of ${op.incarnation}`);
    }
  }

  private decode(kv: IKeyValue): FenceOp | undefined {
    try {
      return { ...decodeFenceOp(kv.value.toString()), revision: kv.mod_revision };
    } catch (err) {
      if (!(err instanceof InvalidInputError)) throw err;
      this.options.logger.warn({ err, key: kv.key.toString() }, 'ignoring a malformed fence operation');
      return undefined;
    }
  }
}
