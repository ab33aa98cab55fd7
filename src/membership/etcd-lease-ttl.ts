import type { Etcd3 } from 'etcd3';
import { AbortedError } from '../errors.js';
import { fromEtcdError } from '../etcd/errors.js';
import { leaseHexOf, type LeaseTtl, type LeaseTtls } from './lease-ttl.js';

/**
 * Lease times from etcd's `LeaseTimeToLive`, one call per live member (a cluster has a handful),
 * made at once, each with the client's call deadline.
 *
 * Failure semantics: etcd unreachable → a retryable `BackendUnavailableError` (from the first
 * call that failed); a lease that expired meanwhile is left out.
 */
export class EtcdLeaseTtls implements LeaseTtls {
  constructor(
    private readonly client: Etcd3,
    private readonly callTimeoutMs: number,
  ) {}

  async of(incarnations: readonly string[], signal?: AbortSignal): Promise<ReadonlyMap<string, LeaseTtl>> {
    if (signal?.aborted) throw new AbortedError('reading lease times', { cause: signal.reason });
    const out = new Map<string, LeaseTtl>();
    await Promise.all(
      incarnations.map(async (incarnation) => {
        const hex = leaseHexOf(incarnation);
        if (hex === undefined) return;
        let res;
        try {
          res = await this.client.leaseClient.leaseTimeToLive({ ID: BigInt(`0x${hex}`).toString(), keys: false }, { deadline: Date.now() + this.callTimeoutMs });
        } catch (err) {
          throw fromEtcdError(err, 'read a member lease');
        }
        const remaining = Number(res.TTL);
        if (remaining < 0) return;
        out.set(incarnation, { id: hex, grantedTtlS: Number(res.grantedTTL), remainingTtlS: remaining });
      }),
    );
    return out;
  }
}
