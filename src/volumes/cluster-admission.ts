/** Whether a cluster takes new volumes, and why not. */
export type Admission = { readonly accepts: true } | { readonly accepts: false; readonly reason: string };

/**
 * The ClusterAdmission port: asked before a volume is created in a cluster. The membership
 * concern implements it from the cluster record (disabled clusters take no new volumes, as in
 * Cinder); until then every cluster accepts.
 */
export interface ClusterAdmission {
  admitsNewVolumes(cluster: string): Promise<Admission>;
}

/** Every cluster accepts new volumes. */
export const ADMIT_ALL: ClusterAdmission = {
  admitsNewVolumes: async () => ({ accepts: true }),
};
