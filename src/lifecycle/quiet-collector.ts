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
 * So, every `intervalMs`, when the event loop was quiet over the last interval
 * (`eventLoopUtilization` below `quietUtilization`):
 * - the heap holds `garbageBytes` more than the last collection left: one major collection
 *   (concurrently, `execution: 'async'`), then one at each of the next `followUps` quiet
 *   checks. The first frees the garbage, the next ones compact the old generation's pages it
 *   left half empty and give them back.
 * - the young generation is grown (over `newSpaceBytes`): a collection when V8 will shrink it.
 *   V8 shrinks the young generation only at a collection, and only when the allocation it
 *   measured over the last five seconds or so, from collection to collection, was low
 *   (Heap::ReduceNewSpaceSize); until then a collection shrinks nothing. The first collection
 *   after the loop was last busy closes the burst's allocation into an interval of its own, so
 *   the collection that shrinks comes `youngWindowMs` after it (a check is scheduled for then)
 *   — one more major collection, not one at every check in between. When that one finds the
 *   young generation still grown (the process kept allocating), it tries again a window later,
 *   `youngAttempts` times at most until the loop is busy again; then it is V8's to shrink.
 * A busy process is left to V8: nothing runs while requests or operations keep the loop busy.
 *
 * The collection function is V8's own (`--expose-gc`), enabled from inside the process so that
 * a deployment needs no flag. Where it cannot be had, the collector does nothing.
 */
export class QuietCollector {
  private readonly gc: GcFunction | undefined;
  private timer: NodeJS.Timeout | undefined;
  private wake: NodeJS.Timeout | undefined;
  private running = false;
  private collections = 0;
  private state: CollectorState = { baselineBytes: 0, pending: 0, windowStartMs: undefined, lastYoungMs: undefined, youngTries: 0 };

  /** `probes` replace the heap, event-loop and clock readings, for tests. */
  constructor(
    private readonly options: QuietCollectorOptions,
    private readonly probes: CollectorProbes = { heap: heapSample, loopUtilization: eventLoopMeter(), nowMs: () => performance.now() },
  ) {
    this.gc = options.gc ?? exposedGc(options.logger);
  }

  /** Starts checking every `intervalMs`; the timer does not keep the process alive. */
  start(): void {
    if (!this.gc || this.timer) return;
    this.state = { ...this.state, baselineBytes: this.probes.heap().usedBytes };
    this.probes.loopUtilization();
    this.timer = setInterval(() => void this.check(), this.options.intervalMs);
    this.timer.unref();
  }

  /** How many collections it ran. */
  get count(): number {
    return this.collections;
  }

