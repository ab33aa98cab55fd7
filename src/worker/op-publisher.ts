import type { Clock } from '../lifecycle/clock.js';
import type { Logger } from '../observability/logger.js';
import type { JobBus } from '../routing/job-bus.js';
import type { OpRecord } from '../state/records.js';
import type { StateStore } from '../state/state-store.js';

/** What an {@link OpPublisher} needs. */
export interface OpPublisherOptions {
  readonly bus: Pick<JobBus, 'publish'>;
  readonly store: Pick<StateStore, 'updateOp'>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Bound of one publish (the bus's own bound applies too). */
  readonly timeoutMs: number;
}

/**
 * Publishes a queued op's job from the worker side (the sweeper, a hand-back) and stamps the
 * op's `publishedAt` once the broker confirmed it, as the API does after recording an op (the
 * stamp expects the op still queued with the `publishedAt` it was read with).
 *
 * Failure semantics: never throws. A publish that fails or passes `timeoutMs` is logged and
 * leaves `publishedAt` null, so the next sweep tries again (it may still have been enqueued: a
 * duplicate is dropped by the claim). A stamp that finds the op changed (claimed already) is
 * harmless and skipped.
 */
export class OpPublisher {
  constructor(private readonly options: OpPublisherOptions) {}

  /** Resolves true when the broker confirmed the job. */
  async publish(op: OpRecord, signal?: AbortSignal): Promise<boolean> {
    const { bus, store, clock, logger } = this.options;
    const bound = AbortSignal.timeout(this.options.timeoutMs);
    try {
      await bus.publish(
        { type: op.type, id: op.id, opId: op.opId, kind: op.kind, cluster: op.cluster, attempt: op.attempt },
        { signal: signal ? AbortSignal.any([signal, bound]) : bound },
      );
    } catch (err) {
      logger.warn({ resource: op.type, id: op.id, opId: op.opId, err }, 'publishing a queued op failed; the sweeper will retry');
      return false;
    }
    try {
      const marked = await store.updateOp({ type: op.type, id: op.id }, { expect: { opId: op.opId, owner: null, publishedAt: op.publishedAt }, set: { publishedAt: clock.now() } });
      if (!marked.ok) logger.debug({ opId: op.opId, failed: marked.failed }, 'op changed before it was marked published');
    } catch (err) {
      logger.debug({ opId: op.opId, err }, 'could not mark the op published; a sweep may publish it again');
    }
    return true;
  }
}
