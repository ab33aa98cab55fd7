/**
 * The two places where work of a dead incarnation moves to another member, and the fence each
 * waits for: a lock hand-off (a waiter whose predecessor, the owner, vanished) and an orphan
 * takeover. Both ask the fence runner for the fence and wait for the end on record.
 */
import type { Fence } from '../fence.js';
import type { OwnerRef } from '../identity.js';
import type { LockHolder } from '../locks/errors.js';
import type { Membership } from '../membership/membership.js';
import type { Logger } from '../observability/logger.js';
import type { FenceRunner } from './runner.js';

/** What the gates read and ask. */
export interface FenceGateOptions {
  readonly membership: Pick<Membership, 'incarnation' | 'waitEnded' | 'ended'>;
  readonly runner: Pick<FenceRunner, 'need'>;
  readonly logger: Logger;
}

/** See the module doc. */
export interface FenceGates {
  /**
   * Resolves once taking a lock over from `previousOwner` (its key is gone) is safe: at once,
   * with nothing, when it released while alive; with the guard of its end record once that is
   * there (at once when it is already; else once it is fenced).
   *
   * Failure semantics: rejects with the abort reason when `signal` aborts (the acquire times out
   * or its session ends); a fence that keeps failing keeps it waiting.
   */
  handOff(previousOwner: LockHolder, signal: AbortSignal): Promise<Fence | undefined>;
  /** Asks for the fence of a dead owner and waits for it (bounded by `signal`); true once it is on record. */
  awaitFence(owner: OwnerRef, cluster: string, signal: AbortSignal): Promise<boolean>;
}

const hostOf = (incarnation: string): string => incarnation.slice(0, incarnation.lastIndexOf(':'));

/** The gates over membership's records and a fence runner. */
export function fenceGates(options: FenceGateOptions): FenceGates {
  const { membership, runner, logger } = options;
  return {
    async handOff(previousOwner, signal) {
      const incarnation = previousOwner.incarnation;
      // A holder hearth did not write (`etcdctl lock`) names no incarnation: nothing to fence.
      if (incarnation === undefined) return undefined;
      const view = await membership.incarnation(incarnation);
      // Released while alive: the hand-off is safe as it is.
      if (view.alive) return undefined;
      if (!view.end) {
        logger.info({ incarnation, lock: previousOwner.key }, 'a lock held by a dead incarnation waits for its fence');
        await runner.need({ incarnation, host: hostOf(incarnation), cluster: view.record?.cluster ?? '' }, true);
        await membership.waitEnded(incarnation, signal);
      }
      return membership.ended(incarnation);
    },
    async awaitFence(owner, cluster, signal) {
      await runner.need({ incarnation: owner.incarnation, host: owner.host, cluster });
      try {
        await membership.waitEnded(owner.incarnation, signal);
        return true;
      } catch {
        return false;
      }
    },
  };
}
