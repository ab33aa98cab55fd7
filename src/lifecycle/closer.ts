import type { Logger } from '../observability/logger.js';

/** Anything that can be closed; `close()` must be idempotent. */
export interface Closeable {
  close(): Promise<void>;
}

interface Step {
  readonly name: string;
  readonly run: () => unknown;
}

/**
 * The stop order of whatever was started, by construction: each start step registers its
 * component's close as it starts it, and `close()` runs them in reverse — the last thing
 * started stops first. Before that, the `quiesce` steps run in the order they were added: the
 * things every component should hear as soon as shutdown begins (readiness off, the API stops
 * accepting, no new incarnation), whatever their place in the start order.
 *
 * `close()` runs every step once, each in its own try/catch, logs each failure, and rejects
 * with an AggregateError of them at the end. Calling it again returns the same promise.
 */
export class Closer implements Closeable, AsyncDisposable {
  private readonly quiescers: Step[] = [];
  private readonly steps: Step[] = [];
  private closing: Promise<void> | undefined;

  constructor(private readonly logger?: Logger) {}

  /** Registers a cleanup step; steps run in reverse order of `add`. */
  add(name: string, close: () => unknown): void {
    this.steps.push({ name, run: close });
  }

  /** Registers `resource` for closing and returns it: `const x = closer.use('x', new X())`. */
  use<T extends Closeable>(name: string, resource: T): T {
    this.add(name, () => resource.close());
    return resource;
  }

  /** Registers a step that runs first, in the order added, as soon as `close()` is called. */
  quiesce(name: string, run: () => unknown): void {
    this.quiescers.push({ name, run });
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
    for (const step of [...this.quiescers, ...[...this.steps].reverse()]) {
      try {
        this.logger?.debug({ step: step.name }, 'stopping');
        await step.run();
      } catch (err) {
        errors.push(err);
        this.logger?.error({ err, step: step.name }, 'shutdown step failed');
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, `${errors.length} shutdown step(s) failed`);
  }
}
