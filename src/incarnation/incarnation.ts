/**
 * The incarnation: one run of a worker host in its cluster — a session (the lease everything of
 * this run rides on), the membership it joined on that session (its alive fence and owner ref),
 * and the lock service on the same session. A lost session ends an incarnation; the next one
 * starts on a new session, and everything done from then on is done as the new one, so ops the
 * old one owned are recognisably someone else's (orphans).
 */
import type { OwnerRef } from '../identity.js';
import type { LockService } from '../locks/lock-service.js';
import type { Member } from '../membership/membership.js';
import type { Session } from '../session/session.js';

/** One incarnation: who it is, the lease it rides on, and its locks. */
export interface Incarnation {
  readonly member: Member;
  readonly session: Session;
  readonly locks: LockService;
}

/** Why an incarnation began. */
export type StartReason = 'start' | 'session-lost' | 'evicted';

/** Why an incarnation ended: its session was lost, its alive entry was taken away, or it left. */
export type EndReason = 'session-lost' | 'evicted' | 'left';

/**
 * A change of this process's incarnation. After `started` with a `previous`, the work
 * `previous` owned is an orphan of this host: run the start-up cleanup before taking new work.
 */
export type IncarnationEvent =
  | {
      readonly type: 'started';
      readonly incarnation: Incarnation;
      /** The incarnation of this process that ended just before (none at the first start). */
      readonly previous: OwnerRef | undefined;
      readonly reason: StartReason;
    }
  | { readonly type: 'ended'; readonly owner: OwnerRef; readonly reason: EndReason };

/** Where the worker, the orphan cleaner and the API find the current incarnation. */
export interface Incarnations {
  /** The live incarnation, or undefined while none is (session lost, not joined yet, left). */
  current(): Incarnation | undefined;
  /** Calls `listener` on every change; returns a function that unsubscribes. */
  subscribe(listener: (event: IncarnationEvent) => void): () => void;
}
