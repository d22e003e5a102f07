import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishProjectEvent } from '../../common/project-events.ts';
import {
  call,
  createTestApp,
  listen,
  registerAndLogin,
  slowUserReads,
  type TestApp,
} from '../../../test/app.ts';
import { startRedis, type TestRedis } from '../../../test/redis.ts';

type Message = { type: string; data: Record<string, any> };

interface Client {
  ws: WebSocket;
  messages: Message[];
  /** Resolves with the first message (already received or coming) that `match` accepts. */
  next(match: (m: Message) => boolean, ms?: number): Promise<Message>;
  closed: Promise<{ code: number; reason: string }>;
}

/** Opens a socket; resolves once open, or rejects with the HTTP status the upgrade got. */
function connect(url: string, headers: Record<string, string> = {}): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const messages: Message[] = [];
    const waiters: { match: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];
    ws.on('message', (raw) => {
      const m = JSON.parse(raw.toString()) as Message;
      messages.push(m);
      for (const w of [...waiters]) {
        if (w.match(m)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    });
    const closed = new Promise<{ code: number; reason: string }>((done) =>
      ws.on('close', (code, reason) => done({ code, reason: reason.toString() })),
    );
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        reject(
          Object.assign(new Error(`upgrade refused: ${res.statusCode}`), {
            status: res.statusCode,
            contentType: res.headers['content-type'],
            body,
          }),
        );
        ws.terminate();
      });
    });
    ws.on('error', (err) => reject(err));
    ws.on('open', () =>
      resolve({
        ws,
        messages,
        closed,
        next(match, ms = 10_000) {
          const found = messages.find(match);
          if (found) return Promise.resolve(found);
          return new Promise((ok, fail) => {
            const timer = setTimeout(() => fail(new Error('no matching message in time')), ms);
            waiters.push({
              match,
              resolve: (m) => {
                clearTimeout(timer);
                ok(m);
              },
            });
          });
        },
      }),
    );
  });
}

async function refusal(url: string, headers: Record<string, string> = {}): Promise<number> {
  try {
    const client = await connect(url, headers);
    client.ws.close();
    return 101;
  } catch (err) {
    return (err as { status?: number }).status ?? -1;
  }
}

/** The refused upgrade's status and JSON body (as an HTTP route answers). */
async function refusalBody(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; contentType?: string; body: unknown }> {
  try {
    const client = await connect(url, headers);
    client.ws.close();
    return { status: 101, body: undefined };
  } catch (err) {
    const e = err as { status?: number; contentType?: string; body?: string };
    return { status: e.status ?? -1, contentType: e.contentType, body: JSON.parse(e.body ?? '') };
  }
}

const fileChanged =
  (p: string, op = 'write') =>
  (m: Message) =>
    m.type === 'file_changed' && m.data.path === p && m.data.operation === op;

