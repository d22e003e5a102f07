import { defineConfig } from 'vitest/config';

// One PostgreSQL per run (test/global-setup.ts); each test file makes its own database from the
// migrated template (test/db.ts). Two forks: this box has 2 cores and PostgreSQL needs some too.
export default defineConfig({
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
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
