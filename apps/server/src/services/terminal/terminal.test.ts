// A member who loses access loses it at once: terminal, project socket and preview socket close
// within a second of the removal or downgrade, not at the next periodic check (30 s).
// Runs a real project on the process runtime (node-pty terminals, a real dev server).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, listen, registerAndLogin, type TestApp } from '../../../test/app.ts';
import {
  addMember,
  createProject,
  openSocket,
  previewCookie,
  previewHost,
  writeDevServer,
  type Session,
} from '../../../test/docker-projects.ts';

const ideOrigin = { origin: 'http://localhost:4000' };

let t: TestApp;
let server: Awaited<ReturnType<typeof listen>>;
let owner: Session;
let projectId: string;

beforeAll(async () => {
  t = await createTestApp({
    VAPORFORM_RUNTIME: 'process',
    VAPORFORM_RECONCILE_SECONDS: '0',
    VAPORFORM_STATS_SECONDS: '0',
  });
  server = await listen(t);
  owner = await registerAndLogin(t.app);
  projectId = await createProject(t, owner, 'Shared');
  writeDevServer(t, projectId, '<h1>shared</h1>');
  const res = await call(t.app, 'POST', `/api/containers/${projectId}/start?wait=true`, {
    token: owner.token,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}, 120_000);

afterAll(async () => {
  // Services first: they end the WebSockets (terminals, proxied HMR) the server would wait for.
  await t?.close();
  await server?.close();
});

const terminalUrl = (token: string) =>
  `ws://127.0.0.1:${server.port}/api/projects/${projectId}/terminal?token=${token}`;
const socketUrl = (token: string) =>
  `ws://127.0.0.1:${server.port}/api/projects/${projectId}/ws?token=${token}`;

/** Resolves with the close, or undefined if the socket is still open after `ms`. */
function closedWithin(
  closed: Promise<{ code: number; reason: string }>,
  ms: number,
): Promise<{ code: number; reason: string } | undefined> {
  return Promise.race([closed, new Promise<undefined>((r) => setTimeout(() => r(undefined), ms))]);
}

/** An editor's working terminal (a command ran in it). */
async function workingTerminal(member: Session) {
  const term = await openSocket(terminalUrl(member.token), ideOrigin);
  term.ws.send('echo "ready=$((6*7))"\r');
  await term.waitFor(/ready=42/);
  return term;
}

async function newMember(role: 'editor' | 'viewer'): Promise<Session> {
  const member = await registerAndLogin(t.app);
  await addMember(t, owner, projectId, member, role);
  return member;
}

describe('terminal and sockets after a role change', () => {
  it('closes a removed member’s terminal, project socket and preview socket within a second', async () => {
    const bob = await newMember('editor');
    const term = await workingTerminal(bob);
    const events = await openSocket(socketUrl(bob.token), ideOrigin);
    await events.waitFor(/"snapshot"/);
    const hmr = await openSocket(`ws://127.0.0.1:${server.port}/_hmr`, {
      host: previewHost(projectId, server.port),
      cookie: await previewCookie(t, server.port, projectId, bob),
    });
    await hmr.waitFor(/hmr:connected/);

    const removed = await call(
      t.app,
      'DELETE',
      `/api/projects/${projectId}/members/${bob.user.id}`,
      {
        token: owner.token,
      },
    );
    expect(removed.status).toBe(204);
    const [terminal, project, preview] = await Promise.all([
      closedWithin(term.closed, 1_000),
      closedWithin(events.closed, 1_000),
      closedWithin(hmr.closed, 1_000),
    ]);
    expect(terminal, 'terminal still open a second after the removal').toMatchObject({
      code: 4403,
    });
    expect(project, 'project socket still open a second after the removal').toMatchObject({
      code: 4404,
    });
    expect(preview, 'preview socket still open a second after the removal').toBeDefined();
    // And nothing opens again.
    await expect(openSocket(terminalUrl(bob.token), ideOrigin)).rejects.toMatchObject({
      status: 404,
    });
  }, 30_000);

  it('closes the terminal of an editor downgraded to viewer, and leaves what viewers may use', async () => {
    const carol = await newMember('editor');
    const term = await workingTerminal(carol);
    const events = await openSocket(socketUrl(carol.token), ideOrigin);
    await events.waitFor(/"snapshot"/);

    const down = await call(t.app, 'PATCH', `/api/projects/${projectId}/members/${carol.user.id}`, {
      token: owner.token,
      body: { role: 'viewer' },
    });
    expect(down.status, JSON.stringify(down.body)).toBe(200);
    expect(await closedWithin(term.closed, 1_000), 'terminal still open').toMatchObject({
      code: 4403,
      reason: 'access removed',
    });
    // Viewers may not use terminals (403), but still follow the project.
    await expect(openSocket(terminalUrl(carol.token), ideOrigin)).rejects.toMatchObject({
      status: 403,
    });
    expect(await closedWithin(events.closed, 300)).toBeUndefined();
    events.ws.close();
  }, 30_000);

  it('keeps an editor’s terminal through a change that leaves them at editor or above', async () => {
    const dave = await newMember('editor');
    const term = await workingTerminal(dave);
    const up = await call(t.app, 'PATCH', `/api/projects/${projectId}/members/${dave.user.id}`, {
      token: owner.token,
      body: { role: 'admin' },
    });
    expect(up.status, JSON.stringify(up.body)).toBe(200);
    expect(await closedWithin(term.closed, 500)).toBeUndefined();
    term.ws.send('echo "still=$((1+1))"\r');
    await term.waitFor(/still=2/);
    term.ws.close();
  }, 30_000);

  it('refuses a terminal from a browser on another origin', async () => {
    await expect(
      openSocket(terminalUrl(owner.token), { origin: 'http://evil.example' }),
    ).rejects.toMatchObject({ status: 403 });
  });
});
