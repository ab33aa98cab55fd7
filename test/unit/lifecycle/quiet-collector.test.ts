import { describe, expect, it } from 'vitest';
import { type CollectorState, collectionDue, type HeapSample, QUIET_COLLECTOR_DEFAULTS, QuietCollector } from '../../../src/lifecycle/quiet-collector.js';
import { silentLogger } from '../../../src/observability/logger.js';

const MiB = 2 ** 20;
const fresh: CollectorState = { baselineBytes: 30 * MiB, pending: 0, windowStartMs: undefined, lastYoungMs: undefined, youngTries: 0 };

describe('collectionDue', () => {
  const limits = QUIET_COLLECTOR_DEFAULTS;
  const due = (state: Partial<CollectorState>, heap: HeapSample, nowMs = 0) => collectionDue({ ...fresh, ...state, ...heap, nowMs }, limits);

  it('collects garbage, and the follow-ups after it', () => {
    expect(due({}, { usedBytes: 40 * MiB, newSpaceBytes: MiB })).toBe('garbage');
    expect(due({}, { usedBytes: 31 * MiB, newSpaceBytes: MiB })).toBeUndefined();
    expect(due({ pending: 1 }, { usedBytes: 31 * MiB, newSpaceBytes: MiB })).toBe('follow-up');
  });

  it('collects for a grown young generation when nothing opened the window yet, then once the window has passed', () => {
    const grown = { usedBytes: 31 * MiB, newSpaceBytes: 32 * MiB };
    expect(due({}, grown)).toBe('young');
    expect(due({ windowStartMs: 1_000 }, grown, 1_000 + limits.youngWindowMs - 1)).toBeUndefined();
    expect(due({ windowStartMs: 1_000 }, grown, 1_000 + limits.youngWindowMs)).toBe('young');
    // Another try a window after the last one, and no more than `youngAttempts`.
    expect(due({ windowStartMs: 1_000, lastYoungMs: 7_000, youngTries: 1 }, grown, 7_000 + limits.youngWindowMs - 1)).toBeUndefined();
    expect(due({ windowStartMs: 1_000, lastYoungMs: 7_000, youngTries: 1 }, grown, 7_000 + limits.youngWindowMs)).toBe('young');
    expect(due({ windowStartMs: 1_000, lastYoungMs: 7_000, youngTries: limits.youngAttempts }, grown, 60_000)).toBeUndefined();
  });
});

