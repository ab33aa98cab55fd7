import type { JobSubscription } from './job-bus.js';

/**
 * One {@link JobSubscription} over several: a member consumes the queues of every message
 * version it reads, each through its own subscription, and drains them as one.
 */
export class JointSubscription implements JobSubscription {
  constructor(private readonly parts: readonly JobSubscription[]) {}

  get active(): boolean {
    return this.parts.some((p) => p.active);
  }

  get inFlight(): number {
    return this.parts.reduce((n, p) => n + p.inFlight, 0);
  }

  async cancel(): Promise<void> {
    await Promise.all(this.parts.map((p) => p.cancel()));
  }

  async idle(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    await Promise.all(this.parts.map((p) => p.idle(options)));
  }
}