describe('project WebSocket', () => {
  let t: TestApp;
  let server: Awaited<ReturnType<typeof listen>>;
  let owner: Awaited<ReturnType<typeof registerAndLogin>>;
  let viewer: Awaited<ReturnType<typeof registerAndLogin>>;
  let stranger: Awaited<ReturnType<typeof registerAndLogin>>;
  let projectId: string;
  let wsBase: string;

  beforeAll(async () => {
    t = await createTestApp();
    server = await listen(t);
    wsBase = server.url.replace('http', 'ws');
    [owner, viewer, stranger] = await Promise.all([
      registerAndLogin(t.app),
      registerAndLogin(t.app),
      registerAndLogin(t.app),
    ]);
    const res = await call(t.app, 'POST', '/api/projects', {
      token: owner.token,
      body: { name: 'Live' },
    });
    projectId = res.body.project.id;
    await call(t.app, 'POST', `/api/projects/${projectId}/members`, {
      token: owner.token,
      body: { email: viewer.user.email, role: 'viewer' },
    });
  });

  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  const socketUrl = (token?: string, id = projectId) =>
    `${wsBase}/api/projects/${id}/ws${token ? `?token=${token}` : ''}`;

  it('refuses strangers with 404 and anonymous callers with 401', async () => {
    expect(await refusal(socketUrl(stranger.token))).toBe(404);
    expect(await refusal(socketUrl())).toBe(401);
    expect(await refusal(socketUrl('not-a-token'))).toBe(401);
    expect(await refusal(socketUrl(owner.token, 'not-a-uuid'))).toBe(404);
    expect(await refusal(socketUrl(owner.token, '00000000-0000-4000-8000-000000000000'))).toBe(404);
  });

  it('answers a refused upgrade with the contract error body, as HTTP routes do', async () => {
    const error = (code: string) => ({
      contentType: expect.stringContaining('application/json'),
      body: { error: { code, message: expect.any(String) } },
    });
    expect(await refusalBody(socketUrl(stranger.token))).toEqual({
      status: 404,
      ...error('not_found'),
    });
    expect(await refusalBody(socketUrl('not-a-token'))).toEqual({
      status: 401,
      ...error('unauthenticated'),
    });
    expect(await refusalBody(socketUrl(owner.token), { origin: 'http://evil.example' })).toEqual({
      status: 403,
      ...error('forbidden'),
    });
    // The collab socket is a Hono route too (createWebSocketRoute): same answers.
    expect(await refusalBody(`${wsBase}/api/collab?token=not-a-token`)).toEqual({
      status: 401,
      ...error('unauthenticated'),
    });
    expect(
      await refusalBody(`${wsBase}/api/collab?token=${owner.token}`, {
        origin: 'http://evil.example',
      }),
    ).toEqual({ status: 403, ...error('forbidden') });
  });

  it('refuses a browser on another origin with 403, as the terminal does', async () => {
    // A page elsewhere that got hold of a token (or rides a proxy) must not open the feed.
    expect(await refusal(socketUrl(owner.token), { origin: 'http://evil.example' })).toBe(403);
    expect(await refusal(socketUrl(owner.token), { origin: 'http://localhost:4001' })).toBe(403);
    expect(await refusal(socketUrl(stranger.token), { origin: 'http://evil.example' })).toBe(403);
    // The IDE's own origin and clients that send none (CLIs, servers) are let in.
    expect(await refusal(socketUrl(owner.token), { origin: 'http://localhost:4000' })).toBe(101);
    expect(await refusal(socketUrl(owner.token))).toBe(101);
  });

  it('closes a removed member’s socket at once, and a downgraded member keeps it', async () => {
    const member = await registerAndLogin(t.app);
    await call(t.app, 'POST', `/api/projects/${projectId}/members`, {
      token: owner.token,
      body: { email: member.user.email, role: 'editor' },
    });
    const client = await connect(socketUrl(member.token));
    await client.next((m) => m.type === 'presence' && m.data.event === 'snapshot');
    // Viewers may watch the project: a downgrade leaves the socket open.
    const down = await call(
      t.app,
      'PATCH',
      `/api/projects/${projectId}/members/${member.user.id}`,
      {
        token: owner.token,
        body: { role: 'viewer' },
      },
    );
    expect(down.status, JSON.stringify(down.body)).toBe(200);
    // …and tells the member's IDE, which turns read-only.
    const told = await client.next((m) => m.type === 'membership', 1_000);
    expect(told.data).toEqual({ role: 'viewer' });
    const started = Date.now();
    const removed = await call(
      t.app,
      'DELETE',
      `/api/projects/${projectId}/members/${member.user.id}`,
      { token: owner.token },
    );
    expect(removed.status).toBe(204);
    const closed = await Promise.race([
      client.closed,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 1_000)),
    ]);
    expect(closed, 'the socket was still open a second after the removal').toEqual({
      code: 4404,
      reason: 'no longer a member',
    });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await refusal(socketUrl(member.token))).toBe(404);
  });

  it('delivers file_changed from every source to every connected member, viewers included', async () => {
    const asViewer = await connect(socketUrl(viewer.token));
    const asOwner = await connect(socketUrl(owner.token));
    try {
      await asViewer.next((m) => m.type === 'presence' && m.data.event === 'snapshot');

      const put = await call(t.app, 'PUT', `/api/projects/${projectId}/files/live.txt`, {
        token: owner.token,
        body: { content: 'hello' },
      });
      expect(put.status).toBe(201);
      for (const client of [asViewer, asOwner]) {
        const event = await client.next(fileChanged('live.txt'));
        expect(event.data).toEqual({
          path: 'live.txt',
          version: 1,
          source: 'user',
          userId: owner.user.id,
          operation: 'write',
          contentHash: put.body.file.contentHash,
          size: 5,
        });
      }

      // A change made inside the workspace (a terminal, a generator) arrives the same way.
      writeFileSync(path.join(t.services.files.workspacePath(projectId), 'made-inside.txt'), 'x');
      const inside = await asViewer.next(fileChanged('made-inside.txt'));
      expect(inside.data).toMatchObject({ source: 'container', version: 1 });
      expect(inside.data).not.toHaveProperty('userId');

      await call(t.app, 'POST', `/api/projects/${projectId}/move`, {
        token: owner.token,
        body: { from: 'live.txt', to: 'moved.txt' },
      });
      expect((await asViewer.next(fileChanged('moved.txt', 'move'))).data.from).toBe('live.txt');
      await call(t.app, 'DELETE', `/api/projects/${projectId}/files/moved.txt`, {
        token: owner.token,
      });
      await asViewer.next(fileChanged('moved.txt', 'delete'));

      // Only the contract's events reach members: a shape outside the union (raw on the bus,
      // as an older instance might publish) is dropped; a typed one passes.
      await t.services.bus.publish(`project:${projectId}`, {
        type: 'container_status',
        data: { status: 'exploded' },
      });
      await publishProjectEvent(t.services.bus, projectId, 'container_status', {
        projectId,
        status: 'running',
        health: 'healthy',
        containerId: null,
        serviceUrl: null,
        previewUrl: null,
        reason: null,
        crash: null,
        at: new Date().toISOString(),
      });
      await asViewer.next((m) => m.type === 'container_status' && m.data.status === 'running');
      expect(asViewer.messages.filter((m) => m.type === 'container_status')).toHaveLength(1);
    } finally {
      asViewer.ws.close();
      asOwner.ws.close();
    }
  });

  it('announces who joins and leaves', async () => {
    const watcher = await connect(socketUrl(owner.token));
    try {
      const other = await connect(socketUrl(viewer.token));
      await watcher.next(
        (m) => m.type === 'presence' && m.data.event === 'join' && m.data.userId === viewer.user.id,
      );
      other.ws.close();
      await watcher.next(
        (m) =>
          m.type === 'presence' && m.data.event === 'leave' && m.data.userId === viewer.user.id,
      );
    } finally {
      watcher.ws.close();
    }
  });

  it('announces a join before its leave when the socket closes while the user is still read', async () => {
    // Someone with no socket before this one: no earlier leave of theirs can still be on its way.
    const brief = await registerAndLogin(t.app, { name: 'Brief Visitor' });
    await call(t.app, 'POST', `/api/projects/${projectId}/members`, {
      token: owner.token,
      body: { email: brief.user.email, role: 'viewer' },
    });
    const watcher = await connect(socketUrl(owner.token));
    await watcher.next((m) => m.type === 'presence' && m.data.event === 'snapshot');
    // With the read of users slowed down, a leave that did not wait for its join (it once read
    // the user again, in fewer steps) would be out first.
    const fastReads = slowUserReads(t);
    try {
      const other = await connect(socketUrl(brief.token));
      other.ws.close();
      const isBrief = (event: string) => (m: Message) =>
        m.type === 'presence' && m.data.event === event && m.data.userId === brief.user.id;
      const join = await watcher.next(isBrief('join'));
      const leave = await watcher.next(isBrief('leave'));
      // In that order, so the watcher's IDE no longer shows them.
      expect(watcher.messages.indexOf(join)).toBeLessThan(watcher.messages.indexOf(leave));
    } finally {
      fastReads();
      watcher.ws.close();
    }
  });

  it('closes the socket at once when its session ends', async () => {
    const session = await registerAndLogin(t.app);
    await call(t.app, 'POST', `/api/projects/${projectId}/members`, {
      token: owner.token,
      body: { email: session.user.email, role: 'editor' },
    });
    const client = await connect(socketUrl(session.token));
    const out = await call(t.app, 'POST', '/api/auth/logout', {
      token: session.token,
      body: { refreshToken: session.refreshToken },
    });
    expect(out.status).toBe(204);
    expect((await client.closed).code).toBe(4401);
    expect(await refusal(socketUrl(session.token))).toBe(401);
  });
});

