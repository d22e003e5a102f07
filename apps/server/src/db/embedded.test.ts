import { spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../common/logger.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './embedded.ts';
import { createDb } from './pool.ts';
import { isAlive, postmasterPid } from './postmaster.ts';

const log = createLogger('silent');

async function query<R extends pg.QueryResultRow>(url: string, sql: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql)).rows;
  } finally {
    await client.end();
  }
}

/** Listening TCP sockets on `port` from /proc, as "address:port" in hex (Linux only). */
function listeners(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const found: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state === '0A' && local?.endsWith(`:${hexPort}`)) found.push(local);
    }
  }
  return found;
}

/** A temp dir the `postgres` user (as root the server runs as it) can enter. */
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'vf-embedded-test-'));
  chmodSync(dir, 0o755);
  return dir;
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts the embedded server in a separate Node process (the test harness's db-server) and
 * kills that process with SIGKILL once the server is up: its postmaster is left running.
 */
async function orphanPostgres(dir: string): Promise<number> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.resolve(import.meta.dirname, '../../test/db-server.ts'),
      'embedded',
      dir,
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('READY ')) resolve();
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => reject(new Error(`db-server exited ${code}: ${out}`)));
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  const pid = postmasterPid(path.join(dir, 'pg'));
  if (!pid || !isAlive(pid)) throw new Error('the postmaster did not outlive its server');
  return pid;
}

describe('startEmbeddedPostgres', () => {
  let dir: string;
  let server: EmbeddedDatabase | undefined;
  const others: string[] = [];

  beforeAll(() => {
    dir = tempDir();
  });

  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
    for (const other of others) rmSync(other, { recursive: true, force: true });
  });

  it('keeps its data across a restart without re-initialising, on 127.0.0.1 only', async () => {
    server = await startEmbeddedPostgres(dir, log);
    const firstUrl = server.url;
    await query(firstUrl, 'CREATE TABLE kept (id int PRIMARY KEY, note text)');
    await query(firstUrl, `INSERT INTO kept VALUES (1, 'survives a restart')`);

    const port = Number(new URL(firstUrl).port);
    const [settings] = await query<{ listen: string; sockets: string }>(
      firstUrl,
      `SELECT current_setting('listen_addresses') AS listen,
              current_setting('unix_socket_directories') AS sockets`,
    );
    expect(settings).toEqual({ listen: '127.0.0.1', sockets: '' });
    if (existsSync('/proc/net/tcp')) {
      // 0100007F is 127.0.0.1 in /proc's little-endian hex; nothing on 0.0.0.0 or IPv6.
      expect(listeners(port)).toEqual([
        `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`,
      ]);
    }

    const pgVersion = path.join(dir, 'pg', 'PG_VERSION');
    const before = statSync(pgVersion);
    await server.stop();
    server = undefined;

    server = await startEmbeddedPostgres(dir, log);
    const rows = await query<{ id: number; note: string }>(server.url, 'SELECT id, note FROM kept');
    expect(rows).toEqual([{ id: 1, note: 'survives a restart' }]);
    const after = statSync(pgVersion);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
  });

  it('restarts by itself when its postmaster is killed (SIGKILL); a pool on its URL recovers', async () => {
    server ??= await startEmbeddedPostgres(dir, log);
    const { pool, db } = createDb(server.url, 4);
    try {
      await pool.query('SELECT 1');
      const killed = server.pid()!;
      process.kill(killed, 'SIGKILL');
      await until('the restart', () => server!.pid() !== undefined && server!.pid() !== killed);
      await until('the pool to reconnect', () =>
        pool.query('SELECT 1').then(
          () => true,
          () => false,
        ),
      );
      const rows = await db
        .selectFrom('kept' as never)
        .selectAll()
        .execute();
      expect(rows).toEqual([{ id: 1, note: 'survives a restart' }]);
      expect(isAlive(killed)).toBe(false);
    } finally {
      await pool.end();
    }
  }, 60_000);

  it('takes over the server a killed process left on its data dir, never one of another dir', async () => {
    server ??= await startEmbeddedPostgres(dir, log);
    const other = tempDir();
    others.push(other);
    const orphan = await orphanPostgres(other);

    // The server of a process still running (this one) is not an orphan: never stopped.
    const running = server.pid()!;
    await expect(startEmbeddedPostgres(dir, log)).rejects.toThrow(
      /in use by another running server/,
    );
    expect(server.pid()).toBe(running);
    await query(server.url, 'SELECT 1');

    // Without the take-over this start failed on postmaster.pid ("lock file already exists").
    let second: EmbeddedDatabase | undefined = await startEmbeddedPostgres(other, log);
    try {
      expect(isAlive(orphan)).toBe(false);
      expect(second.pid()).not.toBe(orphan);
      await query(second.url, 'SELECT 1');
      await second.stop();
      second = undefined;

      // A lock file naming a live postgres of another data dir (this test's first server), as a
      // reused pid would: that server is left alone, the stale file is ignored.
      const foreign = server.pid()!;
      copyFileSync(
        path.join(dir, 'pg', 'postmaster.pid'),
        path.join(other, 'pg', 'postmaster.pid'),
      );
      second = await startEmbeddedPostgres(other, log);
      expect(isAlive(foreign)).toBe(true);
      expect(server.pid()).toBe(foreign);
      await query(server.url, 'SELECT 1');
      await query(second.url, 'SELECT 1');
    } finally {
      await second?.stop();
    }
  }, 120_000);
});
