import { defineConfig } from 'vitest/config';

// The packages' tests (packages/sdk: the contract checker; packages/cli: the `vaporform`
// command against a real server started as a child process). One file at a time: the CLI
// tests start a whole server with its embedded PostgreSQL.
export default defineConfig({
  test: {
    environment: 'node',
    include: ['*/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    // Generous: a CLI story spawns several processes against a real server on a loaded machine.
    testTimeout: 180_000,
    hookTimeout: 300_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
    minWorkers: 1,
  },
});
