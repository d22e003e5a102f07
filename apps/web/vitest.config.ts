import { defineConfig } from 'vitest/config';

// Component tests run in jsdom against the real server (started once per run by the global
// setup, on a free loopback port with its own embedded PostgreSQL).
export default defineConfig({
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.ts', 'src/**/*.test.tsx'],
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 180_000,
    pool: 'forks',
    maxWorkers: 1,
    minWorkers: 1,
  },
});
