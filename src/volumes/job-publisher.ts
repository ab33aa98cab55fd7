import type { OpRecord } from '../state/records.js';
import type { StoredOp } from '../state/state-store.js';

/** Options of {@link JobPublisher.publish}. */
export interface PublishOpOptions {
  readonly signal?: AbortSignal;
  /** The op as the store wrote it (`TransitionResult.stored`): the job carries it, so the worker's claim needs no read. */
  readonly stored?: StoredOp;
}

/** What became of a publish: the broker confirmed it, or it was left for later. */
export type PublishOutcome = 'confirmed' | 'deferred';

/**
 * The JobPublisher port: hands an op that the API recorded to the workers of its cluster.
 * The routing concern implements it over RabbitMQ (publisher confirms) and in-process.
 *
 * `confirmed` means the job is durably queued; the API then stamps the op's `publishedAt` (in a
 * batch, a little later: see `PublishStamps`).
 * `deferred` means it was not published now; the op stays queued and unpublished, and the
 * republish sweep (`listOps({ unpublishedBefore })`) publishes it later.
 *
 * Failure semantics: a publish that throws (broker unreachable, confirm timeout) leaves the op
 * recorded and unpublished, exactly like `deferred`; the API request still succeeds, because
 * the op record, not the message, is the source of truth.
 */
export interface JobPublisher {
  publish(op: OpRecord, options?: PublishOpOptions): Promise<PublishOutcome>;
}

/** Publishes nothing: every op waits, queued, for a sweep or a bus to pick it up. */
export class QueueOnlyJobPublisher implements JobPublisher {
  async publish(): Promise<PublishOutcome> {
    return 'deferred';
  }
}
