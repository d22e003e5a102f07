import { rmSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATION_LOCK_KEY, readMigrations } from '../../src/db/index.ts';
import { createEmptyDatabase, type TestDatabase } from '../db.ts';
import { call, signUp } from './client.ts';
import { startPgBouncer, startServer, type PgBouncerProc, type ServerProc } from './processes.ts';

// Supabase's shape: DATABASE_URL is a pooler in transaction mode (a real PgBouncer here, with a
// server pool of 3, so one client's statements land on different server sessions), and
// DATABASE_DIRECT_URL is the session connection for what needs one (migrations, pg-boss,
// Terraform runs).

let database: TestDatabase;
let bouncer: PgBouncerProc;
let server: ServerProc;
let directUrl: string;

beforeAll(async () => {
  database = await createEmptyDatabase();
  directUrl = database.url;
  bouncer = await startPgBouncer(database.url, { poolSize: 3 });
  const dbName = new URL(database.url).pathname.slice(1);
  server = await startServer({
    DATABASE_URL: bouncer.urlFor(dbName),
    DATABASE_DIRECT_URL: directUrl,
  });
}, 180_000);

afterAll(async () => {
  await server?.stop();
  await bouncer?.stop();
  await database?.drop();
  if (server) rmSync(server.dataDir, { recursive: true, force: true });
});

async function directQuery<T extends pg.QueryResultRow>(text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: directUrl });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

describe('DATABASE_URL through PgBouncer in transaction mode', () => {
  it('migrations ran on the direct URL: every one applied, no lock left behind', async () => {
    const rows = await directQuery<{ n: number }>(
      'SELECT count(*)::int AS n FROM schema_migrations',
    );
    expect(rows[0]!.n).toBe(readMigrations().length);
    // The migrator's session-level lock (one bigint key: classid = high half, objid = low half,
    // objsubid 1). Other advisory locks come and go inside transactions (pg-boss's maintenance,
    // file writes) and say nothing about what the migrator left behind.
    const locks = await directQuery<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted
         AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = ${MIGRATION_LOCK_KEY}`,
    );
    expect(locks[0]!.n).toBe(0);
  });

  it('a whole user session works through the pooler: register, project, files, refresh rotation', async () => {
    const base = server.url;
    const owner = await signUp(base, 'pooled-owner@example.test');
    const me = await call<{ user: { email: string } }>(base, 'GET', '/api/auth/me', {
      token: owner.token,
    });
    expect(me.body.user.email).toBe('pooled-owner@example.test');

    const created = await call<{ project: { id: string } }>(base, 'POST', '/api/projects', {
      token: owner.token,
      body: { name: 'pooled', description: 'through pgbouncer' },
    });
    expect(created.status).toBe(201);
    const id = created.body.project.id;

    // Concurrent writers of one project: serialised by a transaction-scoped advisory lock,
    // each change with its actor named by set_config(…, true) — both safe on a shared session.
    const writes = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        call(base, 'PUT', `/api/projects/${id}/files/src/f${i}.txt`, {
          token: owner.token,
          body: { content: `file ${i}` },
        }),
      ),
    );
    expect(writes.map((w) => w.status)).toEqual(Array(12).fill(201));
    const second = await call<{ file: { version: number } }>(
      base,
      'PUT',
      `/api/projects/${id}/files/src/f0.txt`,
      { token: owner.token, body: { content: 'file 0, again', baseVersion: 1 } },
    );
    expect(second.status).toBe(200);
    expect(second.body.file.version).toBe(2);
    const stale = await call(base, 'PUT', `/api/projects/${id}/files/src/f0.txt`, {
      token: owner.token,
      body: { content: 'lost update', baseVersion: 1 },
    });
    expect(stale.status).toBe(409);
    const list = await call<{ files: { path: string }[] }>(
      base,
      'GET',
      `/api/projects/${id}/files`,
      {
        token: owner.token,
      },
    );
    expect(list.body.files.filter((f) => f.path.startsWith('src/'))).toHaveLength(12);
    const read = await call<{ content: string }>(
      base,
      'GET',
      `/api/projects/${id}/files/src/f0.txt`,
      {
        token: owner.token,
      },
    );
    expect(read.body.content).toBe('file 0, again');
    // The activity trigger saw the actor set inside the same transaction.
    const activity = await call<{ activity: { userId?: string; type: string }[] }>(
      base,
      'GET',
      `/api/projects/${id}/activity`,
      { token: owner.token },
    );
    expect(activity.status).toBe(200);
    expect(activity.body.activity.some((a) => a.userId === owner.userId)).toBe(true);

    // Refresh rotation: the new pair works, the old refresh token is reuse and ends the session.
    const rotated = await call<{ token: string; refreshToken: string }>(
      base,
      'POST',
      '/api/auth/refresh',
      {
        body: { refreshToken: owner.refreshToken },
      },
    );
    expect(rotated.status).toBe(200);
    expect((await call(base, 'GET', '/api/auth/me', { token: rotated.body.token })).status).toBe(
      200,
    );
    const reused = await call<{ error: { code: string } }>(base, 'POST', '/api/auth/refresh', {
      body: { refreshToken: owner.refreshToken },
    });
    expect(reused.status).toBe(401);
    expect(reused.body.error.code).toBe('token_reused');
    const after = await call(base, 'POST', '/api/auth/refresh', {
      body: { refreshToken: rotated.body.refreshToken },
    });
    expect(after.status).toBe(401);
  }, 120_000);

  it('the server never sent a session setting PgBouncer refuses, and logged no database error', () => {
    expect(bouncer.output()).not.toMatch(/unsupported startup parameter/);
    expect(server.output()).not.toMatch(/"level":(50|60)/);
  });
});