describe('QuietCollector', () => {
  /**
   * A collector on scripted readings and a scripted clock. `gc` frees the garbage, and shrinks
   * the young generation as V8 does: only when the collection before it, with nothing busy
   * between, was five seconds ago or more.
   */
  function scripted() {
    const state = { live: 30 * MiB, garbage: 0, newSpace: MiB, utilization: 0.01, nowMs: 0, collections: 0, cleanSinceMs: undefined as number | undefined, youngShrinks: 0, types: [] as string[] };
    const heap = (): HeapSample => ({ usedBytes: state.live + state.garbage, newSpaceBytes: state.newSpace });
    const collector = new QuietCollector(
      {
        ...QUIET_COLLECTOR_DEFAULTS,
        logger: silentLogger(),
        gc: async ({ type }) => {
          state.collections++;
          state.types.push(type);
          state.garbage = 0;
          if (state.cleanSinceMs !== undefined && state.nowMs - state.cleanSinceMs >= 5_000 && state.newSpace > MiB) {
            state.newSpace = MiB;
            state.youngShrinks++;
          }
          state.cleanSinceMs ??= state.nowMs;
        },
      },
      { heap, loopUtilization: () => state.utilization, nowMs: () => state.nowMs },
    );
    /** A burst: the loop busy, garbage piled up, the young generation at its maximum. */
    const burst = async (): Promise<void> => {
      state.utilization = 0.9;
      state.garbage = 80 * MiB;
      state.newSpace = 32 * MiB;
      state.cleanSinceMs = undefined;
      expect(await collector.check()).toBe(false);
      state.utilization = 0.01;
    };
    /** Quiet checks a second apart from now to `untilMs`: the times that collected. */
    const quietUntil = async (untilMs: number): Promise<number[]> => {
      const collected: number[] = [];
      while (state.nowMs < untilMs) {
        state.nowMs += 1_000;
        if (await collector.check()) collected.push(state.nowMs);
      }
      return collected;
    };
    return { state, collector, burst, quietUntil };
  }

  it('after a burst: one collection and its follow-ups, then one more when V8 shrinks the young generation, then nothing', async () => {
    const { state, collector, burst, quietUntil } = scripted();
    collector.start();
    try {
      expect(await collector.check()).toBe(false);
      await burst();
      // Garbage at 1 s, follow-ups at 2 and 3 s; the young generation shrinks at 7 s (5.5 s after 1 s).
      expect(await quietUntil(20_000)).toEqual([1_000, 2_000, 3_000, 7_000]);
      expect(state.newSpace).toBe(MiB);
      expect(state.youngShrinks).toBe(1);
      expect(collector.count).toBe(4);
      // Garbage needs a major collection; the young generation only a minor one.
      expect(state.types).toEqual(['major', 'major', 'major', 'minor']);
    } finally {
      await collector.close();
      await collector.close();
    }
  });

  it('a busy interval postpones a follow-up, and opens a new window for the young generation', async () => {
    const { state, collector, burst, quietUntil } = scripted();
    collector.start();
    await burst();
    expect(await quietUntil(2_000)).toEqual([1_000, 2_000]);
    state.utilization = 0.3;
    state.nowMs += 1_000;
    expect(await collector.check()).toBe(false);
    state.utilization = 0.01;
    state.cleanSinceMs = undefined;
    // The last follow-up at 4 s opens the window again: the young generation at 10 s.
    expect(await quietUntil(20_000)).toEqual([4_000, 10_000]);
    expect(state.newSpace).toBe(MiB);
    await collector.close();
  });

  it('gives the young generation up after its tries while the process keeps allocating', async () => {
    const { state, collector, burst, quietUntil } = scripted();
    collector.start();
    state.live = 30 * MiB;
    state.garbage = 0;
    state.newSpace = 32 * MiB;
    state.utilization = 0.01;
    // A trickle of allocation that V8 counts as high: never shrinks.
    const neverClean = (): void => {
      state.cleanSinceMs = state.nowMs;
    };
    const collected: number[] = [];
    for (let i = 0; i < 40; i++) {
      state.nowMs += 1_000;
      neverClean();
      if (await collector.check()) collected.push(state.nowMs);
    }
    expect(collected).toEqual([1_000, 7_000, 13_000, 19_000]);
    expect(state.newSpace).toBe(32 * MiB);
    // The next burst starts over.
    await burst();
    expect((await quietUntil(60_000)).length).toBeGreaterThan(0);
    expect(state.newSpace).toBe(MiB);
    await collector.close();
  });

  it('measures garbage from what the last collection left', async () => {
    const { state, collector } = scripted();
    collector.start();
    state.live = 60 * MiB;
    state.garbage = 10 * MiB;
    expect(await collector.check()).toBe(true);
    for (let i = 0; i < QUIET_COLLECTOR_DEFAULTS.followUps; i++) expect(await collector.check()).toBe(true);
    // 60 MiB live is the new baseline: 4 MiB more is not worth a collection, 8 MiB is.
    state.garbage = 4 * MiB;
    expect(await collector.check()).toBe(false);
    state.garbage = 8 * MiB;
    expect(await collector.check()).toBe(true);
    await collector.close();
  });

  it("uses V8's own collection function when none is given", async () => {
    const collector = new QuietCollector(
      { ...QUIET_COLLECTOR_DEFAULTS, garbageBytes: 0, logger: silentLogger() },
      { heap: () => ({ usedBytes: 0, newSpaceBytes: 0 }), loopUtilization: () => 0, nowMs: () => 0 },
    );
    expect(await collector.check()).toBe(true);
    await collector.close();
  });
});