describe('project WebSocket across two instances (Redis)', () => {
  let redis: TestRedis;
  let a: TestApp;
  let b: TestApp;
  let serverA: Awaited<ReturnType<typeof listen>>;
  let serverB: Awaited<ReturnType<typeof listen>>;

  beforeAll(async () => {
    redis = await startRedis();
    a = await createTestApp({ REDIS_URL: redis.url });
    b = await createTestApp(
      { REDIS_URL: redis.url },
      { databaseUrl: a.databaseUrl, dataDir: a.config.dataDir },
    );
    [serverA, serverB] = await Promise.all([listen(a), listen(b)]);
  });

  afterAll(async () => {
    await serverA?.close();
    await serverB?.close();
    await b?.close();
    await a?.close();
    await redis?.stop();
  });

  it('delivers each instance’s file_changed events to members connected to the other', async () => {
    const owner = await registerAndLogin(a.app);
    const created = await call(a.app, 'POST', '/api/projects', {
      token: owner.token,
      body: { name: 'Two instances' },
    });
    const id = created.body.project.id;
    const onB = await connect(
      `${serverB.url.replace('http', 'ws')}/api/projects/${id}/ws?token=${owner.token}`,
    );
    const onA = await connect(
      `${serverA.url.replace('http', 'ws')}/api/projects/${id}/ws?token=${owner.token}`,
    );
    try {
      await call(a.app, 'PUT', `/api/projects/${id}/files/from-a.txt`, {
        token: owner.token,
        body: { content: 'a' },
      });
      expect((await onB.next(fileChanged('from-a.txt'))).data).toMatchObject({
        version: 1,
        source: 'user',
        userId: owner.user.id,
      });
      await call(b.app, 'PUT', `/api/projects/${id}/files/from-b.txt`, {
        token: owner.token,
        body: { content: 'b' },
      });
      expect((await onA.next(fileChanged('from-b.txt'))).data.version).toBe(1);
      // Each event arrives once per socket, not once per instance.
      await onB.next(fileChanged('from-b.txt'));
      expect(onB.messages.filter(fileChanged('from-a.txt'))).toHaveLength(1);
    } finally {
      onA.ws.close();
      onB.ws.close();
    }
  });

  it('closes a member’s socket on one instance when another removes them', async () => {
    const [owner, member] = await Promise.all([registerAndLogin(a.app), registerAndLogin(a.app)]);
    const created = await call(a.app, 'POST', '/api/projects', {
      token: owner.token,
      body: { name: 'Removal across instances' },
    });
    const id = created.body.project.id;
    await call(a.app, 'POST', `/api/projects/${id}/members`, {
      token: owner.token,
      body: { email: member.user.email, role: 'editor' },
    });
    const onB = await connect(
      `${serverB.url.replace('http', 'ws')}/api/projects/${id}/ws?token=${member.token}`,
    );
    await onB.next((m) => m.type === 'presence' && m.data.event === 'snapshot');
    const removed = await call(a.app, 'DELETE', `/api/projects/${id}/members/${member.user.id}`, {
      token: owner.token,
    });
    expect(removed.status).toBe(204);
    const closed = await Promise.race([
      onB.closed,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 1_000)),
    ]);
    expect(closed, 'the socket on B was still open a second after A removed the member').toEqual({
      code: 4404,
      reason: 'no longer a member',
    });
  });
});
