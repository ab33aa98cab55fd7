import type { OpRecord } from '../state/records.js';
import { MAX_OP_TOKEN_LENGTH } from '../routing/job-message.js';
import type { JobPublisher, PublishOpOptions, PublishOutcome } from './job-publisher.js';
import type { JobBus } from '../routing/job-bus.js';

/** Options of {@link JobBusPublisher}. */
export interface JobBusPublisherOptions {
  /**
   * Longest one publish may wait, on top of the bus's own `amqp.publishTimeoutMs` bound. The API
   * uses `min(publishTimeoutMs, 1 s)`: a request must not hang on a slow broker; the op is
   * recorded either way and the sweeper publishes it later.
   */
  readonly timeoutMs?: number;
}

/**
 * The volume API's {@link JobPublisher} over a {@link JobBus}: turns a recorded op into a job
 * (a pointer to `ops/<type>/<id>`) and publishes it to the op's cluster queue.
 *
 * Failure semantics: resolves `confirmed` only once the broker confirmed the job (in-process:
 * once it is queued). Throws what `JobBus.publish` throws — after at most `timeoutMs` (an
 * `AbortedError`) or `amqp.publishTimeoutMs` while RabbitMQ is away — and the op then stays
 * recorded and unpublished for the republish sweep, as the port requires. A publish cut short
 * by `timeoutMs` may still be confirmed later: the sweeper's copy is then a duplicate, which the
 * claim drops.
 */
export class JobBusPublisher implements JobPublisher {
  constructor(
    private readonly bus: JobBus,
    private readonly options: JobBusPublisherOptions = {},
  ) {}

  async publish(op: OpRecord, options: PublishOpOptions = {}): Promise<PublishOutcome> {
    const { signal, stored } = options;
    const bound = this.options.timeoutMs === undefined ? undefined : AbortSignal.timeout(this.options.timeoutMs);
    const signals = [signal, bound].filter((s): s is AbortSignal => s !== undefined);
    const carried = stored !== undefined && stored.length <= MAX_OP_TOKEN_LENGTH ? { op: stored as string } : {};
    await this.bus.publish(
      { type: op.type, id: op.id, opId: op.opId, kind: op.kind, cluster: op.cluster, attempt: op.attempt, ...carried },
      signals.length === 0 ? {} : { signal: signals.length === 1 ? (signals[0] as AbortSignal) : AbortSignal.any(signals) },
    );
    return 'confirmed';
  }
}
