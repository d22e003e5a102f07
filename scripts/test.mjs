// Runs every test suite and closes with one summary line over all of them:
// `tests: N passed, N failed`. Suites: the server's vitest suite (apps/server), the web IDE's
// component tests (apps/web, against a real server), the packages' tests (packages/*: the
// contract checker, the `vaporform` CLI against a real server), the server's in-process suites
// again on Bun (`bun test`, apps/server `npm run test:bun`: the HTTP-level ones; the README says
// which stay Node-only) and the browser tests (tests/e2e, real Chromium). Usage: npm test [--
// vitest args, e.g. a file filter: the Bun suite is then left out];
// VF_TEST_SUITES=server,web,packages,server-bun,e2e
// picks suites (default: all). Exits non-zero if any suite failed; under CI=true a run that
// executed no test fails too.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const suites = [
  { name: 'server', dir: path.join(root, 'apps', 'server') },
  { name: 'web', dir: path.join(root, 'apps', 'web') },
  { name: 'packages', dir: path.join(root, 'packages') },
  { name: 'server-bun', dir: path.join(root, 'apps', 'server'), runner: 'bun' },
  { name: 'e2e', dir: path.join(root, 'tests', 'e2e') },
];
const wanted = (process.env.VF_TEST_SUITES ?? suites.map((s) => s.name).join(','))
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
for (const name of wanted) {
  if (!suites.some((s) => s.name === name)) {
    console.error(
      `VF_TEST_SUITES: unknown suite "${name}" (${suites.map((s) => s.name).join(', ')})`,
    );
    process.exit(2);
  }
}

const require = createRequire(path.join(root, 'apps', 'server', 'package.json'));
const vitestPkgPath = require.resolve('vitest/package.json');
const vitestPkg = JSON.parse(readFileSync(vitestPkgPath, 'utf8'));
const vitestBin = path.join(
  path.dirname(vitestPkgPath),
  typeof vitestPkg.bin === 'string' ? vitestPkg.bin : vitestPkg.bin.vitest,
);
const extraArgs = process.argv.slice(2);

let current;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => current?.kill(signal));
}

const total = { passed: 0, failed: 0, skipped: 0 };
/** "suite › file › test: first line of the error", printed again at the very end. */
const failures = [];
let exitCode = 0;
for (const suite of suites.filter((s) => wanted.includes(s.name))) {
  // A vitest file filter names vitest files: `bun test` has no such argument.
  if (suite.runner === 'bun' && extraArgs.length) continue;
  console.log(`\n=== tests: ${suite.name} (${path.relative(root, suite.dir)}) ===`);
  const result = suite.runner === 'bun' ? await runBun(suite.dir) : await runVitest(suite.dir);
  total.passed += result.passed;
  total.failed += result.failed;
  total.skipped += result.skipped;
  if (result.code !== 0) exitCode = result.code || 1;
  failures.push(...result.failures.map((f) => `${suite.name} › ${f}`));
  console.log(
    `tests (${suite.name}): ${result.passed} passed, ${result.failed} failed` +
      (result.skipped ? `, ${result.skipped} skipped` : ''),
  );
}

if (process.env.CI === 'true' && total.passed + total.failed === 0) {
  console.error('CI=true and no test was executed: failing the run.');
  if (exitCode === 0) exitCode = 1;
}
// The failures again, just above the closing line: a log cut to its tail still names them.
for (const failure of failures) console.log(`FAILED ${failure}`);
console.log(
  `tests: ${total.passed} passed, ${total.failed} failed${total.skipped ? `, ${total.skipped} skipped` : ''}`,
);
process.exit(exitCode);

