// Prints the plain closing line CI reads — "N passed, N failed" — from vitest's JSON report.
// A failing step outside vitest (type check, lint) counts as one failed check.
import { readFileSync } from 'node:fs';

const [reportPath, makeStatus = '0'] = process.argv.slice(2);
let passed = 0;
let failed = 0;
try {
  const report = JSON.parse(readFileSync(reportPath, 'utf8'));
  passed = report.numPassedTests ?? 0;
  failed = report.numFailedTests ?? 0;
  // A file that fails before any test runs (an import error, a failing hook) has no failed test.
  const suitesFailedWithoutTests = (report.testResults ?? []).filter(
    (s) => s.status === 'failed' && (s.assertionResults ?? []).every((a) => a.status !== 'failed'),
  ).length;
  failed += suitesFailedWithoutTests;
  // A test that passed on its retry (vitest.config.ts) keeps its first failure: print them all.
  const flaky = (report.testResults ?? []).flatMap((s) =>
    (s.assertionResults ?? []).filter((a) => a.status === 'passed' && (a.failureMessages ?? []).length > 0).map((a) => ({ file: s.name, a })),
  );
  for (const { file, a } of flaky) {
    const first = String(a.failureMessages[0]).split('\n')[0];
    console.log(`passed only on retry: ${file.replace(process.cwd() + '/', '')} > ${a.fullName}\n  first failure: ${first}`);
  }
} catch {
  console.log('no vitest report was written');
}
if (makeStatus !== '0' && failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed`);
