// The nightly OpenAPI fuzz: the same test as CI (apps/server/test/fuzz.test.ts) with a larger
// budget and a new seed each day. Usage: npm run fuzz:nightly. VF_FUZZ_RUNS (cases per
// operation, default 1000: about 50,000 cases) and VF_FUZZ_SEED (default: today, YYYYMMDD)
// override; a failure prints every 5xx with its request, and the seed reproduces it:
// VF_FUZZ_SEED=<seed> VF_FUZZ_RUNS=<runs> npx vitest run test/fuzz.test.ts (in apps/server).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const serverDir = path.join(root, 'apps', 'server');
const require = createRequire(path.join(serverDir, 'package.json'));
const vitestPkgPath = require.resolve('vitest/package.json');
const vitestPkg = require(vitestPkgPath);
const vitestBin = path.join(
  path.dirname(vitestPkgPath),
  typeof vitestPkg.bin === 'string' ? vitestPkg.bin : vitestPkg.bin.vitest,
);

const today = new Date().toISOString().slice(0, 10).replaceAll('-', '');
const env = {
  ...process.env,
  VF_FUZZ_RUNS: process.env.VF_FUZZ_RUNS ?? '1000',
  VF_FUZZ_SEED: process.env.VF_FUZZ_SEED ?? today,
  VF_FUZZ_VERBOSE: process.env.VF_FUZZ_VERBOSE ?? '1',
  CI: process.env.CI ?? 'true',
};
console.log(`fuzz:nightly: ${env.VF_FUZZ_RUNS} cases per operation, seed ${env.VF_FUZZ_SEED}`);

const child = spawn(
  process.execPath,
  [vitestBin, 'run', 'test/fuzz.test.ts', '-t', 'answers every generated request'],
  { cwd: serverDir, env, stdio: 'inherit' },
);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
