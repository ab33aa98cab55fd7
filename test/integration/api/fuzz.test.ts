// The short run of the API fuzzer (the long one is `make fuzz`): a few hundred generated
// requests against every route of a real single-node daemon; see test/fuzz/harness.ts for the
// rules each answer must pass.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiFuzzer } from '../../fuzz/harness.js';
import { fuzzRequest } from '../../fuzz/requests.js';

/** Enough to reach every route several times, quick enough for every `make test`. */
const RUNS = Number(process.env.HEARTH_FUZZ_SHORT_RUNS ?? 300);

describe('API fuzzer (short run)', () => {
  let fuzzer: ApiFuzzer;
  beforeAll(async () => {
    fuzzer = await ApiFuzzer.start();
  });
  afterAll(() => fuzzer.stop());

  it('never answers 5xx, answers every 4xx with a Cinder fault and no write, and keeps answering', async () => {
    const seed = process.env.HEARTH_FUZZ_SEED === undefined ? Date.now() : Number(process.env.HEARTH_FUZZ_SEED);
    console.log(`[fuzz] seed ${seed} (HEARTH_FUZZ_SEED=${seed} repeats this run), ${RUNS} requests`);
    await fc.assert(
      fc.asyncProperty(fuzzRequest(fuzzer.port), (req) => fuzzer.check(req)),
      { numRuns: RUNS, seed, endOnFailure: true },
    );
    const stats = await fuzzer.finish();
    console.log(`[fuzz] ${JSON.stringify(stats.byStatus)}; ${stats.revisionChecks} no-write checks; ${stats.elapsedMs} ms`);
    expect(stats.requests).toBeGreaterThanOrEqual(RUNS - stats.unsendable);
    expect(stats.revisionChecks).toBeGreaterThan(0);
    expect(Object.keys(stats.byRoute).length).toBeGreaterThan(15);
  });
});
