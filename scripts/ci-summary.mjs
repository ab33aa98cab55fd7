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
} catch {
  console.log('no vitest report was written');
}
if (makeStatus !== '0' && failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed`);
