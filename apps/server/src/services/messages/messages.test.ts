import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, listen, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { startRedis, type TestRedis } from '../../../test/redis.ts';

type Event = { type: string; data: Record<string, any> };
type User = Awaited<ReturnType<typeof registerAndLogin>>;

interface Socket {
  events: Event[];
  next(match: (e: Event) => boolean, ms?: number): Promise<Event>;
  closed: Promise<number>;
  close(): void;
}

/** A project socket that records every event; `next` waits (bounded) for a matching one. */
function openSocket(baseUrl: string, projectId: string, token: string): Promise<Socket> {
  const url = `${baseUrl.replace('http', 'ws')}/api/projects/${projectId}/ws?token=${token}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const events: Event[] = [];
    const waiters = new Set<{ match: (e: Event) => boolean; done: (e: Event) => void }>();
    ws.on('message', (raw) => {
      const e = JSON.parse(raw.toString()) as Event;
      events.push(e);
      for (const w of waiters) if (w.match(e)) w.done(e);
    });
    const closed = new Promise<number>((done) => ws.on('close', (code) => done(code)));
    ws.on('unexpected-response', (_req, res) => reject(new Error(`refused: ${res.statusCode}`)));
    ws.on('error', reject);
    ws.on('open', () =>
      resolve({
        events,
        closed,
        close: () => ws.close(),
        next(match, ms = 10_000) {
          const seen = events.find(match);
          if (seen) return Promise.resolve(seen);
          return new Promise((ok, fail) => {
            const waiter = {
              match,
              done: (e: Event) => {
                clearTimeout(timer);
                waiters.delete(waiter);
                ok(e);
              },
            };
            const timer = setTimeout(() => {
              waiters.delete(waiter);
              fail(new Error('no matching event in time'));
            }, ms);
            waiters.add(waiter);
          });
        },
      }),
    );
  });
}

const isSnapshot = (e: Event) => e.type === 'presence' && e.data.event === 'snapshot';
const chatSaying = (text: string) => (e: Event) =>
  e.type === 'chat' && e.data.message?.text === text;

describe('session chat', () => {
  let t: TestApp;
  let server: Awaited<ReturnType<typeof listen>>;
  let owner: User;
  let viewer: User;
  let stranger: User;
  let projectId: string;

  const post = (user: User, body: unknown, id = projectId) =>
    call(t.app, 'POST', `/api/projects/${id}/messages`, { token: user.token, body });
  const list = (user: User, query = '', id = projectId) =>
    call(t.app, 'GET', `/api/projects/${id}/messages${query}`, { token: user.token });

  beforeAll(async () => {
    t = await createTestApp();
    server = await listen(t);
    [owner, viewer, stranger] = await Promise.all([
      registerAndLogin(t.app, { name: 'Olivia Owner' }),
      registerAndLogin(t.app, { name: 'Victor Viewer' }),
      registerAndLogin(t.app, { name: 'Sam Stranger' }),
    ]);
    const res = await call(t.app, 'POST', '/api/projects', {
      token: owner.token,
      body: { name: 'Chatty' },
    });
    projectId = res.body.project.id;
    const added = await call(t.app, 'POST', `/api/projects/${projectId}/members`, {
      token: owner.token,
      body: { email: viewer.user.email, role: 'viewer' },
    });
    expect(added.status).toBe(201);
  });

  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  it('stores messages from members, viewers too, and lists them oldest first with paging', async () => {
    const { body: created } = await call(t.app, 'POST', '/api/projects', {
      token: owner.token,
      body: { name: 'Paging' },
    });
    const id = created.project.id as string;
    await call(t.app, 'POST', `/api/projects/${id}/members`, {
      token: owner.token,
      body: { email: viewer.user.email, role: 'viewer' },
    });
    expect((await list(owner, '', id)).body).toEqual({ messages: [] });

    const sent = [];
    for (let i = 0; i < 5; i++) {
      const author = i === 2 ? viewer : owner;
      const res = await post(author, { text: `  message ${i}\nsecond line  ` }, id);
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      sent.push(res.body.message);
    }
    // Viewers may chat: it is talk, not edits. Spaces around the text are dropped.
    expect(sent[2]).toMatchObject({
      userId: viewer.user.id,
      name: 'Victor Viewer',
      text: 'message 2\nsecond line',
    });
    expect(sent[0]).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      userId: owner.user.id,
      name: 'Olivia Owner',
      text: 'message 0\nsecond line',
      createdAt: expect.any(String),
    });
    expect(new Date(sent[0].createdAt).toISOString()).toBe(sent[0].createdAt);

    const ids = (r: { body: { messages: { id: string }[] } }) => r.body.messages.map((m) => m.id);
    const all = await list(viewer, '', id);
    expect(all.status).toBe(200);
    expect(all.body.messages).toEqual(sent);
    // The newest page by default; older pages with `before`; what was missed with `after`.
    expect(ids(await list(owner, '?limit=2', id))).toEqual([sent[3].id, sent[4].id]);
    expect(ids(await list(owner, `?before=${sent[3].id}&limit=2`, id))).toEqual([
      sent[1].id,
      sent[2].id,
    ]);
    expect(ids(await list(owner, `?before=${sent[1].id}&limit=2`, id))).toEqual([sent[0].id]);
    expect(ids(await list(owner, `?before=${sent[0].id}`, id))).toEqual([]);
    expect(ids(await list(owner, `?after=${sent[1].id}&limit=2`, id))).toEqual([
      sent[2].id,
      sent[3].id,
    ]);
    expect(ids(await list(owner, `?after=${sent[4].id}`, id))).toEqual([]);
    // Timestamps work as cursors too.
    expect(ids(await list(owner, '?before=2100-01-01T00:00:00Z', id))).toEqual(ids(all));
    expect(ids(await list(owner, '?after=2000-01-01T00:00:00.000Z&limit=1', id))).toEqual([
      sent[0].id,
    ]);
    expect(ids(await list(owner, '?after=2100-01-01', id))).toEqual([]);
    // Another project's messages never show here.
    expect(ids(await list(owner))).not.toContain(sent[0].id);
  });

  it('is 404 for non-members and unknown projects, 401 without a token', async () => {
    for (const res of [
      await post(stranger, { text: 'let me in' }),
      await list(stranger),
      await post(owner, { text: 'hi' }, '00000000-0000-4000-8000-000000000000'),
      await list(owner, '', 'not-a-uuid'),
    ]) {
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }
    const anonymous = await call(t.app, 'GET', `/api/projects/${projectId}/messages`);
    expect(anonymous.status).toBe(401);
    // Nothing the stranger sent was stored.
    expect((await list(owner)).body.messages.map((m: { text: string }) => m.text)).not.toContain(
      'let me in',
    );
  });

  it('refuses bad input with 400 invalid_request naming the field', async () => {
    const longest = '😀'.repeat(4000); // 4000 characters, 8000 UTF-16 units: allowed
    const ok = await post(owner, { text: longest });
    expect(ok.status).toBe(201);
    expect(ok.body.message.text).toBe(longest);
    const sent = ok.body.message as { id: string };

    const bad: [unknown, string][] = [
      [{ text: '' }, 'text'],
      [{ text: ' \n\t ' }, 'text'],
      [{ text: 'x'.repeat(4001) }, 'text'],
      [{ text: `${'😀'.repeat(4000)}!` }, 'text'],
      [{ text: 'nul\u0000inside' }, 'text'],
      [{ text: 'lone \ud800 surrogate' }, 'text'],
      [{ text: 42 }, 'text'],
      [{}, 'text'],
    ];
    for (const [body, field] of bad) {
      const res = await post(owner, body);
      expect(res.status, JSON.stringify(body).slice(0, 60)).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
      expect(res.body.error.details).toEqual(
        expect.arrayContaining([expect.objectContaining({ field })]),
      );
    }
    const notJson = await post(owner, '{"text":');
    expect(notJson.status).toBe(400);
    expect(notJson.body.error.code).toBe('invalid_request');

    const badQueries: [string, string][] = [
      ['?limit=0', 'limit'],
      ['?limit=201', 'limit'],
      ['?limit=ten', 'limit'],
      ['?before=yesterday', 'before'],
      ['?after=2026-13-45T99:00:00Z', 'after'],
      ['?before=00000000-0000-4000-8000-000000000000', 'before'],
      ['?before=%00', 'before'],
    ];
    for (const [query, field] of badQueries) {
      const res = await list(owner, query);
      expect(res.status, query).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
      expect(res.body.error.details).toEqual(
        expect.arrayContaining([expect.objectContaining({ field })]),
      );
    }
    // A message id of another project is not a cursor here.
    const { body: other } = await call(t.app, 'POST', '/api/projects', {
      token: owner.token,
      body: { name: 'Elsewhere' },
    });
    const foreign = await post(owner, { text: 'elsewhere' }, other.project.id);
    const foreignCursor = await list(owner, `?before=${sent.id}&after=${foreign.body.message.id}`);
    expect(foreignCursor.status).toBe(400);
    expect(foreignCursor.body.error.details).toEqual([
      { field: 'after', message: 'no such message in this project' },
    ]);
  });

  it('pushes each message to every member’s socket as a chat event', async () => {
    const asViewer = await openSocket(server.url, projectId, viewer.token);
    const asOwner = await openSocket(server.url, projectId, owner.token);
    try {
      await asViewer.next(isSnapshot);
      await asOwner.next(isSnapshot);
      const res = await post(owner, { text: 'Hello from Olivia' });
      expect(res.status).toBe(201);
      for (const socket of [asViewer, asOwner]) {
        const event = await socket.next(chatSaying('Hello from Olivia'));
        expect(event).toEqual({ type: 'chat', data: { message: res.body.message } });
      }
      const reply = await post(viewer, { text: 'Hi Olivia' });
      expect((await asOwner.next(chatSaying('Hi Olivia'))).data.message).toEqual(
        reply.body.message,
      );
      // Once per socket.
      expect(asViewer.events.filter(chatSaying('Hello from Olivia'))).toHaveLength(1);
    } finally {
      asViewer.close();
      asOwner.close();
    }
  });

  it('stops pushing to a member who was removed, and refuses their reads and posts', async () => {
    const member = await registerAndLogin(t.app, { name: 'Eve Editor' });
    await call(t.app, 'POST', `/api/projects/${projectId}/members`, {
      token: owner.token,
      body: { email: member.user.email, role: 'editor' },
    });
    const asMember = await openSocket(server.url, projectId, member.token);
    const asOwner = await openSocket(server.url, projectId, owner.token);
    try {
      await asMember.next(isSnapshot);
      await asOwner.next(isSnapshot);
      expect((await post(member, { text: 'Eve was here' })).status).toBe(201);
      await asMember.next(chatSaying('Eve was here'));

      const removed = await call(
        t.app,
        'DELETE',
        `/api/projects/${projectId}/members/${member.user.id}`,
        { token: owner.token },
      );
      expect(removed.status).toBe(204);
      expect(await asMember.closed).toBe(4404);
      expect((await post(owner, { text: 'after Eve left' })).status).toBe(201);
      await asOwner.next(chatSaying('after Eve left'));
      expect(asMember.events.some(chatSaying('after Eve left'))).toBe(false);
      expect((await list(member)).status).toBe(404);
      expect((await post(member, { text: 'still here?' })).status).toBe(404);
    } finally {
      asMember.close();
      asOwner.close();
    }
  });

  it('limits how fast one person may post (429 with Retry-After), others unaffected', async () => {
    const chatty = await registerAndLogin(t.app, { name: 'Chatty' });
    await call(t.app, 'POST', `/api/projects/${projectId}/members`, {
      token: owner.token,
      body: { email: chatty.user.email, role: 'viewer' },
    });
    // All at once, so the test does not depend on how fast a loaded machine answers.
    const started = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => post(chatty, { text: `flood ${i}` })),
    );
    const elapsed = Date.now() - started;
    const accepted = answers.filter((r) => r.status === 201).length;
    const refused = answers.filter((r) => r.status !== 201);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(r.status).toBe(429);
      expect(r.body.error.code).toBe('rate_limited');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    // 20 per 15 s (unless the burst itself took longer than a window).
    if (elapsed < 15_000) expect(accepted).toBe(20);
    const texts = (await list(owner, '?limit=200')).body.messages.map(
      (m: { text: string }) => m.text,
    );
    expect(texts.filter((s: string) => s.startsWith('flood '))).toHaveLength(accepted);
    // Someone else in the same project can still talk.
    expect((await post(viewer, { text: 'calm down' })).status).toBe(201);
  });
});

describe('session chat across two instances (Redis)', () => {
  let redis: TestRedis;
  let a: TestApp;
  let b: TestApp;
  let serverB: Awaited<ReturnType<typeof listen>>;

  beforeAll(async () => {
    redis = await startRedis();
    a = await createTestApp({ REDIS_URL: redis.url });
    b = await createTestApp(
      { REDIS_URL: redis.url },
      { databaseUrl: a.databaseUrl, dataDir: a.config.dataDir },
    );
    serverB = await listen(b);
  });

  afterAll(async () => {
    await serverB?.close();
    await b?.close();
    await a?.close();
    await redis?.stop();
  });

  it('a message posted on one instance reaches sockets on the other and is listed by both', async () => {
    const owner = await registerAndLogin(a.app, { name: 'Ann' });
    const created = await call(a.app, 'POST', '/api/projects', {
      token: owner.token,
      body: { name: 'Across' },
    });
    const id = created.body.project.id;
    const onB = await openSocket(serverB.url, id, owner.token);
    try {
      await onB.next(isSnapshot);
      const res = await call(a.app, 'POST', `/api/projects/${id}/messages`, {
        token: owner.token,
        body: { text: 'from A' },
      });
      expect(res.status).toBe(201);
      expect((await onB.next(chatSaying('from A'))).data.message).toEqual(res.body.message);
      const fromB = await call(b.app, 'GET', `/api/projects/${id}/messages`, {
        token: owner.token,
      });
      expect(fromB.body.messages).toEqual([res.body.message]);
    } finally {
      onB.close();
    }
  });
});
