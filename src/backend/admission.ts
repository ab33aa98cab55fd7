/**
 * The worker's capacity gate: Cinder's capacity filter on the pool its backend check last read,
 * plus what this worker admitted since that read could have seen it. A refused create or extend
 * is told to its user as Cinder's scheduler tells it: a user message `schedule allocate
 * volume` / `extend volume` with `Could not find any available weighted backend.`, followed by
 * hearth's reason.
 *
 * Failure semantics: a pool never read yet is read once now; one that cannot be read refuses
 * (Cinder's "free capacity not set" fail-safe) — the backend check marks such a member down
 * anyway. A user message that cannot be recorded is logged; the status tells the story.
 */
import type { Logger } from '../observability/logger.js';
import type { PoolReport } from '../membership/backend-report.js';
import { ACTIONS, DETAILS, type MessageInput } from '../messages/message-store.js';
import { checkCapacity } from './capacity-filter.js';
import { poolName } from './pools.js';

const GIB = 1024 ** 3;

/** What the gate is asked (the worker's `AdmissionRequest`). */
export interface CapacityRequest {
  readonly kind: 'create_volume' | 'extend_volume';
  readonly opId: string;
  readonly volumeId: string;
  readonly projectId: string;
  readonly requestedGiB: number;
}

/** What the gate reads the pool from (the backend monitor). */
export interface PoolSource {
  readonly pool: PoolReport | null;
  refreshPool(): Promise<PoolReport | null>;
}

/** Options of {@link CapacityAdmission}. */
export interface CapacityAdmissionOptions {
  readonly source: PoolSource;
  readonly cluster: string;
  /** Records a user message (stamps id and times). */
  readonly tell: (message: MessageInput) => Promise<void>;
  readonly now: () => number;
  readonly logger: Logger;
}

/** See the module doc. */
export class CapacityAdmission {
  /** Bytes admitted and not yet seen by a pool read: by op, with when its run ended. */
  private readonly pending = new Map<string, { bytes: number; endedAtMs: number | undefined }>();

  constructor(private readonly options: CapacityAdmissionOptions) {}

  async admit(request: CapacityRequest): Promise<{ readonly fits: true } | { readonly fits: false; readonly why: string }> {
    const { source, cluster } = this.options;
    const pool = source.pool ?? (await source.refreshPool());
    if (!pool) return { fits: false, why: `The capacity of cluster ${cluster} is not known: its backend could not be read.` };
    // A run that ended before this read began shows in its numbers.
    for (const [opId, p] of this.pending) if (p.endedAtMs !== undefined && p.endedAtMs <= pool.atMs) this.pending.delete(opId);
    let extra = 0;
    for (const [opId, p] of this.pending) if (opId !== request.opId) extra += p.bytes;
    const verdict = checkCapacity({ ...pool, provisionedBytes: pool.provisionedBytes + extra }, request.requestedGiB, `cluster ${poolName(cluster)}`);
    if (verdict.fits) this.pending.set(request.opId, { bytes: request.requestedGiB * GIB, endedAtMs: undefined });
    return verdict;
  }

  async refused(request: CapacityRequest, why: string): Promise<void> {
    const action = request.kind === 'create_volume' ? ACTIONS.scheduleAllocateVolume : ACTIONS.extendVolume;
    try {
      await this.options.tell({
        projectId: request.projectId,
        requestId: `req-${request.opId}`,
        resourceType: 'VOLUME',
        resourceUuid: request.volumeId,
        action,
        detail: DETAILS.noBackendAvailable,
        why,
      });
    } catch (err) {
      this.options.logger.warn({ err, volumeId: request.volumeId }, 'could not record the user message of a refused operation');
    }
  }

  finished(opId: string): void {
    const p = this.pending.get(opId);
    if (p) p.endedAtMs = this.options.now();
  }
}
