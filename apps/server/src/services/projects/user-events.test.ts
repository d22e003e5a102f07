import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';

type Session = Awaited<ReturnType<typeof registerAndLogin>>;

let t: TestApp;
let owner: Session;
let member: Session;
let bystander: Session;

beforeAll(async () => {
  t = await createTestApp();
  [owner, member, bystander] = await Promise.all([
    registerAndLogin(t.app),
    registerAndLogin(t.app),
    registerAndLogin(t.app),
  ]);
});

afterAll(async () => {
  await t?.close();
});

/** The user's event stream: each `event:`/`data:` block as `{event, data}`, in order. */
async function listen(token: string) {
  const controller = new AbortController();
  const res = await t.app.request('/api/me/events', {
    headers: { authorization: `Bearer ${token}` },
    signal: controller.signal,
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const events: { event: string; data: unknown }[] = [];
  let ended = false;
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: ?(.*)$/m.exec(block)?.[1];
        const data = /^data: ?(.*)$/m.exec(block)?.[1];
        if (event && data) events.push({ event, data: JSON.parse(data) });
      }
    }
    ended = true;
  })();
  return {
    events,
    ended: () => ended,
    close: () => controller.abort(),
  };
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
  expect(check(), what).toBe(true);
}

describe('GET /api/me/events', () => {
  it('tells a user at once that they were added, their role changed, and they were removed', async () => {
    const created = await call(t.app, 'POST', '/api/projects', {
      token: owner.token,
      body: { name: 'Shared with events' },
    });
    expect(created.status).toBe(201);
    const projectId: string = created.body.project.id;
    const mine = await listen(member.token);
    const theirs = await listen(bystander.token);

    const added = await call(t.app, 'POST', `/api/projects/${projectId}/members`, {
      token: owner.token,
      body: { email: member.user.email, role: 'editor' },
    });
    expect(added.status).toBe(201);
    await until(() => mine.events.length === 1, 'the added member hears of it');
    expect(mine.events[0]).toEqual({ event: 'membership', data: { projectId, role: 'editor' } });
    // The dashboard reads its list right after the event: the new project is in it.
    const list = await call(t.app, 'GET', '/api/projects', { token: member.token });
    expect(list.body.projects.map((p: { id: string }) => p.id)).toContain(projectId);

    const changed = await call(
      t.app,
      'PATCH',
      `/api/projects/${projectId}/members/${member.user.id}`,
      { token: owner.token, body: { role: 'viewer' } },
    );
    expect(changed.status).toBe(200);
    await until(() => mine.events.length === 2, 'the role change arrives');
    expect(mine.events[1]).toEqual({ event: 'membership', data: { projectId, role: 'viewer' } });

    const removed = await call(
      t.app,
      'DELETE',
      `/api/projects/${projectId}/members/${member.user.id}`,
      { token: owner.token },
    );
    expect(removed.status).toBe(204);
    await until(() => mine.events.length === 3, 'the removal arrives');
    expect(mine.events[2]).toEqual({ event: 'membership', data: { projectId, role: null } });

    // Someone else's memberships are not told to a bystander.
    expect(theirs.events).toEqual([]);
    mine.close();
    theirs.close();
  });

  it('refuses a caller without a session (401, the contract’s error)', async () => {
    const res = await call(t.app, 'GET', '/api/me/events');
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('unauthenticated');
  });

  it('ends the stream when the session is signed out', async () => {
    const session = await registerAndLogin(t.app);
    const stream = await listen(session.token);
    const out = await call(t.app, 'POST', '/api/auth/logout', {
      token: session.token,
      body: { refreshToken: session.refreshToken },
    });
    expect(out.status).toBeLessThan(300);
    await until(() => stream.ended(), 'the stream ends with the session');
  });
});
