import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readdirSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import pg from 'pg';

/** A PostgreSQL server started from the machine's own binaries for one test run. */
export interface SystemPostgres {
  /** Superuser URL to the `postgres` maintenance database. */
  adminUrl: string;
  stop(): Promise<void>;
}

const USER = 'vftest';

/**
 * The directory holding the machine's PostgreSQL server binaries: `VF_PG_BIN`, else Debian's
 * `/usr/lib/postgresql/15/bin`, else the newest `/usr/lib/postgresql/<n>/bin`.
 * @throws when no `initdb` and `postgres` are found there, naming the directory and the fix.
 */
export function findPostgresBin(): string {
  const candidates: string[] = [];
  if (process.env.VF_PG_BIN) {
    candidates.push(process.env.VF_PG_BIN);
  } else {
    candidates.push('/usr/lib/postgresql/15/bin');
    const root = '/usr/lib/postgresql';
    if (existsSync(root)) {
      const versions = readdirSync(root)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a));
      candidates.push(...versions.map((v) => path.join(root, v, 'bin')));
    }
  }
  const found = candidates.find(
    (dir) => existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'postgres')),
  );
  if (!found) {
    throw new Error(
      `VF_TEST_DB=external needs PostgreSQL server binaries (initdb, postgres), looked in: ${candidates.join(', ')}. ` +
        'Install them (apt-get install postgresql), point VF_PG_BIN at their directory, or set DATABASE_URL to a running server.',
    );
  }
  return found;
}

/**
 * initdb into `dir/data` and start `postgres` on a free 127.0.0.1 port, TCP only, password
 * auth. As root both run as the unprivileged `postgres` user (created if missing).
 * The server's output goes to `dir/postgres.log`, quoted in the error if it fails to start.
 * @throws when initdb or the server fails.
 */
export async function startSystemPostgres(dir: string, port: number): Promise<SystemPostgres> {
  const bin = findPostgresBin();
  const ids = process.getuid?.() === 0 ? postgresUserIds() : undefined;
  const password = randomBytes(18).toString('base64url');
  const dataDir = path.join(dir, 'data');
  const pwFile = path.join(dir, 'pwfile');
  const logFile = path.join(dir, 'postgres.log');
  writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  writeFileSync(logFile, '');
  if (ids) {
    // postgres must be able to enter the directory and write its data dir inside it.
    chmodSync(dir, 0o755);
    for (const p of [dir, pwFile, logFile]) chownSync(p, ids.uid, ids.gid);
  }
  const spawnIds = ids ? { uid: ids.uid, gid: ids.gid } : {};

  await run(
    path.join(bin, 'initdb'),
    [
      '-D',
      dataDir,
      '-U',
      USER,
      `--pwfile=${pwFile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
    ],
    spawnIds,
    logFile,
  );

  const log = openSync(logFile, 'a');
  const child = spawn(
    path.join(bin, 'postgres'),
    [
      '-D',
      dataDir,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      // A throwaway cluster: durability is not worth the disk flushes here.
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=200',
    ],
    { ...spawnIds, stdio: ['ignore', log, log], detached: false },
  );
  closeSync(log);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(-1));
  });
  // If the test process dies without teardown, do not leave a server behind.
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const adminUrl = `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  try {
    await waitUntilReady(adminUrl, exited, logFile);
  } catch (err) {
    await stopChild(child, exited);
    process.off('exit', killOnExit);
    throw err;
  }
  return {
    adminUrl,
    stop: async () => {
      await stopChild(child, exited);
      process.off('exit', killOnExit);
    },
  };
}

function postgresUserIds(): { uid: number; gid: number } {
  const id = (flag: string): number =>
    Number(
      execFileSync('id', [flag, 'postgres'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString(),
    );
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync(
      'useradd',
      ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'],
      {
        stdio: 'ignore',
      },
    );
    return { uid: id('-u'), gid: id('-g') };
  }
}

function run(
  cmd: string,
  args: string[],
  ids: { uid?: number; gid?: number },
  logFile: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const log = openSync(logFile, 'a');
    const child = spawn(cmd, args, { ...ids, stdio: ['ignore', log, log] });
    closeSync(log);
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${path.basename(cmd)} exited with ${code}:\n${tail(logFile)}`));
    });
  });
}

async function waitUntilReady(
  url: string,
  exited: Promise<number | null>,
  logFile: string,
): Promise<void> {
  let gone: number | null | undefined;
  void exited.then((code) => (gone = code));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (gone !== undefined) {
      throw new Error(`postgres exited with ${gone} while starting:\n${tail(logFile)}`);
    }
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch (err) {
      if (Date.now() > deadline) {
        throw new Error(
          `postgres did not accept connections within 30 s (${(err as Error).message}):\n${tail(logFile)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

/** Fast shutdown (SIGINT), then SIGKILL if it takes longer than 15 s. */
async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
