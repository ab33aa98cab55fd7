import { describe, expect, it } from 'vitest';
import { type HeapSample, QUIET_COLLECTOR_DEFAULTS, QuietCollector, shouldCollect } from '../../../src/lifecycle/quiet-collector.js';
import { silentLogger } from '../../../src/observability/logger.js';

const MiB = 2 ** 20;

describe('shouldCollect', () => {
  const limits = QUIET_COLLECTOR_DEFAULTS;
  it('collects a quiet process holding garbage or a grown young generation, never a busy one', () => {
    expect(shouldCollect({ utilization: 0.01, usedBytes: 40 * MiB, baselineBytes: 30 * MiB, newSpaceBytes: MiB }, limits)).toBe(true);
    expect(shouldCollect({ utilization: 0.01, usedBytes: 31 * MiB, baselineBytes: 30 * MiB, newSpaceBytes: 32 * MiB }, limits)).toBe(true);
    expect(shouldCollect({ utilization: 0.01, usedBytes: 31 * MiB, baselineBytes: 30 * MiB, newSpaceBytes: MiB }, limits)).toBe(false);
    expect(shouldCollect({ utilization: 0.5, usedBytes: 90 * MiB, baselineBytes: 30 * MiB, newSpaceBytes: 32 * MiB }, limits)).toBe(false);
  });
});

describe('QuietCollector', () => {
  /** A collector on scripted readings; `gc` frees what `garbage` says and shrinks the young generation. */
  function scripted() {
    const state = { live: 30 * MiB, garbage: 0, newSpace: MiB, utilization: 0.01, collections: 0 };
    const heap = (): HeapSample => ({ usedBytes: state.live + state.garbage, newSpaceBytes: state.newSpace });
    const collector = new QuietCollector(
      {
        ...QUIET_COLLECTOR_DEFAULTS,
        logger: silentLogger(),
        gc: async () => {
          state.collections++;
          state.garbage = 0;
          state.newSpace = MiB;
        },
      },
      { heap, loopUtilization: () => state.utilization },
    );
    return { state, collector };
  }

  it('collects once a burst is over, then the follow-ups at the next quiet checks, then nothing', async () => {
    const { state, collector } = scripted();
    collector.start();
    try {
      expect(await collector.check()).toBe(false);
      // A burst: the loop is busy and garbage piles up; nothing runs while busy.
      state.utilization = 0.9;
      state.garbage = 80 * MiB;
      state.newSpace = 32 * MiB;
      expect(await collector.check()).toBe(false);
      state.utilization = 0.01;
      expect(await collector.check()).toBe(true);
      expect(await collector.check()).toBe(true);
      // A busy interval between follow-ups postpones the last one, not cancels it.
      state.utilization = 0.3;
      expect(await collector.check()).toBe(false);
      state.utilization = 0.01;
      expect(await collector.check()).toBe(true);
      expect(await collector.check()).toBe(false);
      expect(state.collections).toBe(3);
      expect(collector.count).toBe(3);
    } finally {
      await collector.close();
      await collector.close();
    }
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

  it('uses V8\'s own collection function when none is given', async () => {
    const collector = new QuietCollector({ ...QUIET_COLLECTOR_DEFAULTS, garbageBytes: 0, logger: silentLogger() }, { heap: () => ({ usedBytes: 0, newSpaceBytes: 0 }), loopUtilization: () => 0 });
    expect(await collector.check()).toBe(true);
    await collector.close();
  });
});
