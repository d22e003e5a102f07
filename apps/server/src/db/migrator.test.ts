import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyDatabase, createTestDatabase, type TestDatabase } from '../../test/db.ts';
import { createLogger } from '../common/logger.ts';
import { migrate, readMigrations, type Migration } from './migrator.ts';
import { createDb } from './pool.ts';

const log = createLogger('silent');

/** Opens pools on fresh databases and closes/drops them all after the file. */
const opened: { pool: pg.Pool; database: TestDatabase }[] = [];
async function freshPool(kind: 'empty' | 'migrated'): Promise<pg.Pool> {
  const database = kind === 'empty' ? await createEmptyDatabase() : await createTestDatabase();
  const { pool } = createDb(database.url, 5);
  opened.push({ pool, database });
  return pool;
}
afterAll(async () => {
  for (const { pool, database } of opened) {
    await pool.end();
    await database.drop();
  }
});

async function recorded(pool: pg.Pool): Promise<{ version: number; name: string }[]> {
  const { rows } = await pool.query<{ version: number; name: string }>(
    'SELECT version, name FROM schema_migrations ORDER BY version',
  );
  return rows;
}

async function tableExists(pool: pg.Pool, name: string): Promise<boolean> {
  const { rows } = await pool.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [name]);
  return rows[0]?.t != null;
}

describe('migrate', () => {
  const all = readMigrations();

  it('applies every migration once, records it, and applies nothing the second time', async () => {
    expect(all.length).toBeGreaterThan(0);
    const pool = await freshPool('empty');

    const first = await migrate(pool, log);
    expect(first).toEqual(all.map((m) => m.name));
    expect(await recorded(pool)).toEqual(all.map((m) => ({ version: m.version, name: m.name })));

    expect(await migrate(pool, log)).toEqual([]);
    expect(await recorded(pool)).toHaveLength(all.length);
  });

  it('lets two migrators started together apply each migration exactly once', async () => {
    const database = await createEmptyDatabase();
    const a = createDb(database.url, 2);
    const b = createDb(database.url, 2);
    // b's pool closes before a's entry drops the database.
    opened.push({ pool: b.pool, database: noDrop(database) }, { pool: a.pool, database });

    const [fromA, fromB] = await Promise.all([migrate(a.pool, log), migrate(b.pool, log)]);
    const applied = [...fromA, ...fromB];
    expect(applied.sort()).toEqual(all.map((m) => m.name).sort());
    expect(await recorded(a.pool)).toHaveLength(all.length);
  });

  it('rolls a failing migration back completely and names it in the error', async () => {
    const pool = await freshPool('empty');
    const migrations: Migration[] = [
      { version: 1, name: '001_fine', sql: 'CREATE TABLE fine_table (id int)' },
      {
        version: 2,
        name: '002_broken',
        sql: 'CREATE TABLE half_done (id int); INSERT INTO half_done VALUES (1); SELECT * FROM no_such_table;',
      },
      { version: 3, name: '003_never', sql: 'CREATE TABLE never_table (id int)' },
    ];

    await expect(migrate(pool, log, migrations)).rejects.toThrow(/002_broken/);
    expect(await tableExists(pool, 'fine_table')).toBe(true);
    expect(await tableExists(pool, 'half_done')).toBe(false);
    expect(await tableExists(pool, 'never_table')).toBe(false);
    expect(await recorded(pool)).toEqual([{ version: 1, name: '001_fine' }]);
  });
});