/** Runs vitest in `dir` and reads its JSON report. */
async function runVitest(dir) {
  const reportDir = mkdtempSync(path.join(tmpdir(), 'vf-vitest-report-'));
  const reportFile = path.join(reportDir, 'report.json');
  // A file filter given for one suite must not fail the others for matching nothing.
  const filterArgs = extraArgs.length ? [...extraArgs, '--passWithNoTests'] : [];
  const code = await new Promise((resolve) => {
    current = spawn(
      process.execPath,
      [
        vitestBin,
        'run',
        '--reporter=default',
        '--reporter=json',
        `--outputFile.json=${reportFile}`,
        ...filterArgs,
      ],
      { cwd: dir, stdio: 'inherit' },
    );
    current.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
    current.on('error', (err) => {
      console.error(`could not start vitest: ${err.message}`);
      resolve(1);
    });
  });
  const counts = readCounts(reportFile);
  rmSync(reportDir, { recursive: true, force: true });
  if (!counts) {
    console.error('vitest wrote no JSON report (it failed before running the tests).');
    return {
      code: code || 1,
      passed: 0,
      failed: 1,
      skipped: 0,
      failures: ['vitest wrote no report'],
    };
  }
  if (code !== 0 && counts.failed === 0) {
    console.error(`vitest failed outside any test (exit ${code}): see the error above.`);
    return { code, ...counts, failed: 1, failures: [`vitest exited ${code} outside any test`] };
  }
  return { code, ...counts };
}

/** Runs `npm run test:bun` in `dir` (Bun's test runner) and reads its JUnit report. */
async function runBun(dir) {
  const reportDir = mkdtempSync(path.join(tmpdir(), 'vf-bun-report-'));
  const reportFile = path.join(reportDir, 'junit.xml');
  const code = await new Promise((resolve) => {
    current = spawn(
      'npm',
      ['run', '--silent', 'test:bun', '--', '--reporter=junit', `--reporter-outfile=${reportFile}`],
      { cwd: dir, stdio: 'inherit' },
    );
    current.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
    current.on('error', (err) => {
      console.error(`could not start bun test: ${err.message}`);
      resolve(1);
    });
  });
  let xml = '';
  try {
    xml = readFileSync(reportFile, 'utf8');
  } catch {
    // no report: counted below
  }
  rmSync(reportDir, { recursive: true, force: true });
  const suite = /<testsuites\b[^>]*>/.exec(xml)?.[0] ?? '';
  const count = (name) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(suite)?.[1] ?? 0);
  if (!suite) {
    console.error('bun test wrote no JUnit report (it failed before running the tests).');
    return { code: code || 1, passed: 0, failed: 1, skipped: 0, failures: ['no bun report'] };
  }
  const tests = count('tests');
  const failed = count('failures') + count('errors');
  const skipped = count('skipped');
  const failures = [
    ...xml.matchAll(/<testcase name="([^"]*)" classname="([^"]*)"[^>]*>\s*<failure/g),
  ].map((m) => `${m[2]} › ${m[1]}`);
  if (code !== 0 && failed === 0) {
    console.error(`bun test failed outside any test (exit ${code}): see the error above.`);
    return { code, passed: tests - skipped, failed: 1, skipped, failures: ['bun test exited'] };
  }
  return { code, passed: tests - failed - skipped, failed, skipped, failures };
}

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
  const failures = [];
  let brokenFiles = 0;
  for (const file of report.testResults ?? []) {
    const name = path.relative(root, file.name ?? '?');
    const failed = (file.assertionResults ?? []).filter((a) => a.status === 'failed');
    if (file.status === 'failed' && failed.length === 0) {
      brokenFiles += 1;
      failures.push(`${name}: ${firstLine(file.message)}`);
    }
    for (const test of failed) {
      failures.push(`${name} › ${test.fullName}: ${firstLine(test.failureMessages?.[0])}`);
    }
  }
  return {
    passed: report.numPassedTests ?? 0,
    failed: (report.numFailedTests ?? 0) + brokenFiles,
    skipped: (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0),
    failures,
  };
}

function firstLine(message) {
  return (
    (message ?? '')
      .split('\n')
      .find((l) => l.trim())
      ?.trim()
      .slice(0, 300) ?? ''
  );
}
