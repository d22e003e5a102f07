import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../db.ts';
import { call, signUp } from './client.ts';
import { startServer, type ServerProc } from './processes.ts';
import { ProjectSocket } from './socket.ts';

// `npm run start:bun`: the same src/main.ts on Bun (the `bun` npm package), on a real
// PostgreSQL, driven over HTTP and WebSocket like any client.

let database: TestDatabase;
let server: ServerProc;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startServer({ DATABASE_URL: database.url }, { runtime: 'bun' });
}, 180_000);

afterAll(async () => {
  await server?.stop();
  await database?.drop();
  if (server) rmSync(server.dataDir, { recursive: true, force: true });
});

describe('the server on Bun', () => {
  it('runs a session: sign-in, a project, files, socket events, refresh rotation; reuse ends the session and its socket', async () => {
    const base = server.url;
    expect(server.child.spawnfile).toMatch(/\/bun$/);
    const me = await signUp(base, 'bun@example.test');
    const created = await call<{ project: { id: string } }>(base, 'POST', '/api/projects', {
      token: me.token,
      body: { name: 'on bun', description: 'Bun runtime' },
    });
    expect(created.status).toBe(201);
    const id = created.body.project.id;
    const socket = new ProjectSocket(base, id, me.token);
    await socket.opened();
    const put = await call(base, 'PUT', `/api/projects/${id}/files/src/a.ts`, {
      token: me.token,
      body: { content: 'export const a = 1;\n' },
    });
    expect(put.status).toBe(201);
    await socket.waitFor((e) => e.type === 'file_changed');
    const read = await call<{ content: string }>(
      base,
      'GET',
      `/api/projects/${id}/files/src/a.ts`,
      {
        token: me.token,
      },
    );
    expect(read.body.content).toBe('export const a = 1;\n');
    const bad = await call<{ error: { code: string } }>(
      base,
      'PUT',
      `/api/projects/${id}/files/../x`,
      {
        token: me.token,
        body: { content: 'x' },
      },
    );
    expect(bad.status).toBeGreaterThanOrEqual(400);
    expect(bad.status).toBeLessThan(500);

    const rotated = await call<{ refreshToken: string }>(base, 'POST', '/api/auth/refresh', {
      body: { refreshToken: me.refreshToken },
    });
    expect(rotated.status).toBe(200);
    const reused = await call<{ error: { code: string } }>(base, 'POST', '/api/auth/refresh', {
      body: { refreshToken: me.refreshToken },
    });
    expect(reused.body.error.code).toBe('token_reused');
    // Reuse ended the session: the socket opened with it closes.
    expect(await socket.closed()).toBe(4401);

    const metrics = await call<string>(base, 'GET', '/metrics');
    expect(metrics.body).toContain('vaporform_http_request_duration_seconds_count');
  }, 120_000);
});
