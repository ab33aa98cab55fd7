import type { Fence } from '../fence.js';

/**
 * Whether a cluster takes new volumes, and why not. An accepting answer may carry a fence that
 * holds while what it was decided on (the cluster record) is unchanged: the create carries it, so
 * the admission is checked in the create's own write — an answer remembered from an earlier
 * read costs no request, and a cluster disabled since fails the create's fence.
 */
export type Admission = { readonly accepts: true; readonly fence?: Fence } | { readonly accepts: false; readonly reason: string; readonly frozen?: boolean };

/**
 * The ClusterAdmission port: asked before a volume is created in a cluster, and before any other
 * management operation is recorded. The membership concern implements it from the cluster record
 * (disabled clusters take no new volumes, as in Cinder; frozen ones no management operation at
 * all, `frozen: true`); until then every cluster accepts.
 */
export interface ClusterAdmission {
  /** `fresh`: decide on a new read, not on an answer remembered (the last one's fence failed). */
  admitsNewVolumes(cluster: string, options?: { readonly fresh?: boolean }): Promise<Admission>;
  /** Whether a management operation (delete, extend, snapshot, attachment change) may be recorded: not while frozen. */
  admitsChanges(cluster: string, options?: { readonly fresh?: boolean }): Promise<Admission>;
}

/** Every cluster accepts new volumes. */
export const ADMIT_ALL: ClusterAdmission = {
  admitsNewVolumes: async () => ({ accepts: true }),
  admitsChanges: async () => ({ accepts: true }),
};
