import type { Fence } from '../fence.js';
import type { Membership } from './membership.js';

/** Whether a cluster takes new volumes, and why not (the volume API's `Admission`). */
export type Admission = { readonly accepts: true; readonly fence?: Fence } | { readonly accepts: false; readonly reason: string; readonly frozen?: boolean };

/** Cinder's reason (`assert_not_frozen`) for refusing a change on a frozen backend. */
export const FROZEN_REASON = 'Modification operations are not allowed on frozen storage backends.';

/**
 * Answers the volume API's question "may a new volume go to this cluster?" from the cluster
 * record, as Cinder's scheduler does: a disabled or frozen cluster is given no new volumes, while work on
 * the volumes it already has goes on (nothing else consults this). An enabled cluster with no
 * live member still accepts: the job waits in its queue for a member. So does a cluster whose
 * record does not exist yet (no worker has joined it), since nothing has disabled it.
 *
 * An accepting answer is remembered, with the fence of the record it was read from (on etcd: the
 * record's mod revision is unchanged). The create carries that fence, so the check happens in
 * the create's own transaction and costs no request of its own; when the record changed since
 * (disabled, re-enabled, created), the create's fence fails and the caller asks again with
 * `fresh`. A refusal is never remembered: a cluster enabled again accepts at once.
 *
 * Fits the volume concern's `ClusterAdmission` port.
 */
export class MembershipClusterAdmission {
  private readonly accepted = new Map<string, Admission>();
  private readonly changesAccepted = new Map<string, Admission>();

  constructor(
    private readonly membership: Pick<Membership, 'clusterRecord'>,
    private readonly binary: string,
  ) {}

  /**
   * Failure semantics: a retryable `BackendUnavailableError` when the record cannot be read;
   * the caller must refuse the create (nothing was written).
   */
  async admitsNewVolumes(cluster: string, options: { readonly fresh?: boolean } = {}): Promise<Admission> {
    const known = options.fresh ? undefined : this.accepted.get(cluster);
    if (known) return known;
    const { record, unchanged } = await this.membership.clusterRecord(cluster, this.binary);
    if (record?.frozen) {
      this.accepted.delete(cluster);
      return { accepts: false, reason: FROZEN_REASON, frozen: true };
    }
    if (record?.disabled) {
      this.accepted.delete(cluster);
      return { accepts: false, reason: record.disabledReason ? `it is disabled (${record.disabledReason})` : 'it is disabled' };
    }
    const admission: Admission = { accepts: true, fence: unchanged };
    this.accepted.set(cluster, admission);
    return admission;
  }

  /**
   * The same for a management operation on an existing volume: refused only while the cluster is
   * frozen (Cinder's `assert_not_frozen`); remembered with its fence in the same way.
   */
  async admitsChanges(cluster: string, options: { readonly fresh?: boolean } = {}): Promise<Admission> {
    const known = options.fresh ? undefined : this.changesAccepted.get(cluster);
    if (known) return known;
    const { record, unchanged } = await this.membership.clusterRecord(cluster, this.binary);
    if (record?.frozen) {
      this.changesAccepted.delete(cluster);
      return { accepts: false, reason: FROZEN_REASON, frozen: true };
    }
    const admission: Admission = { accepts: true, fence: unchanged };
    this.changesAccepted.set(cluster, admission);
    return admission;
  }
}
