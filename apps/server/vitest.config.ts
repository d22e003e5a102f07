import { configDefaults, defineConfig } from 'vitest/config';

// One PostgreSQL per run (test/global-setup.ts); each test file makes its own database from the
// migrated template (test/db.ts). Two forks: this box has 2 cores and PostgreSQL needs some too.
export default defineConfig({
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // VF_TEST_EXCLUDE: comma-separated globs left out of this run (CI's second database pass
    // leaves out the suites about container runtimes, which the first pass ran).
    exclude: [
      ...configDefaults.exclude,
      ...(process.env.VF_TEST_EXCLUDE ?? '').split(',').filter(Boolean),
    ],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    minWorkers: 1,
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
