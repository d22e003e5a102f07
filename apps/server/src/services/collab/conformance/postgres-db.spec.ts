// ShareDB's own database adapter conformance suite, run by mocha exactly as ShareDB runs it for
// its MemoryDB (test/db-memory.js) and as sharedb-postgres ran it: `require('sharedb/test/db')`
// with a `create` that hands out a fresh adapter on an empty database. No `getQuery` is given,
// so the query, queryPoll, queryPollDoc and projection-by-query tests are left out by the suite
// itself: PostgresDB has no query language (the collab service opens documents by id only),
// which is what sharedb-postgres did too.
//
// Run by db-conformance.test.ts (vitest), which starts the run's PostgreSQL and passes
// VF_COLLAB_DB_URL (a migrated database of this run's server):
//   node --import tsx mocha.js --file sharedb/test/setup.js --reporter json postgres-db.spec.ts
import { createRequire } from 'node:module';
import pg from 'pg';
import { PostgresDB } from '../db-postgres.ts';

const require = createRequire(import.meta.url);
const url = process.env.VF_COLLAB_DB_URL;
if (!url) throw new Error('VF_COLLAB_DB_URL is not set (run through db-conformance.test.ts)');

const mocha = globalThis as unknown as {
  describe(title: string, body: () => void): void;
  after(body: () => Promise<void>): void;
};

const pool = new pg.Pool({ connectionString: url, max: 10 });
pool.on('error', () => undefined);

type Create = (callback: (err: Error | null, db?: PostgresDB) => void) => void;

// A fresh adapter on empty tables, as MemoryDB is fresh for each test.
const create: Create = (callback) => {
  pool.query('DELETE FROM collab_ops; DELETE FROM collab_snapshots').then(
    () => callback(null, new PostgresDB(pool)),
    (err: Error) => callback(err),
  );
};

mocha.describe('PostgresDB (ShareDB adapter conformance)', () => {
  mocha.after(() => pool.end());
  (require('sharedb/test/db') as (options: { create: Create }) => void)({ create });
});
