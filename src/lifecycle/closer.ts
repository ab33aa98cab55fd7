import type { Logger } from '../observability/logger.js';

/** Anything that can be closed; `close()` must be idempotent. */
export interface Closeable {
  close(): Promise<void>;
}

interface Step {
  readonly name: string;
  readonly close: () => Promise<void> | void;
}

/**
 * A last-in, first-out stack of cleanup steps. `close()` runs every step once, in reverse
 * order of `add`, each in its own try/catch, logs each failure and rejects with an
 * AggregateError of them at the end. Calling it again returns the same promise.
 */
export class Closer implements Closeable {
  private readonly steps: Step[] = [];
  private closing: Promise<void> | undefined;

  constructor(private readonly logger?: Logger) {}

  /** Registers a cleanup step; steps run in reverse order. */
  add(name: string, close: () => Promise<void> | void): void {
    this.steps.push({ name, close });
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.closing !== undefined;
  }

  close(): Promise<void> {
    this.closing ??= this.run();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async run(): Promise<void> {
    const errors: unknown[] = [];
    for (const step of this.steps.reverse()) {
      try {
        await step.close();
      } catch (err) {
        errors.push(err);
        this.logger?.error({ err, step: step.name }, 'shutdown step failed');
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, `${errors.length} shutdown step(s) failed`);
  }
}
