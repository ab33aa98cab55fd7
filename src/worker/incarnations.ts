/**
 * The incarnation the worker acts as: its membership (alive fence, owner ref) and the lock
 * service on its session. A lost session ends an incarnation; the membership supervisor then
 * starts a new one on a new session, and everything the worker does from then on is done as the
 * new one — ops the old one owned are recognisably someone else's (orphans).
 */
import type { OwnerRef } from '../identity.js';
import type { LockService } from '../locks/lock-service.js';
import type { Member } from '../membership/membership.js';
import type { IncarnationEvent } from '../membership/supervisor.js';
import type { Logger } from '../observability/logger.js';
import type { Session } from '../session/session.js';

/** One incarnation: who it is, and its locks. */
export interface Incarnation {
  readonly member: Member;
  readonly locks: LockService;
}

/** Why an incarnation began. */
export type StartReason = 'start' | 'session-lost' | 'evicted';

/** A change of the worker's incarnation. */
export type IncarnationChange =
  | {
      readonly type: 'started';
      readonly incarnation: Incarnation;
      /** The incarnation of this process that ended just before (none at the first start). */
      readonly previous: OwnerRef | undefined;
      readonly reason: StartReason;
    }
  | { readonly type: 'ended'; readonly owner: OwnerRef; readonly reason: 'session-lost' | 'evicted' | 'left' };

/** Where the worker finds its current incarnation and hears of new ones. */
export interface Incarnations {
  /** The live incarnation, or undefined while none is (session lost, not joined yet, left). */
  current(): Incarnation | undefined;
  /** Calls `listener` on every change; returns a function that unsubscribes. */
  subscribe(listener: (change: IncarnationChange) => void): () => void;
}

/** What {@link SupervisedIncarnations} needs. */
export interface SupervisedIncarnationsOptions {
  /** The membership supervisor (subscribe before it starts, to see the first incarnation). */
  readonly supervisor: {
    readonly member: Member | undefined;
    subscribe(listener: (event: IncarnationEvent) => void): () => void;
  };
  /** The lock service of a session (one per incarnation). */
  readonly lockServiceFor: (session: Session) => LockService;
  readonly logger: Logger;
}

/**
 * {@link Incarnations} over the membership supervisor: a lock service per incarnation, made when
 * the incarnation starts and closed when it ends (its locks died with the session anyway).
 * Subscribe it before the supervisor starts.
 */
export class SupervisedIncarnations implements Incarnations {
  private readonly locks = new Map<string, LockService>();
  private readonly listeners = new Set<(change: IncarnationChange) => void>();
  private readonly unsubscribe: () => void;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: SupervisedIncarnationsOptions) {
    this.unsubscribe = options.supervisor.subscribe((event) => this.onEvent(event));
  }

  current(): Incarnation | undefined {
    const member = this.options.supervisor.member;
    const locks = member && this.locks.get(member.owner.incarnation);
    return member && locks ? { member, locks } : undefined;
  }

  subscribe(listener: (change: IncarnationChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Closes every lock service (releasing what they hold) and stops listening. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.unsubscribe();
      const services = [...this.locks.values()];
      this.locks.clear();
      await Promise.allSettled(services.map((s) => s.close()));
    })();
    return this.closing;
  }

  private onEvent(event: IncarnationEvent): void {
    if (this.closing) return;
    if (event.type === 'incarnation-started') {
      this.locks.set(event.owner.incarnation, this.options.lockServiceFor(event.session));
      const incarnation = this.current();
      if (incarnation) this.emit({ type: 'started', incarnation, previous: event.previous, reason: event.reason });
      return;
    }
    const services = this.locks.get(event.owner.incarnation);
    this.locks.delete(event.owner.incarnation);
    services?.close().catch((err: unknown) => this.options.logger.warn({ err }, 'closing the lock service of an ended incarnation failed'));
    this.emit({ type: 'ended', owner: event.owner, reason: event.reason });
  }

  private emit(change: IncarnationChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (err) {
        this.options.logger.error({ err, change: change.type }, 'incarnation listener failed');
      }
    }
  }
}
