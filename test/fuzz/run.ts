// `make fuzz`: the long run of the API fuzzer — FUZZ_RUNS generated requests (default 10,000)
// against a real single-node daemon, with the rules of test/fuzz/harness.ts checked on every
// answer. Prints the figures docs/security.md quotes and writes them to
// test/fuzz/results/latest.json. FUZZ_SEED repeats a run; exits 1 on the first broken rule,
// with the request that broke it.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { ApiFuzzer } from './harness.js';
import { fuzzRequest } from './requests.js';

async function main(): Promise<void> {
  const runs = Number(process.env.FUZZ_RUNS ?? 10_000);
  const seed = process.env.FUZZ_SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.FUZZ_SEED);
  console.log(`fuzzing the API: ${runs} requests, seed ${seed} (FUZZ_SEED=${seed} repeats this run)`);
  const fuzzer = await ApiFuzzer.start();
  let failure: unknown;
  try {
    await fc.assert(
      fc.asyncProperty(fuzzRequest(fuzzer.port), (req) => fuzzer.check(req)),
      { numRuns: runs, seed, endOnFailure: true },
    );
    const stats = await fuzzer.finish();
    const report = { date: new Date().toISOString(), seed, runs, node: process.version, ...stats };
    const dir = join(import.meta.dirname, 'results');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
    console.log(`${stats.requests} requests in ${(stats.elapsedMs / 1000).toFixed(1)} s (${Math.round(stats.requests / (stats.elapsedMs / 1000))}/s); no 5xx`);
    console.log(`by status: ${JSON.stringify(stats.byStatus)}`);
    console.log(`4xx answers checked for no write: ${stats.revisionChecks}; longest fault message: ${stats.longestFaultMessage} characters; unsendable: ${stats.unsendable}`);
    console.log(`routes: ${Object.keys(stats.byRoute).length}; written to test/fuzz/results/latest.json`);
  } catch (err) {
    failure = err;
  } finally {
    await fuzzer.stop();
  }
  if (failure !== undefined) {
    console.error(failure instanceof Error ? failure.message : failure);
    process.exitCode = 1;
  }
}

await main();
