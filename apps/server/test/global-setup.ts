import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createLogger } from '../src/common/logger.ts';
// Not ../src/db/index.ts: the embedded server belongs to db-server.ts, not to this process.
import { migrate } from '../src/db/migrator.ts';
import { createDb } from '../src/db/pool.ts';
import { findPostgresBin } from './system-postgres.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the maintenance database: CREATE/DROP DATABASE go through it. */
    vfAdminUrl: string;
    /** URL of `vf_template`, the migrated database every test database is copied from. */
    vfTemplateUrl: string;
    /** Short id of this run; test database names carry it so teardown finds leftovers. */
    vfRunId: string;
  }
}

const TEMPLATE_DB = 'vf_template';

type Cleanup = () => Promise<void> | void;

const serverDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Starts the run's PostgreSQL (VF_TEST_DB=embedded|external), migrates `vf_template` and hands
 * the URLs to the test files (`inject('vfAdminUrl')`, also VF_TEST_ADMIN_URL in the env).
 * @returns the teardown: stops the server, removes temp dirs.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cleanups: Cleanup[] = [];
  const teardown = async (): Promise<void> => {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (err) {
        console.error(`test teardown: ${(err as Error).message}`);
      }
    }
  };
  try {
    const adminUrl = await startServer(cleanups);
    const runId = randomBytes(4).toString('hex');
    const templateUrl = await createTemplate(adminUrl);
    cleanups.push(() => dropRunDatabases(adminUrl, runId));

    project.provide('vfAdminUrl', adminUrl);
    project.provide('vfTemplateUrl', templateUrl);
    project.provide('vfRunId', runId);
    process.env.VF_TEST_ADMIN_URL = adminUrl;
    process.env.VF_TEST_TEMPLATE_URL = templateUrl;
    process.env.VF_TEST_RUN_ID = runId;
    return teardown;
  } catch (err) {
    await teardown();
    throw err;
  }
}

/** Starts (or, with DATABASE_URL in external mode, adopts) a server; returns its admin URL. */
async function startServer(cleanups: Cleanup[]): Promise<string> {
  const mode = process.env.VF_TEST_DB ?? 'embedded';
  if (mode !== 'embedded' && mode !== 'external') {
    throw new Error(`VF_TEST_DB must be "embedded" or "external", not "${mode}"`);
  }
  if (mode === 'external' && process.env.DATABASE_URL) {
    // Someone else's server: we create and drop only our own databases on it.
    const url = process.env.DATABASE_URL;
    cleanups.push(() => dropDatabase(url, TEMPLATE_DB));
    return url;
  }
  if (mode === 'external') findPostgresBin(); // fail here, with the clear message, if missing

  const dir = mkdtempSync(path.join(tmpdir(), `vf-test-pg-${mode}-`));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  // As root, postgres runs as the `postgres` user, which must be able to enter `dir`.
  if (process.getuid?.() === 0) chmodSync(dir, 0o755);
  return startServerProcess(mode, dir, cleanups);
}

/** Runs test/db-server.ts and waits for its READY line. */
function startServerProcess(mode: string, dir: string, cleanups: Cleanup[]): Promise<string> {
  // On Node always (under `bun test` too): the embedded server's holder is a Node program.
  const child = spawn(
    process.versions.bun ? 'node' : process.execPath,
    ['--import', 'tsx', path.join(serverDir, 'test', 'db-server.ts'), mode, dir],
    { cwd: serverDir, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(-1));
  });
  cleanups.push(async () => {
    child.stdin.end(); // the holder stops the server when its stdin closes
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8_000);
  });
  return new Promise((resolve, reject) => {
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const line = stdout.split('\n').find((l) => l.startsWith('READY '));
      if (line) resolve((JSON.parse(line.slice('READY '.length)) as { adminUrl: string }).adminUrl);
    });
    void exited.then((code) =>
      reject(
        new Error(`the ${mode} test database did not start (exit ${code}):\n${stderr.trim()}`),
      ),
    );
  });
}

/** (Re)creates `vf_template` and applies every migration to it. */
async function createTemplate(adminUrl: string): Promise<string> {
  await dropDatabase(adminUrl, TEMPLATE_DB);
  await adminQuery(adminUrl, `CREATE DATABASE ${TEMPLATE_DB}`);
  const templateUrl = withDatabase(adminUrl, TEMPLATE_DB);
  const { pool } = createDb(templateUrl, 2);
  try {
    await migrate(pool, createLogger('silent'));
  } finally {
    // No connection may stay open: CREATE DATABASE ... TEMPLATE refuses a template in use.
    await pool.end();
  }
  return templateUrl;
}

async function dropRunDatabases(adminUrl: string, runId: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE $1`,
      [`vf_test_${runId}_%`],
    );
    for (const { datname } of rows) {
      await client.query(
        `DROP DATABASE IF EXISTS ${client.escapeIdentifier(datname)} WITH (FORCE)`,
      );
    }
  } finally {
    await client.end();
  }
}

async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
