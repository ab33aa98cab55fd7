import type { Membership } from './membership.js';
import { buildClusterViews, findCluster } from './views.js';

/** Whether a cluster takes new volumes; a refusal says why, for the API's error message. */
export type ClusterAdmission =
  | { readonly ok: true; readonly up: boolean }
  | { readonly ok: false; readonly reason: 'unknown' | 'disabled'; readonly message: string };

/**
 * Answers the volume API's question "may a new volume go to this cluster?" from the cluster
 * record, as Cinder's scheduler does: a disabled cluster is given no new volumes, while work on
 * the volumes it already has goes on (nothing else consults this). A cluster that is enabled
 * but has no live member still accepts: the job waits in its queue for a member.
 */
export class MembershipClusterStatus {
  constructor(
    private readonly membership: Pick<Membership, 'snapshot'>,
    private readonly binary: string,
  ) {}

  /**
   * Failure semantics: a retryable `BackendUnavailableError` when the records cannot be read;
   * the caller must refuse the create (nothing was written).
   */
  async acceptsNewVolumes(cluster: string, signal?: AbortSignal): Promise<ClusterAdmission> {
    const view = findCluster(buildClusterViews(await this.membership.snapshot(signal)), cluster, this.binary);
    if (!view) return { ok: false, reason: 'unknown', message: `Cluster ${cluster} could not be found.` };
    if (view.disabled) {
      const why = view.disabledReason ? ` (${view.disabledReason})` : '';
      return { ok: false, reason: 'disabled', message: `Cluster ${cluster} is disabled${why}: it takes no new volumes.` };
    }
    return { ok: true, up: view.up };
  }
}
