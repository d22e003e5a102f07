// Runs the server's vitest suite and closes with one summary line: `tests: N passed, N failed`.
// Usage: npm test [-- vitest args, e.g. a file filter]. Exits with vitest's code; under CI=true a
// run that executed no test fails too.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const serverDir = path.join(root, 'apps', 'server');
const require = createRequire(path.join(serverDir, 'package.json'));
const vitestPkgPath = require.resolve('vitest/package.json');
const vitestPkg = JSON.parse(readFileSync(vitestPkgPath, 'utf8'));
const vitestBin = path.join(
  path.dirname(vitestPkgPath),
  typeof vitestPkg.bin === 'string' ? vitestPkg.bin : vitestPkg.bin.vitest,
);

const reportDir = mkdtempSync(path.join(tmpdir(), 'vf-vitest-report-'));
const reportFile = path.join(reportDir, 'report.json');

const child = spawn(
  process.execPath,
  [
    vitestBin,
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${reportFile}`,
    ...process.argv.slice(2),
  ],
  { cwd: serverDir, stdio: 'inherit' },
);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => child.kill(signal));
}

const code = await new Promise((resolve) => {
  child.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
  child.on('error', (err) => {
    console.error(`could not start vitest: ${err.message}`);
    resolve(1);
  });
});

const counts = readCounts(reportFile);
rmSync(reportDir, { recursive: true, force: true });

let exitCode = code;
if (!counts) {
  console.error('vitest wrote no JSON report (it failed before running the tests).');
  if (exitCode === 0) exitCode = 1;
}
const { passed, failed, skipped } = counts ?? { passed: 0, failed: 0, skipped: 0 };
if (code !== 0 && failed === 0) {
  console.error(`vitest failed outside any test (exit ${code}): see the error above.`);
}
if (process.env.CI === 'true' && passed + failed === 0) {
  console.error('CI=true and no test was executed: failing the run.');
  if (exitCode === 0) exitCode = 1;
}
console.log(`tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(exitCode);

/**
 * Counts from vitest's JSON report. A test file that failed as a whole (import error, failing
 * beforeAll) with no failed test inside counts as one failure, so a broken file never reads as
 * "0 failed".
 * @returns undefined when there is no readable report.
 */
function readCounts(file) {
  let report;
  try {
    report = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
  const brokenFiles = (report.testResults ?? []).filter(
    (r) => r.status === 'failed' && !(r.assertionResults ?? []).some((a) => a.status === 'failed'),
  ).length;
  return {
    passed: report.numPassedTests ?? 0,
    failed: (report.numFailedTests ?? 0) + brokenFiles,
    skipped: (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0),
  };
}
