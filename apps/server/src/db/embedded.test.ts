import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../common/logger.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './embedded.ts';

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

describe('startEmbeddedPostgres', () => {
  let dir: string;
  let server: EmbeddedDatabase | undefined;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'vf-embedded-test-'));
    // As root the server runs as `postgres`, which must be able to enter the directory.
    chmodSync(dir, 0o755);
  });

  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
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
});
