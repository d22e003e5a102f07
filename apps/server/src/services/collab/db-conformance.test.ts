import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { runMochaSpec } from './conformance/run-mocha.ts';

const spec = fileURLToPath(new URL('./conformance/postgres-db.spec.ts', import.meta.url));

// ShareDB 7's adapter suite without the query tests has this many tests; fewer passing means
// tests were skipped or never ran, which must not pass as green.
const EXPECTED_PASSES = 176;

describe('PostgresDB passes ShareDB’s own database adapter conformance suite', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
  });

  afterAll(async () => {
    await database?.drop();
  });

  it('runs require("sharedb/test/db") with mocha: no failure', async () => {
    const result = await runMochaSpec(spec, { VF_COLLAB_DB_URL: database.url }, 240_000);
    console.log(
      `ShareDB conformance: ${result.passes} passed, ${result.failures} failed, ${result.pending} pending`,
    );
    if (result.failures > 0) {
      console.error(`ShareDB conformance failures:\n  ${result.failed.join('\n  ')}`);
      if (result.passes === 0) console.error(result.output);
    }
    expect(result.failed).toEqual([]);
    expect(result.failures).toBe(0);
    expect(result.passes).toBeGreaterThanOrEqual(EXPECTED_PASSES);
  }, 300_000);
});
