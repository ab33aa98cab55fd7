import type { ClusterClient } from './orphans-cluster.js';

/** One volume create the stream made: when it was asked, when it was seen `available`. */
export interface StreamOp {
  readonly id: string;
  readonly askedAt: number;
  readonly doneAt: number;
}

/**
 * Client loops that keep creating volumes through the API and wait for each to be `available`
 * (polled every 100 ms): a steady load during a fault, from which the stall (the longest time
 * no operation completed) is measured. A request the API refuses is recorded in `refused`, not
 * retried.
 */
export class OpStream {
  readonly done: StreamOp[] = [];
  readonly refused: string[] = [];
  /** Creates that were accepted but never seen `available` in time. */
  readonly failures: string[] = [];
  private stopping = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly client: ClusterClient,
    private readonly lanes: number,
    /** Bound of one create, from the request to `available`. */
    private readonly opTimeoutMs = 120_000,
  ) {}

  start(): this {
    this.loops = Array.from({ length: this.lanes }, () => this.loop());
    return this;
  }

  /** Waits until `count` creates completed after `since` (epoch ms). */
  async completedAfter(since: number, count: number, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.done.filter((o) => o.doneAt > since).length < count) {
      if (Date.now() > deadline) throw new Error(`only ${this.done.filter((o) => o.doneAt > since).length} of ${count} creates completed within ${timeoutMs} ms after the fault (refused: ${this.refused.join('; ') || 'none'})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Stops asking; waits for the creates in flight to finish. Throws if one never completed. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
    if (this.failures.length > 0) throw new Error(`creates that did not complete: ${this.failures.join('; ')}`);
  }

  /**
   * The longest stretch without a completion that starts at or after `since`: from `since` (or
   * a completion after it) to the next completion, over the completions up to the `count`-th
   * after `since`. Milliseconds.
   */
  stallAfter(since: number, count = 3): number {
    const times = this.done
      .map((o) => o.doneAt)
      .filter((t) => t > since)
      .sort((a, b) => a - b)
      .slice(0, count);
    let previous = since;
    let longest = 0;
    for (const t of times) {
      longest = Math.max(longest, t - previous);
      previous = t;
    }
    return longest;
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      const askedAt = Date.now();
      let id: string;
      try {
        id = await this.client.createVolume(1);
      } catch (err) {
        this.refused.push((err as Error).message);
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      try {
        await this.client.waitStatus('volume', id, 'available', this.opTimeoutMs);
      } catch (err) {
        this.failures.push(`${id}: ${(err as Error).message}`);
        return;
      }
      this.done.push({ id, askedAt, doneAt: Date.now() });
    }
  }
}