  /** One check (public for tests): collects when {@link collectionDue} says so. */
  async check(): Promise<boolean> {
    const gc = this.gc;
    if (!gc || this.running) return false;
    const utilization = this.probes.loopUtilization();
    if (utilization >= this.options.quietUtilization) {
      // Busy: the allocation V8 measures is high again; the next quiet collection opens a new window.
      this.state = { ...this.state, windowStartMs: undefined, lastYoungMs: undefined, youngTries: 0 };
      return false;
    }
    const heap = this.probes.heap();
    const nowMs = this.probes.nowMs();
    const reason = collectionDue({ ...heap, ...this.state, nowMs }, this.options);
    if (reason === undefined) return false;
    this.state = afterCollection(this.state, reason, nowMs, this.options);
    this.running = true;
    try {
      // The young generation shrinks at any collection once V8 lets it: a minor one is enough, and cheap.
      await gc({ type: reason === 'young' ? 'minor' : 'major', execution: 'async' });
      this.collections++;
      const after = this.probes.heap();
      this.options.logger.debug({ reason, beforeBytes: heap.usedBytes, afterBytes: after.usedBytes, newSpaceBytes: after.newSpaceBytes }, 'collected garbage while quiet');
      this.state = { ...this.state, baselineBytes: after.usedBytes };
      this.wakeForYoung(after, nowMs);
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
    clearTimeout(this.wake);
    this.timer = undefined;
    this.wake = undefined;
  }

  /**
   * While the young generation stays grown, one extra check when its next collection is due,
   * rather than at the first regular check after: half an interval sooner on average.
   */
  private wakeForYoung(heap: HeapSample, nowMs: number): void {
    if (!this.timer) return;
    const dueMs = youngDueAt({ ...heap, ...this.state }, this.options);
    if (dueMs === undefined) return;
    clearTimeout(this.wake);
    this.wake = setTimeout(() => void this.check(), Math.max(0, dueMs - nowMs));
    this.wake.unref();
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
  /** A young generation larger than this is grown: worth a collection once V8 will shrink it. */
  readonly newSpaceBytes: number;
  /** Collections after the one garbage triggered, one per quiet check (compaction). */
  readonly followUps: number;
  /**
   * How long after the first quiet collection V8 has seen low allocation for long enough to
   * shrink the young generation: its five-second window, and a margin for timers.
   */
  readonly youngWindowMs: number;
  /** Collections for a grown young generation per quiet spell, at most. */
  readonly youngAttempts: number;
  /** The collection function; V8's own (exposed from inside the process) by default. */
  readonly gc?: GcFunction;
}

/**
 * The defaults: a look every second; quiet under 5 % busy; 8 MiB of garbage, or a young
 * generation over 4 MiB; two follow-ups; V8's five-second window and half a second more; three
 * tries at the young generation.
 */
export const QUIET_COLLECTOR_DEFAULTS = {
  intervalMs: 1_000,
  quietUtilization: 0.05,
  garbageBytes: 8 * 2 ** 20,
  newSpaceBytes: 4 * 2 ** 20,
  followUps: 2,
  youngWindowMs: 5_500,
  youngAttempts: 3,
} as const;

/** V8's collection function, as `--expose-gc` defines it. */
export type GcFunction = (options: { type: 'major' | 'minor'; execution: 'sync' | 'async' }) => Promise<void> | void;

/** The heap at one moment. */
export interface HeapSample {
  /** Bytes of the heap in use, garbage included. */
  readonly usedBytes: number;
  /** Bytes committed to the young generation. */
  readonly newSpaceBytes: number;
}

/** The readings a collector takes; tests script them. */
export interface CollectorProbes {
  readonly heap: () => HeapSample;
  /** Event-loop utilization (0–1) since the previous call. */
  readonly loopUtilization: () => number;
  /** A monotonic clock. */
  readonly nowMs: () => number;
}

/** What a collector remembers between checks. */
export interface CollectorState {
  /** Heap in use after the last collection. */
  readonly baselineBytes: number;
  /** Follow-ups still due. */
  readonly pending: number;
  /** When the first collection since the loop was last busy ran: where V8's clean window starts. */
  readonly windowStartMs: number | undefined;
  /** When the last collection for the young generation ran, in this quiet spell. */
  readonly lastYoungMs: number | undefined;
  /** Collections for the young generation in this quiet spell. */
  readonly youngTries: number;
}

/** Why a collection runs. */
export type CollectionReason = 'garbage' | 'follow-up' | 'young';

/**
 * Whether a quiet check should collect, and why: garbage piled up since the last collection; a
 * follow-up is due; or the young generation is grown and either no collection opened V8's
 * window yet (this one does) or the window has passed since it opened, or since the last try.
 * Pure.
 */
export function collectionDue(
  sample: HeapSample & CollectorState & { readonly nowMs: number },
  limits: Pick<QuietCollectorOptions, 'garbageBytes' | 'newSpaceBytes' | 'youngWindowMs' | 'youngAttempts'>,
): CollectionReason | undefined {
  if (sample.usedBytes - sample.baselineBytes >= limits.garbageBytes) return 'garbage';
  if (sample.pending > 0) return 'follow-up';
  if (sample.newSpaceBytes <= limits.newSpaceBytes) return undefined;
  if (sample.windowStartMs === undefined) return 'young';
  const dueMs = youngDueAt(sample, limits);
  return dueMs !== undefined && sample.nowMs >= dueMs ? 'young' : undefined;
}

/**
 * When the grown young generation's next collection is due: a window after the one that opened
 * the window, or after the last try; undefined when it is not grown, no window is open, or the
 * tries are spent. Pure.
 */
export function youngDueAt(
  sample: HeapSample & CollectorState,
  limits: Pick<QuietCollectorOptions, 'newSpaceBytes' | 'youngWindowMs' | 'youngAttempts'>,
): number | undefined {
  if (sample.newSpaceBytes <= limits.newSpaceBytes || sample.windowStartMs === undefined || sample.youngTries >= limits.youngAttempts) return undefined;
  return Math.max(sample.windowStartMs, sample.lastYoungMs ?? sample.windowStartMs) + limits.youngWindowMs;
}

/** The state once a collection for `reason` starts at `nowMs`. Pure. */
export function afterCollection(state: CollectorState, reason: CollectionReason, nowMs: number, limits: Pick<QuietCollectorOptions, 'followUps'>): CollectorState {
  const opens = state.windowStartMs === undefined;
  return {
    baselineBytes: state.baselineBytes,
    pending: reason === 'garbage' ? limits.followUps : reason === 'follow-up' ? state.pending - 1 : state.pending,
    windowStartMs: opens ? nowMs : state.windowStartMs,
    // The collection that opens the window shrinks nothing yet: only later ones count as tries.
    lastYoungMs: reason === 'young' && !opens ? nowMs : state.lastYoungMs,
    youngTries: reason === 'young' && !opens ? state.youngTries + 1 : state.youngTries,
  };
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
  let usedBytes = 0;
  let newSpaceBytes = 0;
  for (const space of getHeapSpaceStatistics()) {
    usedBytes += space.space_used_size;
    if (space.space_name === 'new_space') newSpaceBytes = space.space_size;
  }
  return { usedBytes, newSpaceBytes };
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
