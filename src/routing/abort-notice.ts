/**
 * The notice that asks the owner of an operation to abort its run: a force-delete replaced the
 * operation, so whatever the run does from now on is wasted — and until it stops, the delete
 * waits (docs/state.md#force-delete). Sent on the cluster's notice fanout (best effort: the
 * worker that takes the force-delete sends it again), heard by every member; the member that
 * runs `opId` aborts it, the others ignore it.
 */
import type { NoticeInput } from './job-bus.js';
import type { Notice } from './job-message.js';

/** The notice type. */
export const ABORT_OPERATION = 'abort-operation';

/** What an abort notice names. */
export interface AbortRequest {
  readonly type: 'volume' | 'snapshot';
  readonly id: string;
  /** The op to abort. */
  readonly opId: string;
  /** Why, for the owner's log. */
  readonly reason: string;
}

/** The notice asking to abort `request.opId`. */
export function abortNotice(request: AbortRequest): NoticeInput {
  return { type: ABORT_OPERATION, data: { ...request } };
}

/** The abort request a notice carries, or undefined for any other (or a malformed) notice. */
export function abortRequestOf(notice: Notice): AbortRequest | undefined {
  if (notice.type !== ABORT_OPERATION) return undefined;
  const { type, id, opId, reason } = notice.data;
  if ((type !== 'volume' && type !== 'snapshot') || typeof id !== 'string' || typeof opId !== 'string') return undefined;
  return { type, id, opId, reason: typeof reason === 'string' ? reason : 'abort requested' };
}
