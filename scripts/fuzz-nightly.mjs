// The nightly fuzz runs (the collaboration convergence seeds follow, see below). The OpenAPI
// fuzz: the same test as CI (apps/server/test/fuzz.test.ts) with a larger
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

// Then the collaboration convergence test (src/services/collab/collab-convergence.test.ts): more
// seeds (VF_COLLAB_SEEDS, default ten derived from the day), longer runs (VF_COLLAB_STEPS, default
// 300) and instance B SIGKILLed in more of them (VF_COLLAB_RESTARTS, default 3). A failing seed
// replays with VF_COLLAB_SEEDS=<seed> npx vitest run src/services/collab/collab-convergence.test.ts.
const collabSeeds =
  process.env.VF_COLLAB_SEEDS ??
  Array.from({ length: 10 }, (_, i) => (Number(today) * 16 + i) % 2147483647).join(',');
const runs = [
  {
    name: `OpenAPI fuzz: ${env.VF_FUZZ_RUNS} cases per operation, seed ${env.VF_FUZZ_SEED}`,
    args: ['run', 'test/fuzz.test.ts', '-t', 'answers every generated request'],
    env,
  },
  {
    name: `collab convergence: seeds ${collabSeeds}`,
    args: ['run', 'src/services/collab/collab-convergence.test.ts'],
    env: {
      ...env,
      VF_COLLAB_SEEDS: collabSeeds,
      VF_COLLAB_STEPS: process.env.VF_COLLAB_STEPS ?? '300',
      VF_COLLAB_RESTARTS: process.env.VF_COLLAB_RESTARTS ?? '3',
    },
  },
];

let current;
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => current?.kill(signal));
let failed = 0;
for (const run of runs) {
  console.log(`fuzz:nightly: ${run.name}`);
  current = spawn(process.execPath, [vitestBin, ...run.args], {
    cwd: serverDir,
    env: run.env,
    stdio: 'inherit',
  });
  const code = await new Promise((resolve) =>
    current.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))),
  );
  if (code !== 0) failed = code;
}
process.exit(failed);