describe('schema', () => {
  let pool: pg.Pool;
  beforeAll(async () => {
    pool = await freshPool('migrated');
  });

  /** Runs `fn` in a transaction with `vaporform.source` set, as the application does. */
  async function asSource<T>(source: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT set_config('vaporform.source', $1, true)`, [source]);
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK');
      throw err;
    } finally {
      client.release();
    }
  }

  let userSeq = 0;
  async function createUser(): Promise<string> {
    userSeq += 1;
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO users (email, username, full_name, password_hash)
       VALUES ($1, $2, 'Test User', 'x') RETURNING id`,
      [`user${userSeq}@example.test`, `user${userSeq}`],
    );
    return rows[0]!.id;
  }

  async function createProject(userId: string, name: string): Promise<string> {
    const { rows } = await pool.query<{ id: string }>(
      'INSERT INTO projects (user_id, name) VALUES ($1, $2) RETURNING id',
      [userId, name],
    );
    return rows[0]!.id;
  }

  async function addFile(
    db: pg.Pool | pg.PoolClient,
    projectId: string,
    filePath: string,
    content: string,
    lastSource = 'user',
  ): Promise<void> {
    await db.query(
      `INSERT INTO project_files (project_id, file_path, file_name, content, content_hash, size_bytes, last_source)
       VALUES ($1, $2, $3, $4, encode(sha256(convert_to($4, 'UTF8')), 'hex'), octet_length($4), $5)`,
      [projectId, filePath, filePath.split('/').pop(), content, lastSource],
    );
  }

  async function stats(
    projectId: string,
  ): Promise<{ total_files: number; total_size_bytes: number }> {
    const { rows } = await pool.query<{ total_files: number; total_size_bytes: number }>(
      'SELECT total_files, total_size_bytes FROM projects WHERE id = $1',
      [projectId],
    );
    return rows[0]!;
  }

  it('has every table of the design', async () => {
    const { rows } = await pool.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables
       WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
    );
    const tables = rows.map((r) => r.table_name);
    expect(tables).toEqual(
      expect.arrayContaining([
        'users',
        'sessions',
        'refresh_tokens',
        'projects',
        'project_members',
        'project_files',
        'file_versions',
        'claude_interactions',
        'project_activity',
        'infrastructure_resources',
        'project_integrations',
        'project_templates',
        'deployments',
        'schema_migrations',
      ]),
    );
  });

  it('bumps updated_at on update', async () => {
    const userId = await createUser();
    await pool.query(`UPDATE users SET updated_at = '2000-01-01T00:00:00Z' WHERE id = $1`, [
      userId,
    ]);
    // The trigger overrides even an explicit value: updated_at always means "now".
    const { rows } = await pool.query<{ updated_at: Date }>(
      `UPDATE users SET full_name = 'Renamed' WHERE id = $1 RETURNING updated_at`,
      [userId],
    );
    expect(rows[0]!.updated_at.getTime()).toBeGreaterThan(Date.parse('2020-01-01T00:00:00Z'));
  });

  it('keeps project file statistics right through insert, update and delete', async () => {
    const projectId = await createProject(await createUser(), 'stats');
    expect(await stats(projectId)).toEqual({ total_files: 0, total_size_bytes: 0 });

    await addFile(pool, projectId, 'a.txt', 'hello'); // 5 bytes
    await addFile(pool, projectId, 'src/b.txt', 'héllo wörld'); // 13 bytes in UTF-8
    expect(await stats(projectId)).toEqual({ total_files: 2, total_size_bytes: 18 });

    await pool.query(
      `UPDATE project_files SET content = 'hi', size_bytes = 2 WHERE project_id = $1 AND file_path = 'a.txt'`,
      [projectId],
    );
    expect(await stats(projectId)).toEqual({ total_files: 2, total_size_bytes: 15 });

    await pool.query(
      `DELETE FROM project_files WHERE project_id = $1 AND file_path = 'src/b.txt'`,
      [projectId],
    );
    expect(await stats(projectId)).toEqual({ total_files: 1, total_size_bytes: 2 });

    await pool.query('DELETE FROM project_files WHERE project_id = $1', [projectId]);
    expect(await stats(projectId)).toEqual({ total_files: 0, total_size_bytes: 0 });
  });

  it('logs file activity with the source set for the transaction', async () => {
    const projectId = await createProject(await createUser(), 'activity');

    await asSource('claude', (c) => addFile(c, projectId, 'gen.ts', 'export {};'));
    await asSource('user', (c) =>
      c.query(
        `UPDATE project_files SET content = 'x', size_bytes = 1 WHERE project_id = $1 AND file_path = 'gen.ts'`,
        [projectId],
      ),
    );
    await asSource('system', (c) =>
      c.query(`DELETE FROM project_files WHERE project_id = $1`, [projectId]),
    );
    // Without a setting, the file's own last_source decides.
    await addFile(pool, projectId, 'from-claude.ts', '1', 'claude');

    const { rows } = await pool.query<{
      activity_type: string;
      source_type: string;
      affected_resources: string[];
    }>(
      `SELECT activity_type, source_type, affected_resources FROM project_activity
       WHERE project_id = $1 AND activity_type LIKE 'file_%' ORDER BY created_at, id`,
      [projectId],
    );
    // created_at is the transaction time: each statement above ran in its own transaction.
    expect(rows).toEqual([
      { activity_type: 'file_created', source_type: 'claude', affected_resources: ['gen.ts'] },
      { activity_type: 'file_modified', source_type: 'user', affected_resources: ['gen.ts'] },
      { activity_type: 'file_deleted', source_type: 'system', affected_resources: ['gen.ts'] },
      {
        activity_type: 'file_created',
        source_type: 'claude',
        affected_resources: ['from-claude.ts'],
      },
    ]);
  });

  it('deletes a project with its files, activity and members (cascade)', async () => {
    const userId = await createUser();
    const projectId = await createProject(userId, 'doomed');
    await pool.query(
      `INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, 'owner')`,
      [projectId, userId],
    );
    await addFile(pool, projectId, 'one.txt', '1');
    await addFile(pool, projectId, 'two.txt', '22');

    await pool.query('DELETE FROM projects WHERE id = $1', [projectId]);

    for (const table of ['project_files', 'project_activity', 'project_members']) {
      const { rows } = await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${table} WHERE project_id = $1`,
        [projectId],
      );
      expect(rows[0]!.n, table).toBe(0);
    }
  });

  it('ships the official templates', async () => {
    const { rows } = await pool.query<{ id: string }>(
      'SELECT id FROM project_templates WHERE is_official ORDER BY id',
    );
    expect(rows.map((r) => r.id)).toEqual(
      expect.arrayContaining([
        'node-http',
        'react-vite-pwa',
        'hono-api',
        'express-react',
        'python-fastapi',
        'go-http',
      ]),
    );
  });
});

/** The same database, for a second pool whose owner entry must not drop it twice. */
function noDrop(database: TestDatabase): TestDatabase {
  return { url: database.url, drop: async () => undefined };
}
