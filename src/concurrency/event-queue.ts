/**
 * A single-consumer queue exposed as an `AsyncIterable`: producers `push`, the consumer
 * iterates; iteration ends when the queue is ended or the signal aborts, and rejects when the
 * producer fails it.
 */
export class EventQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiter: { resolve: () => void } | undefined;
  private ended = false;
  private failure: { error: unknown } | undefined;

  constructor(signal?: AbortSignal) {
    signal?.addEventListener('abort', () => this.end(), { once: true });
    if (signal?.aborted) this.end();
  }

  /** Adds an item; ignored after the queue ended. */
  push(item: T): void {
    if (this.ended) return;
    this.items.push(item);
    this.wake();
  }

  /** Ends iteration once the queued items are consumed. Idempotent. */
  end(): void {
    this.ended = true;
    this.wake();
  }

  /** Ends iteration with an error, after the queued items. */
  fail(error: unknown): void {
    if (this.ended) return;
    this.failure = { error };
    this.end();
  }

  get closed(): boolean {
    return this.ended;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.resolve();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    try {
      for (;;) {
        const item = this.items.shift();
        if (item !== undefined) {
          yield item;
          continue;
        }
        if (this.ended) {
          if (this.failure) throw this.failure.error;
          return;
        }
        await new Promise<void>((resolve) => (this.waiter = { resolve }));
      }
    } finally {
      // The consumer stopped early (break/return): nothing more will be read.
      this.ended = true;
    }
  }
}
