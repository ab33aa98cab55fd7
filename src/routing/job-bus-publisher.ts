import type { OpRecord } from '../state/records.js';
import type { JobPublisher, PublishOutcome } from '../volumes/job-publisher.js';
import type { JobBus } from './job-bus.js';

/**
 * The volume API's {@link JobPublisher} over a {@link JobBus}: turns a recorded op into a job
 * (a pointer to `ops/<type>/<id>`) and publishes it to the op's cluster queue.
 *
 * Failure semantics: resolves `confirmed` only once the broker confirmed the job (in-process:
 * once it is queued). Throws what `JobBus.publish` throws — after at most
 * `amqp.publishTimeoutMs` while RabbitMQ is away — and the op then stays recorded and
 * unpublished for the republish sweep, as the port requires.
 */
export class JobBusPublisher implements JobPublisher {
  constructor(private readonly bus: JobBus) {}

  async publish(op: OpRecord, signal?: AbortSignal): Promise<PublishOutcome> {
    await this.bus.publish(
      { type: op.type, id: op.id, opId: op.opId, kind: op.kind, cluster: op.cluster, attempt: op.attempt },
      signal ? { signal } : {},
    );
    return 'confirmed';
  }
}
