import type { Membership } from './membership.js';

/** Whether a cluster takes new volumes, and why not (the volume API's `Admission`). */
export type Admission = { readonly accepts: true } | { readonly accepts: false; readonly reason: string };

/**
 * Answers the volume API's question "may a new volume go to this cluster?" from the cluster
 * record, as Cinder's scheduler does: a disabled cluster is given no new volumes, while work on
 * the volumes it already has goes on (nothing else consults this). An enabled cluster with no
 * live member still accepts: the job waits in its queue for a member. So does a cluster whose
 * record does not exist yet (no worker has joined it), since nothing has disabled it.
 *
 * Fits the volume concern's `ClusterAdmission` port.
 */
export class MembershipClusterAdmission {
  constructor(
    private readonly membership: Pick<Membership, 'snapshot'>,
    private readonly binary: string,
  ) {}

  /**
   * Failure semantics: a retryable `BackendUnavailableError` when the records cannot be read;
   * the caller must refuse the create (nothing was written).
   */
  async admitsNewVolumes(cluster: string): Promise<Admission> {
    const record = (await this.membership.snapshot()).clusters.find((c) => c.name === cluster && c.binary === this.binary);
    if (!record?.disabled) return { accepts: true };
    return { accepts: false, reason: record.disabledReason ? `it is disabled (${record.disabledReason})` : 'it is disabled' };
  }
}
