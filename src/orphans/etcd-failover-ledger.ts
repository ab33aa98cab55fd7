import type { Etcd3 } from 'etcd3';
import { fromEtcdError } from '../etcd/errors.js';
import type { KeyLayout } from '../etcd/keys.js';
import type { OwnerRef } from '../identity.js';
import { leaseHexOf } from '../membership/lease-ttl.js';
import type { FailoverLedger } from './failover-ledger.js';

/** What {@link EtcdFailoverLedger} writes with. */
export interface EtcdFailoverLedgerOptions {
  readonly client: Etcd3;
  readonly keys: KeyLayout;
}

/**
 * The cluster's failover ledger: one create-if-absent transaction per (process, death) puts
 * `failovers/<dead incarnation>` = the taker's incarnation on the taker's session lease (its id
 * is the incarnation's suffix). Exactly one member's transaction succeeds; the key vanishes with
 * the taker's lease, so nothing accumulates.
 *
 * Failure semantics: etcd unreachable → a retryable `BackendUnavailableError`; a taker whose
 * lease expired gets false (a dead member counts nothing).
 */
export class EtcdFailoverLedger implements FailoverLedger {
  constructor(private readonly options: EtcdFailoverLedgerOptions) {}

  async first(deadIncarnation: string, by: OwnerRef): Promise<boolean> {
    const { client, keys } = this.options;
    const key = keys.failover(deadIncarnation);
    const hex = leaseHexOf(by.incarnation);
    const put = client.put(key).value(by.incarnation);
    if (hex !== undefined) put.lease(BigInt(`0x${hex}`).toString());
    try {
      return (await client.if(key, 'Create', '==', 0).then(put).commit()).succeeded;
    } catch (err) {
      const translated = fromEtcdError(err, 'record a failover');
      if (translated.code === 'LOCK_LOST') return false;
      throw translated;
    }
  }
}
