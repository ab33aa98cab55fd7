/**
 * Conditional updates of cluster records on etcd, and the backend epoch key beside them
 * (`cluster-epochs/<cluster>`, whose etcd version is the epoch).
 */
import type { Etcd3 } from 'etcd3';
import { CoordinatorError, FencedError } from '../errors.js';
import type { KeyLayout } from '../etcd/keys.js';
import { fromEtcdError } from '../etcd/errors.js';
import { failedGuard, guardedKeyOf } from '../etcd/guards.js';
import { type Fence, guardRevision, guardTarget, NO_FENCE } from '../fence.js';
import type { Clock } from '../lifecycle/clock.js';
import type { AdvanceEpochResult, ClusterChange, ClusterUpdateResult } from './membership.js';
import { decodeCluster, encodeRecord } from './records.js';
import { failedCondition } from './replication-fields.js';

/** Bound on compare-and-swap retries when other writers keep winning. */
const MAX_RACES = 5;

/** What {@link EtcdClusterRecords} needs. */
export interface EtcdClusterRecordsOptions {
  readonly client: Etcd3;
  readonly keys: KeyLayout;
  readonly clock: Clock;
}

/** See the module doc; the contract is the Membership port's `updateCluster`, `advanceEpoch` and `epochFence`. */
export class EtcdClusterRecords {
  constructor(private readonly o: EtcdClusterRecordsOptions) {}

  async update(name: string, binary: string, change: ClusterChange): Promise<ClusterUpdateResult> {
    const { client, keys, clock } = this.o;
    const key = keys.cluster(name);
    const fence = change.fence ?? NO_FENCE;
    try {
      for (let attempt = 0; attempt < MAX_RACES; attempt++) {
        const kv = (await client.get(key).exec()).kvs[0];
        if (!kv) return { ok: false, reason: 'not-found' };
        const current = decodeCluster(kv.value.toString());
        if (current.binary !== binary) return { ok: false, reason: 'not-found' };
        const failed = failedCondition(current, change.expect);
        if (failed) return { ok: false, reason: 'condition', failed, record: current };
        const next = { ...current, ...change.set(current), updatedAtMs: clock.now() };
        if (!fence.holds()) throw new FencedError('holds()', fence.description);
        let txn = client.if(key, 'Mod', '==', kv.mod_revision);
        for (const g of fence.guards) txn = txn.and(g.key, guardTarget(g), g.expect === 'equal' ? '==' : '!=', guardRevision(g).revision);
        const tx = await txn
          .then(client.put(key).value(encodeRecord(next)))
          .else(...fence.guards.map((g) => client.get(g.key)))
          .commit();
        if (tx.succeeded) return { ok: true, record: next, previous: current };
        const broken = failedGuard(fence.guards, fence.guards.map((_, i) => guardedKeyOf(tx.responses[i]?.response_range.kvs[0])));
        if (broken) throw new FencedError(broken, fence.description);
      }
    } catch (err) {
      if (err instanceof CoordinatorError) throw err;
      throw fromEtcdError(err, `update cluster ${name}`);
    }
    throw new CoordinatorError('CONFLICT', `cluster ${name} kept changing; try again`, { retryable: true });
  }

  async advanceEpoch(name: string, to: number, fence: Fence = NO_FENCE): Promise<AdvanceEpochResult> {
    const { client, keys } = this.o;
    const key = keys.clusterEpoch(name);
    if (!fence.holds()) throw new FencedError('holds()', fence.description);
    try {
      let txn = client.if(key, 'Version', '==', String(to - 1));
      for (const g of fence.guards) txn = txn.and(g.key, guardTarget(g), g.expect === 'equal' ? '==' : '!=', guardRevision(g).revision);
      const tx = await txn
        .then(client.put(key).value(String(to)))
        .else(client.get(key), ...fence.guards.map((g) => client.get(g.key)))
        .commit();
      if (tx.succeeded) return { ok: true };
      const broken = failedGuard(fence.guards, fence.guards.map((_, i) => guardedKeyOf(tx.responses[1 + i]?.response_range.kvs[0])));
      if (broken) throw new FencedError(broken, fence.description);
      const actual = Number(tx.responses[0]?.response_range.kvs[0]?.version ?? '0');
      return actual === to ? { ok: true } : { ok: false, actual };
    } catch (err) {
      if (err instanceof CoordinatorError) throw err;
      throw fromEtcdError(err, `raise the backend epoch of ${name}`);
    }
  }

  epochFence(name: string, epoch: number): Fence {
    const key = this.o.keys.clusterEpoch(name);
    return { guards: [{ key, version: String(epoch), expect: 'equal' }], holds: () => true, description: `backend epoch of ${name} == ${epoch}` };
  }
}
