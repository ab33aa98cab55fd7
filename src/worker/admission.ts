/**
 * The gate a create or an extend passes before its driver call: does the pool have room for
 * it? (`backend/admission.ts` implements it with Cinder's capacity filter.) A refusal is
 * Cinder's scheduler's answer, made by the worker that would have run it: the create ends in
 * `error`, the extend returns the volume to its previous status, a user message says why, and
 * nothing was allocated on the backend.
 */
import type { Logger } from '../observability/logger.js';
import type { OpRecord, ResourceRecord, VolumeRecord } from '../state/records.js';
import { newSizeOf } from './plan.js';

/** What the gate is asked. */
export interface AdmissionRequest {
  readonly kind: 'create_volume' | 'extend_volume';
  readonly opId: string;
  readonly volumeId: string;
  readonly projectId: string;
  /** The new volume's size, or for an extend the increase, in GiB. */
  readonly requestedGiB: number;
}

/** The gate's answer. */
export type AdmissionVerdict = { readonly fits: true } | { readonly fits: false; readonly why: string };

/** See the module doc. */
export interface Admission {
  /** Whether the request fits; one that fits is counted against the pool until {@link finished}. */
  admit(request: AdmissionRequest): Promise<AdmissionVerdict>;
  /** Tells the user (a user message) that `request` was refused, and why. Never throws. */
  refused(request: AdmissionRequest, why: string): Promise<void>;
  /** The op's run ended: what it was admitted for shows in the pool's next reading. */
  finished(opId: string): void;
}

/** The admission request of an op, or undefined for a kind the gate does not look at. */
export function admissionRequestOf(op: Pick<OpRecord, 'kind' | 'opId' | 'params'>, record: VolumeRecord): AdmissionRequest | undefined {
  if (op.kind === 'create_volume') return { kind: op.kind, opId: op.opId, volumeId: record.id, projectId: record.project_id, requestedGiB: record.size };
  if (op.kind === 'extend_volume') {
    const oldSize = typeof op.params.oldSize === 'number' ? op.params.oldSize : record.size;
    return { kind: op.kind, opId: op.opId, volumeId: record.id, projectId: record.project_id, requestedGiB: Math.max(0, newSizeOf(op) - oldSize) };
  }
  return undefined;
}

/**
 * Asks `admission` about a create or an extend of a volume; true when it was refused (the user
 * has been told why). Other kinds always pass.
 */
export async function refusedForCapacity(admission: Admission, op: OpRecord, record: ResourceRecord, log: Logger): Promise<boolean> {
  if (op.type !== 'volume') return false;
  const request = admissionRequestOf(op, record as VolumeRecord);
  if (!request) return false;
  const verdict = await admission.admit(request);
  if (verdict.fits) return false;
  log.warn({ requestedGiB: request.requestedGiB, why: verdict.why }, 'no room in the pool: refusing the operation; nothing allocated');
  await admission.refused(request, verdict.why);
  return true;
}
