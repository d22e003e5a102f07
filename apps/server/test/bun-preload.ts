// `bun test` (npm run test:bun): the run's PostgreSQL and migrated template, as vitest's
// globalSetup (test/global-setup.ts) makes them; test/db.ts reads them from the environment.
import { afterAll } from 'bun:test';
import setup from './global-setup.ts';

const teardown = await setup({ provide: () => undefined } as never);
afterAll(teardown);
