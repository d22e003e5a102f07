import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import { expect } from 'vitest';
import WebSocket from 'ws';
import { workspaceDir } from '../src/services/files/index.ts';
import { call, registerAndLogin, type TestApp } from './app.ts';

/** Helpers for tests that run projects (containers, preview, terminal) on a real runtime. */

export type Session = Awaited<ReturnType<typeof registerAndLogin>>;

/**
 * A small dev server for test projects: serves index.html, echoes the request headers at
 * /headers, reports who it runs as at /whoami, logs each request, and answers WebSocket
 * upgrades (like a hot-reload endpoint) with one `hmr:connected` text frame.
 */
export const devServerSource = `import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
const port = Number(process.env.PORT ?? 3000);
const server = createServer((req, res) => {
  console.log('request ' + req.method + ' ' + req.url);
  if (req.url === '/headers') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(req.headers));
    return;
  }
  if (req.url === '/whoami') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ uid: process.getuid(), cwd: process.cwd(), env: process.env.VF_TEST_VALUE ?? null }));
    return;
  }
  let body = 'no index.html';
  try { body = readFileSync(new URL('./index.html', import.meta.url), 'utf8'); } catch {}
  res.writeHead(200, { 'content-type': 'text/html', 'set-cookie': 'app_session=kept; Path=/' });
  res.end(body);
});
server.on('upgrade', (req, socket) => {
  const accept = createHash('sha1')
    .update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
    .digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n' +
    'Sec-WebSocket-Accept: ' + accept + '\\r\\n\\r\\n');
  const msg = Buffer.from('hmr:connected');
  socket.write(Buffer.concat([Buffer.from([0x81, msg.length]), msg]));
  socket.on('error', () => {});
});
server.listen(port, '0.0.0.0', () => console.log('listening on ' + port));
`;

/** Writes the test dev server and an index.html into the project's workspace. */
export function writeDevServer(t: TestApp, projectId: string, html = '<h1>v1</h1>'): string {
  const dir = workspaceDir(t.config.dataDir, projectId);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'server.js'), devServerSource);
  writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name: 'test-app', private: true, type: 'module' }),
  );
  writeFileSync(path.join(dir, 'index.html'), html);
  return dir;
}

/** Creates a node-http project owned by `owner` and returns its id. */
export async function createProject(t: TestApp, owner: Session, name: string): Promise<string> {
  const res = await call(t.app, 'POST', '/api/projects', {
    token: owner.token,
    body: { name, description: 'runs in a container', templateId: 'node-http' },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.project.id as string;
}

/** Adds `member` to the project with `role`. */
export async function addMember(
  t: TestApp,
  owner: Session,
  projectId: string,
  member: Session,
  role: 'admin' | 'editor' | 'viewer',
): Promise<void> {
  const res = await call(t.app, 'POST', `/api/projects/${projectId}/members`, {
    token: owner.token,
    body: { email: member.user.email, role },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
}

/** A plain HTTP request to 127.0.0.1:`port` with exactly these headers (Host included). */
export function rawRequest(
  port: number,
  method: string,
  pathname: string,
  headers: Record<string, string>,
): Promise<{
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path: pathname, headers, agent: false });
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** `Host` of a project's preview on the test server's port. */
export function previewHost(projectId: string, port: number): string {
  return `${projectId}.preview.localhost:${port}`;
}

/**
 * Signs `session` in to the project's preview origin the way a browser would: preview token →
 * its URL on the preview host → the cookie it sets. Returns the `Cookie` header value.
 */
export async function previewCookie(
  t: TestApp,
  port: number,
  projectId: string,
  session: Session,
): Promise<string> {
  const issued = await call(t.app, 'POST', `/api/projects/${projectId}/preview-token`, {
    token: session.token,
  });
  expect(issued.status, JSON.stringify(issued.body)).toBe(201);
  const url = new URL(issued.body.url as string);
  expect(url.hostname).toBe(`${projectId}.preview.localhost`);
  const res = await rawRequest(port, 'GET', url.pathname + url.search, {
    host: previewHost(projectId, port),
  });
  expect(res.status, res.body).toBe(302);
  expect(res.headers.location).toBe('/');
  const setCookie = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
  const cookie = setCookie.find((c) => c.startsWith('vf_preview='));
  expect(cookie).toMatch(/HttpOnly/);
  expect(cookie).not.toMatch(/Domain=/i);
  // The IDE on localhost frames <id>.preview.localhost, another site: the cookie must travel in
  // a cross-site frame, partitioned by the IDE's site.
  expect(cookie).toMatch(/SameSite=None/);
  expect(cookie).toMatch(/; Secure/);
  expect(cookie).toMatch(/Partitioned/);
  return cookie!.split(';')[0]!;
}

/** Opens a WebSocket and collects what arrives (text and binary, as UTF-8). */
export function openSocket(
  url: string,
  headers: Record<string, string>,
): Promise<{
  ws: WebSocket;
  received: () => string;
  closed: Promise<{ code: number; reason: string }>;
  waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<string>;
}> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    let text = '';
    ws.on('message', (data) => (text += data.toString()));
    const closed = new Promise<{ code: number; reason: string }>((done) =>
      ws.on('close', (code, reason) => done({ code, reason: reason.toString() })),
    );
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => reject(Object.assign(new Error(body), { status: res.statusCode })));
    });
    ws.once('error', reject);
    ws.once('open', () =>
      resolve({
        ws,
        received: () => text,
        closed,
        waitFor: async (pattern, timeoutMs = 10_000) => {
          const deadline = Date.now() + timeoutMs;
          while (Date.now() < deadline) {
            const match = pattern.exec(text);
            if (match) return match[0];
            await new Promise((r) => setTimeout(r, 25));
          }
          throw new Error(
            `timed out waiting for ${pattern}; got ${JSON.stringify(text.slice(-500))}`,
          );
        },
      }),
    );
  });
}

/** Polls `probe` until it returns a truthy value (bounded). */
export async function eventually<T>(
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
