import { performance } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from '../observability/logger.js';

/**
 * Gives memory back once a burst is over. V8 collects when allocation needs it, not when a
 * process goes quiet: after a burst (a walk over every volume, thousands of creates) the old
 * generation holds tens of MB of garbage and the young generation stays grown to its maximum
 * (2 × 16 MB semi-spaces), until V8's own memory reducer gets to it — often not within a
 * minute, and for a process that idles, not at all. The resident set then says 2× the idle
 * figure though the live heap is back where it was.
 *
 * So: every `intervalMs`, when the event loop was quiet over the last interval
 * (`eventLoopUtilization` below `quietUtilization`) and the heap holds more than
 * `garbageBytes` beyond what the last collection left (or the young generation is grown), run
 * one major collection, concurrently (`execution: 'async'`), and then one at each of the next
 * `followUps` quiet checks: the first frees the garbage, the next ones compact the old
 * generation's pages it left half empty and give them back, and shrink the young generation
 * once V8 sees the allocation rate low (as V8's own memory reducer does, sooner). A busy process
 * is left to V8: nothing runs while requests or operations keep the loop busy.
 *
 * The collection function is V8's own (`--expose-gc`), enabled from inside the process so that
 * a deployment needs no flag. Where it cannot be had, the collector does nothing.
 */
export class QuietCollector {
  private readonly gc: GcFunction | undefined;
  private timer: NodeJS.Timeout | undefined;
  private baselineBytes = 0;
  private running = false;
  private collections = 0;
  /** Collections still due after the last burst, at the next quiet checks. */
  private pending = 0;

  /** `probes` replace the heap and event-loop readings, for tests. */
  constructor(
    private readonly options: QuietCollectorOptions,
    private readonly probes: { readonly heap: () => HeapSample; readonly loopUtilization: () => number } = { heap: heapSample, loopUtilization: eventLoopMeter() },
  ) {
    this.gc = options.gc ?? exposedGc(options.logger);
  }

  /** Starts checking every `intervalMs`; the timer does not keep the process alive. */
  start(): void {
    if (!this.gc || this.timer) return;
    this.baselineBytes = this.probes.heap().usedBytes;
    this.probes.loopUtilization();
    this.timer = setInterval(() => void this.check(), this.options.intervalMs);
    this.timer.unref();
  }

  /** How many collections it ran. */
  get count(): number {
    return this.collections;
  }

  /** One check (public for tests): collects when {@link shouldCollect} says so, or a follow-up is due and the loop is quiet. */
  async check(): Promise<boolean> {
    const gc = this.gc;
    if (!gc || this.running) return false;
    const quiet = this.probes.loopUtilization();
    const heap = this.probes.heap();
    if (quiet >= this.options.quietUtilization) return false;
    const burst = shouldCollect({ utilization: quiet, ...heap, baselineBytes: this.baselineBytes }, this.options);
    if (!burst && this.pending === 0) return false;
    this.pending = burst ? this.options.followUps : this.pending - 1;
    this.running = true;
    try {
      await gc({ type: 'major', execution: 'async' });
      this.collections++;
      const after = this.probes.heap();
      this.options.logger.debug({ beforeBytes: heap.usedBytes, afterBytes: after.usedBytes, newSpaceBytes: after.newSpaceBytes }, 'collected garbage while quiet');
      this.baselineBytes = after.usedBytes;
      return true;
    } catch (err) {
      this.options.logger.debug({ err }, 'could not collect garbage while quiet');
      return false;
    } finally {
      this.running = false;
      // The collection's own work is not the application's: the next interval starts after it.
      this.probes.loopUtilization();
    }
  }

  /** Stops checking. Idempotent. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** What {@link QuietCollector} needs. */
export interface QuietCollectorOptions {
  readonly logger: Logger;
  /** How often it looks. */
  readonly intervalMs: number;
  /** Event-loop utilization (0–1) over an interval below which the process counts as quiet. */
  readonly quietUtilization: number;
  /** Heap growth since the last collection worth a collection. */
  readonly garbageBytes: number;
  /** A young generation larger than this is worth a collection (it shrinks when quiet). */
  readonly newSpaceBytes: number;
  /** Collections after the one a burst triggered, one per quiet check (compaction, shrinking). */
  readonly followUps: number;
  /** The collection function; V8's own (exposed from inside the process) by default. */
  readonly gc?: GcFunction;
}

/** The defaults: a look every 2 s; quiet under 5 % busy; 8 MiB of garbage or a young generation over 4 MiB; two follow-ups. */
export const QUIET_COLLECTOR_DEFAULTS = { intervalMs: 2_000, quietUtilization: 0.05, garbageBytes: 8 * 2 ** 20, newSpaceBytes: 4 * 2 ** 20, followUps: 2 } as const;

/** V8's collection function, as `--expose-gc` defines it. */
export type GcFunction = (options: { type: 'major' | 'minor'; execution: 'sync' | 'async' }) => Promise<void> | void;

/** The heap at one moment. */
export interface HeapSample {
  /** Bytes of the heap in use, garbage included (`heapUsed`). */
  readonly usedBytes: number;
  /** Bytes committed to the young generation. */
  readonly newSpaceBytes: number;
}

/**
 * Whether one check should collect: quiet over the last interval, and either the heap grew by
 * `garbageBytes` since the last collection or the young generation is grown. Pure.
 */
export function shouldCollect(
  sample: HeapSample & { readonly utilization: number; readonly baselineBytes: number },
  limits: Pick<QuietCollectorOptions, 'quietUtilization' | 'garbageBytes' | 'newSpaceBytes'>,
): boolean {
  if (sample.utilization >= limits.quietUtilization) return false;
  return sample.usedBytes - sample.baselineBytes >= limits.garbageBytes || sample.newSpaceBytes > limits.newSpaceBytes;
}

/** Event-loop utilization (0–1) since the previous call. */
function eventLoopMeter(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const { utilization } = performance.eventLoopUtilization(now, last);
    last = now;
    return utilization;
  };
}

function heapSample(): HeapSample {
  const newSpace = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
  return { usedBytes: process.memoryUsage().heapUsed, newSpaceBytes: newSpace?.space_size ?? 0 };
}

/**
 * V8's `gc`, from a context created after the flag is set (the main context was created
 * before, without it). Node's own test suite gets it the same way; it works on Node 20 and 22.
 */
function exposedGc(logger: Logger): GcFunction | undefined {
  const existing = (globalThis as { gc?: GcFunction }).gc;
  if (typeof existing === 'function') return existing;
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as GcFunction) : undefined;
  } catch (err) {
    logger.debug({ err }, 'no garbage collection function: memory is given back by V8 alone');
    return undefined;
  }
}
