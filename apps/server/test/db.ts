import { randomBytes } from 'node:crypto';
import pg from 'pg';
import * as vitest from 'vitest';

/** A database that belongs to one test file. */
export interface TestDatabase {
  url: string;
  /** Drops the database, closing any connection still open on it. */
  drop(): Promise<void>;
}

/**
 * What test/global-setup.ts provided, under vitest; `bun test` (test/bun-preload.ts) has no
 * `inject` and sets the same values in the environment.
 */
function provided(key: 'vfAdminUrl' | 'vfTemplateUrl' | 'vfRunId'): string | undefined {
  return typeof vitest.inject === 'function' ? vitest.inject(key) : undefined;
}

/** Any number, the same in every worker: serialises copies of the template across forks. */
const TEMPLATE_LOCK_KEY = 7_461_902_114;

/**
 * A fresh, fully migrated database copied from `vf_template` (fast: no migrations run).
 * @example
 *   const testDb = await createTestDatabase();
 *   const { pool, db } = createDb(testDb.url);
 *   afterAll(async () => { await pool.end(); await testDb.drop(); });
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const templateName = new URL(templateUrl()).pathname.slice(1);
  return createDatabase(`TEMPLATE ${templateName}`);
}

/** A fresh database with no schema at all, e.g. to run migrations into. */
export async function createEmptyDatabase(): Promise<TestDatabase> {
  return createDatabase('TEMPLATE template0');
}

/** Superuser URL of the maintenance database of the run's server. */
export function adminUrl(): string {
  return provided('vfAdminUrl') ?? required('VF_TEST_ADMIN_URL');
}

function templateUrl(): string {
  return provided('vfTemplateUrl') ?? required('VF_TEST_TEMPLATE_URL');
}

function runId(): string {
  return provided('vfRunId') ?? process.env.VF_TEST_RUN_ID ?? 'x';
}

async function createDatabase(source: string): Promise<TestDatabase> {
  const name = `vf_test_${runId()}_${randomBytes(5).toString('hex')}`;
  const admin = adminUrl();
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    // Forks copy the template one at a time; a copy fails while anyone is connected to it.
    await client.query('SELECT pg_advisory_lock($1)', [TEMPLATE_LOCK_KEY]);
    for (let attempt = 1; ; attempt++) {
      try {
        await client.query(`CREATE DATABASE ${name} ${source}`);
        break;
      } catch (err) {
        const inUse = (err as { code?: string }).code === '55006'; // object_in_use
        if (!inUse || attempt >= 50) throw err;
        await new Promise((r) => setTimeout(r, 100 * Math.min(attempt, 10)));
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [TEMPLATE_LOCK_KEY]).catch(() => undefined);
    await client.end();
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

function required(envName: string): string {
  const value = process.env[envName];
  if (!value) {
    throw new Error(
      `${envName} is not set: run tests through vitest with test/global-setup.ts (npm test)`,
    );
  }
  return value;
}
