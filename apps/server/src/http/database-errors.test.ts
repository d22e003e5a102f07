import { Hono } from 'hono';
import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { adminUrl } from '../../test/db.ts';
import { renderError } from './errors.ts';
import { isDatabaseUnreachable } from '../db/connection-errors.ts';
import { createDb } from '../db/pool.ts';
import { freePort } from '../db/embedded.ts';

/** The error a real query raises, or undefined when it succeeds. */
async function failureOf(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
    return undefined;
  } catch (err) {
    return err;
  }
}

/** A one-route app that throws `err` through the real error renderer. */
async function rendered(err: unknown): Promise<Response> {
  const app = new Hono();
  app.get('/', () => {
    throw err;
  });
  app.onError(renderError);
  return app.request('/');
}

describe('a database that cannot be reached is a 503, not a 500', () => {
  it('connection refused (the server is down): 503 unavailable with Retry-After', async () => {
    const port = await freePort();
    const { pool, db } = createDb(`postgres://nobody:x@127.0.0.1:${port}/none`);
    try {
      const err = await failureOf(() => db.selectNoFrom((eb) => eb.lit(1).as('one')).execute());
      expect(isDatabaseUnreachable(err)).toBe(true);
      const res = await rendered(err);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(await res.json()).toEqual({
        error: {
          code: 'unavailable',
          message: 'The database is not reachable at the moment; retry shortly',
        },
      });
    } finally {
      await pool.end();
    }
  });

  it('a connection terminated by the server (57P01), then the dead client, are 503', async () => {
    const client = new pg.Client({ connectionString: adminUrl() });
    client.on('error', () => undefined);
    await client.connect();
    const killer = new pg.Client({ connectionString: adminUrl() });
    await killer.connect();
    try {
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const sleeping = failureOf(() => client.query('SELECT pg_sleep(10)'));
      await new Promise((r) => setTimeout(r, 200));
      await killer.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
      const terminated = await sleeping;
      expect((terminated as { code?: string }).code).toBe('57P01');
      expect(isDatabaseUnreachable(terminated)).toBe(true);
      expect((await rendered(terminated)).status).toBe(503);

      const afterwards = await failureOf(() => client.query('SELECT 1'));
      expect(isDatabaseUnreachable(afterwards)).toBe(true);
      expect((await rendered(afterwards)).status).toBe(503);
    } finally {
      await killer.end();
      await client.end().catch(() => undefined);
    }
  });

  it('a connection lost inside a transaction fails that request (503) and not the process', async () => {
    const { pool, db } = createDb(adminUrl(), 2);
    const killer = new pg.Client({ connectionString: adminUrl() });
    await killer.connect();
    try {
      const err = await failureOf(() =>
        db.transaction().execute(async (trx) => {
          const { rows } = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(trx);
          // The server ends this session while the transaction holds it between two statements:
          // node-postgres emits 'error' on the checked-out client (fatal without a listener).
          await killer.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
          await new Promise((r) => setTimeout(r, 300));
          await sql`SELECT 1`.execute(trx);
        }),
      );
      expect(isDatabaseUnreachable(err)).toBe(true);
      expect((await rendered(err)).status).toBe(503);
      // The pool dropped the dead client: the next query gets a fresh connection.
      const { rows } = await sql<{ one: number }>`SELECT 1 AS one`.execute(db);
      expect(rows).toEqual([{ one: 1 }]);
    } finally {
      await killer.end();
      await pool.end();
    }
  });

  it('a fault of the statement stays a bug (500), never hidden as unavailable', async () => {
    const pool = new pg.Pool({ connectionString: adminUrl(), max: 1 });
    try {
      const err = await failureOf(() => pool.query('SELECT * FROM no_such_table'));
      expect((err as { code?: string }).code).toBe('42P01');
      expect(isDatabaseUnreachable(err)).toBe(false);
      expect((await rendered(err)).status).toBe(500);
    } finally {
      await pool.end();
    }
  });
});
