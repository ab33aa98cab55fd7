import { AbortedError } from '../errors.js';
import type { Fence } from '../fence.js';
import type { Session, SessionStateChange } from '../session/session.js';
import { LockLostError } from './errors.js';
import type { LockKeys } from './etcd-lock-ops.js';
import type { LockHandle, LockState, LockStateChange } from './lock-service.js';
import type { HeldLock } from './metrics.js';

/** The part of the service a handle calls back into. */
interface HandleOwner {
  released(handle: EtcdLockHandle, keys: LockKeys, slot: { readonly name: string }): Promise<void>;
  /** The key is gone with a write that carried the releasing fence: nothing to delete. */
  releasedByWrite(handle: EtcdLockHandle, slot: { readonly name: string }): void;
  lost(handle: EtcdLockHandle, slot: { readonly name: string }): void;
}

/**
 * A lock held on etcd. Its state follows the session's (`held`/`jeopardy`/`lost`) until it is
 * released; reading `state`, `signal` or `fence.holds()` re-reads the session's clock, so a
 * lock whose lease passed `safeUntil` during a stalled event loop reads `lost` at once.
 */
export class EtcdLockHandle implements LockHandle {
  readonly name: string;
  readonly key: string;
  readonly fence: Fence;
  readonly releasingFence: Fence;
  /** Made when someone asks for the signal (errors capture a stack; most holders never ask). */
  private controller: AbortController | undefined;
  private readonly listeners = new Set<(change: LockStateChange) => void>();
  private ended: 'lost' | 'released' | undefined;
  /** The last live state reported, for `previous` in changes. */
  private last: 'held' | 'jeopardy' = 'held';
  private releasing: Promise<void> | undefined;

  constructor(
    private readonly owner: HandleOwner,
    private readonly session: Session,
    private readonly keys: LockKeys,
    readonly createRevision: string,
    private readonly slot: { readonly name: string },
    readonly type: string,
    readonly acquiredAt: number,
    /** Its entry in the lock metrics, if any. */
    readonly held: HeldLock | undefined,
  ) {
    this.name = keys.name;
    this.key = keys.myKey;
    this.fence = {
      guards: [{ key: keys.myKey, createRevision, expect: 'equal' }],
      holds: () => {
        const state = this.state;
        return state === 'held' || state === 'jeopardy';
      },
      description: `lock ${keys.name} rev ${createRevision}`,
    };
    this.releasingFence = { ...this.fence, guards: [{ key: keys.myKey, createRevision, expect: 'equal', releaseWithWrite: true }] };
  }

  get state(): LockState {
    if (this.ended) return this.ended;
    const session = this.session.state; // re-reads the clock; may end this handle through sessionChanged
    if (this.ended) return this.ended;
    if (session === 'held' || session === 'jeopardy') return session;
    this.lose();
    return 'lost';
  }

  get signal(): AbortSignal {
    void this.state;
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.ended) this.controller.abort(this.reason());
    }
    return this.controller.signal;
  }

  onStateChange(listener: (change: LockStateChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  release(): Promise<void> {
    if (this.releasing) return this.releasing;
    if (this.ended === 'lost') return (this.releasing = Promise.resolve());
    this.finish('released');
    this.releasing = this.owner.released(this, this.keys, this.slot);
    return this.releasing;
  }

  releasedByWrite(): void {
    if (this.releasing) return;
    this.releasing = Promise.resolve();
    // Lost meanwhile: the service let the slot go already; the key went with the write anyway.
    if (this.ended === 'lost') return;
    this.finish('released');
    this.owner.releasedByWrite(this, this.slot);
  }

  /** @internal The session changed state. */
  sessionChanged(change: SessionStateChange): void {
    if (this.ended) return;
    if (change.state === 'lost' || change.state === 'closed') {
      this.lose();
      return;
    }
    if (change.state === this.last) return;
    const previous = this.last;
    this.last = change.state;
    this.emit(change.state, previous, change.at);
  }

  private lose(): void {
    if (this.ended) return;
    this.finish('lost');
    this.owner.lost(this, this.slot);
  }

  private reason(): Error {
    return this.ended === 'lost'
      ? new LockLostError(this.name, `lock ${this.name} lost: session ${this.session.incarnation} is ${this.session.state}`)
      : new AbortedError(`lock ${this.name}: released`);
  }

  private finish(state: 'lost' | 'released'): void {
    this.ended = state;
    const previous = this.last;
    this.controller?.abort(this.reason());
    this.emit(state, previous, Date.now());
  }

  private emit(state: LockState, previous: LockState, at: number): void {
    for (const listener of this.listeners) listener({ state, previous, at });
  }
}
