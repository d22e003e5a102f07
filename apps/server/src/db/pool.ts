import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';

// Return int8 and numeric as JS numbers: counts and byte totals here stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (v) => Number(v));

/**
 * The query builder every store uses. Stores declare their own tables and view this through
 * `db.withTables<TheirTables>()`, so a service's tables stay its own.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export type Db = Kysely<{}>;

/**
 * Opens a connection pool and a Kysely instance on it.
 * `pooled`: the URL is a pooler in transaction mode (PgBouncer, Supavisor). Server sessions are
 * shared there, so no session setting is sent at connect (PgBouncer refuses `statement_timeout`
 * as a startup parameter): set the timeouts on the database role instead
 * (`ALTER ROLE … SET statement_timeout = '30s'`). Nothing sent through such a pool may rely on
 * session state: only transaction-scoped locks and `set_config(…, true)`, unnamed statements.
 */
export function createDb(
  url: string,
  max = 20,
  options: { pooled?: boolean } = {},
): { pool: pg.Pool; db: Db } {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    idleTimeoutMillis: 10_000,
    connectionTimeoutMillis: 10_000,
    ...(options.pooled
      ? {}
      : { statement_timeout: 30_000, idle_in_transaction_session_timeout: 30_000 }),
    application_name: 'vaporform',
  });
  // A client losing its connection (the server died or restarts) must not crash the process:
  // idle, the pool replaces it; checked out (e.g. inside a transaction), its next query fails
  // with a connection error (503) and the pool discards it on release.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  const db = new Kysely<{}>({ dialect: new PostgresDialect({ pool }) });
  return { pool, db };
}
