import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);

/** What mocha's JSON reporter said about one run. */
export interface MochaResult {
  passes: number;
  failures: number;
  pending: number;
  /** "full title: first line of the error" of each failed test (hooks included). */
  failed: string[];
  /** mocha's exit code and the tail of its output, for a run that wrote no report. */
  exitCode: number | null;
  output: string;
}

interface JsonReport {
  stats: { passes: number; failures: number; pending: number };
  failures: { fullTitle: string; err: { message?: string } }[];
}

/**
 * Runs one spec file with mocha in a child process, as ShareDB's adapters run its conformance
 * suites: `--file sharedb/test/setup.js` (chai + sinon-chai, ShareDB's logger silenced, sinon
 * restored after each test), the spec loaded through tsx, results from the JSON reporter.
 * @param timeoutMs the whole run is killed past this (a hung adapter must fail, not hang CI).
 */
export async function runMochaSpec(
  specFile: string,
  env: Record<string, string>,
  timeoutMs: number,
): Promise<MochaResult> {
  const dir = mkdtempSync(path.join(tmpdir(), 'vf-mocha-'));
  const reportFile = path.join(dir, 'report.json');
  const mochaBin = path.join(path.dirname(require.resolve('mocha/package.json')), 'bin/mocha.js');
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      mochaBin,
      '--file',
      require.resolve('sharedb/test/setup.js'),
      '--reporter',
      'json',
      '--reporter-option',
      `output=${reportFile}`,
      '--timeout',
      '20000',
      '--exit',
      specFile,
    ],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exitCode = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearTimeout(timer);
  try {
    let report: JsonReport;
    try {
      report = JSON.parse(readFileSync(reportFile, 'utf8')) as JsonReport;
    } catch {
      return { passes: 0, failures: 1, pending: 0, failed: ['(no report)'], exitCode, output };
    }
    return {
      passes: report.stats.passes,
      failures: report.stats.failures,
      pending: report.stats.pending,
      failed: report.failures.map(
        (f) => `${f.fullTitle}: ${(f.err.message ?? '').split('\n')[0] ?? ''}`,
      ),
      exitCode,
      output,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
