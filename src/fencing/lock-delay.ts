import type { Clock } from '../lifecycle/clock.js';
import type { FenceMethod, FenceOutcome, FenceTarget } from './method.js';

/**
 * `fencing.method: none`: no fence, only a lock-delay (Chubby's): an incarnation counts as
 * fenced `lockDelayMs` after its death, on the assumption that a process frozen for that long
 * has been stopped by then. It cannot protect against a freeze longer than the delay.
 */
export class LockDelayFence implements FenceMethod {
  readonly name = 'lock-delay';

  constructor(
    private readonly lockDelayMs: number,
    private readonly clock: Clock,
  ) {}

  async fence(target: FenceTarget): Promise<FenceOutcome> {
    const left = target.diedAtMs + this.lockDelayMs - this.clock.now();
    if (left <= 0) return { fenced: true, detail: `lock-delay of ${this.lockDelayMs} ms since its death passed` };
    return { fenced: false, reason: `lock-delay: ${left} ms to go`, retryAfterMs: left, pending: true };
  }
}
