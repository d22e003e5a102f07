import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { loadConfig, type Config } from '../src/config.ts';
import { createLogger } from '../src/common/logger.ts';
import { createDb } from '../src/db/index.ts';
import { composeServices, type Services } from '../src/compose.ts';
import { createApp } from '../src/http/app.ts';
import { createTestDatabase } from './db.ts';

/** A fully composed server on its own fresh database, driven through `app.request()`. */
export interface TestApp {
  app: OpenAPIHono;
  services: Services;
  config: Config;
  /** Every log line written so far (JSON strings), to check what reaches the logs. */
  logs: string[];
  databaseUrl: string;
  close(): Promise<void>;
}

/**
 * Builds the real server (same composition as main.ts) against a new test database, or against
 * `options.databaseUrl` and `options.dataDir` (another instance's: a second server of the same
 * deployment, sharing its generated keys; the first instance's `close()` removes them).
 * @param env extra environment, parsed by the real config loader.
 */
export async function createTestApp(
  env: Record<string, string> = {},
  options: { databaseUrl?: string; dataDir?: string } = {},
): Promise<TestApp> {
  const database = options.databaseUrl
    ? { url: options.databaseUrl, drop: async () => undefined }
    : await createTestDatabase();
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'vf-app-'));
  const config = loadConfig({
    VAPORFORM_DATA_DIR: dataDir,
    DATABASE_URL: database.url,
    LOG_LEVEL: 'debug',
    VAPORFORM_LOGIN_LIMIT_PER_IP: '1000',
    VAPORFORM_LOGIN_LIMIT_PER_ACCOUNT: '1000',
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const log = createLogger(config.logLevel, sink);
  const { pool, db } = createDb(database.url, 10);
  const services = await composeServices({ config, log, pool, db });
  const app = createApp(services);
  return {
    app,
    services,
    config,
    logs,
    databaseUrl: database.url,
    async close() {
      await services.close();
      await db.destroy();
      await database.drop();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A JSON request through `app.request()`; returns the status, headers and parsed body. */
export async function call(
  app: OpenAPIHono,
  method: string,
  url: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string>; env?: unknown } = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  }
  const res = await app.request(url, { method, headers, body }, options.env as never);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

let counter = 0;

/** Registers a fresh user and signs in; returns the tokens and the user. */
export async function registerAndLogin(
  app: OpenAPIHono,
  input: { email?: string; password?: string; name?: string } = {},
): Promise<{
  token: string;
  refreshToken: string;
  user: { id: string; email: string; name: string };
  password: string;
}> {
  const email =
    input.email ?? `user${Date.now()}${++counter}${Math.floor(Math.random() * 1e6)}@example.test`;
  const password = input.password ?? 'correct horse battery staple';
  const name = input.name ?? 'Test User';
  const reg = await call(app, 'POST', '/api/auth/register', { body: { email, password, name } });
  if (reg.status !== 201)
    throw new Error(`register failed: ${reg.status} ${JSON.stringify(reg.body)}`);
  const login = await call(app, 'POST', '/api/auth/login', { body: { email, password } });
  if (login.status !== 200)
    throw new Error(`login failed: ${login.status} ${JSON.stringify(login.body)}`);
  return { ...login.body, password };
}

/**
 * Makes every read of users (`auth.usersByIds`, how sockets learn names) `ms` slower, for
 * tests of what must wait for that read. @returns the function that puts the fast read back.
 */
export function slowUserReads(t: TestApp, ms = 300): () => void {
  const usersByIds = t.services.auth.usersByIds.bind(t.services.auth);
  t.services.auth.usersByIds = async (ids) => {
    await new Promise((ok) => setTimeout(ok, ms));
    return usersByIds(ids);
  };
  return () => void (t.services.auth.usersByIds = usersByIds);
}

/**
 * Serves a test app on a real socket (127.0.0.1, random port) with WebSocket upgrades routed,
 * for tests that need a connection: WebSockets, streaming, two instances.
 */
export async function listen(
  t: TestApp,
): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const { serveApp } = await import('../src/http/server.ts');
  return new Promise((resolve) => {
    const options = { port: 0, hostname: '127.0.0.1', hostUpgrades: t.services.hostUpgrades };
    const server = serveApp(t.app, options, (info) => {
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        port: info.port,
        close: () =>
          new Promise<void>((done) => {
            (server as import('node:http').Server).closeAllConnections?.();
            server.close(() => done());
          }),
      });
    });
  });
}
