import { isRetryable, messageOf } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { type Disposition, dispositions, type JobDelivery } from '../routing/job-bus.js';
import type { CleanupMessage } from '../routing/job-message.js';
import type { OrphanCleaner } from './cleaner.js';

/** What {@link cleanupHandler} needs. */
export interface CleanupHandlerOptions {
  readonly cleaner: Pick<OrphanCleaner, 'find' | 'claimAll' | 'finishInBackground'>;
  /** True while this worker is a live member that may take work over. */
  readonly live: () => boolean;
  readonly logger: Logger;
  /** Pause before a request that hit an unreachable store is delivered again. */
  readonly retryDelayMs?: number;
}

/**
 * The worker's handler of `cleanup` messages (one `workers/cleanup` request for one service),
 * Cinder's `do_cleanup`: list the service's orphans in this cluster (only the resource named,
 * if any), claim each — one write proving its owner dead, so exactly one cleaner wins — then
 * acknowledge, and run the cleanup actions after that. Claim first, then ack, as for jobs: an
 * orphan claimed is this incarnation's, so the request is not needed any more; if this process
 * dies before finishing, those ops are orphans again (of this host now) and nothing is lost.
 *
 * Failure semantics: not a live member (session lost) → `requeue`, another member takes it;
 * the store unreachable while listing → `retry-later`; a request this worker can never serve
 * (a bug) → dead-lettered with the reason. Claims that fail are counted and logged, the others
 * go on; a duplicate delivery finds nothing left to claim.
 */
export function cleanupHandler(options: CleanupHandlerOptions): (delivery: JobDelivery<CleanupMessage>) => Promise<Disposition> {
  return async (delivery) => {
    const request = delivery.job;
    const log = options.logger.child({ requestId: request.requestId, host: request.host, cluster: request.cluster });
    if (!options.live()) return dispositions.requeue();
    let claimed;
    try {
      const orphans = await options.cleaner.find({
        ownerHost: request.host,
        cluster: request.cluster,
        ...(request.resourceType === undefined ? {} : { resourceType: request.resourceType }),
        ...(request.resourceId === undefined ? {} : { resourceId: request.resourceId }),
      });
      const result = await options.cleaner.claimAll(orphans, 'cleanup');
      claimed = result.claimed;
      log.info({ resourceId: request.resourceId, ...result.report, claimed: claimed.length, deliveryCount: delivery.deliveryCount }, 'work cleanup request taken');
    } catch (err) {
      if (isRetryable(err)) {
        log.warn({ err }, 'could not list the orphans to clean; retrying the request later');
        return dispositions.retryLater(options.retryDelayMs ?? 2_000);
      }
      log.error({ err }, 'cleanup request failed');
      return dispositions.deadLetter(`cleanup of ${request.host} failed: ${messageOf(err)}`);
    }
    options.cleaner.finishInBackground(claimed);
    return dispositions.ack();
  };
}
