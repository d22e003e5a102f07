// The assistant against a real Docker engine: commands run in the project's container, logs
// come from its dev server, `create` and `debug` end with the app answering.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { useTestDocker } from '../../../test/docker.ts';
import { startFakeAnthropic, type FakeServer } from '../../../test/fakes/anthropic.ts';

let fake: FakeServer;
let t: TestApp;
let me: Awaited<ReturnType<typeof registerAndLogin>>;
const secret = 'sk_live_container_secret_9876';

beforeAll(async () => {
  const docker = await useTestDocker();
  fake = await startFakeAnthropic();
  t = await createTestApp({
    VAPORFORM_RUNTIME: 'docker',
    DOCKER_HOST: docker.dockerHost,
    VAPORFORM_RUNTIME_IMAGE: docker.image,
    VAPORFORM_RECONCILE_SECONDS: '0',
    VAPORFORM_STATS_SECONDS: '0',
    ANTHROPIC_API_KEY: 'sk-ant-test',
    ANTHROPIC_BASE_URL: fake.url,
  });
  me = await registerAndLogin(t.app);
}, 600_000);

afterAll(async () => {
  if (t) {
    for (const id of await t.services.projects.listIds()) {
      await t.services.containers.remove(id).catch(() => undefined);
    }
    await t.close();
  }
  await fake?.close();
});

async function newProject(body: Record<string, unknown>): Promise<string> {
  const res = await call(t.app, 'POST', '/api/projects', { token: me.token, body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.project.id as string;
}

function results(n: number): { content: string; is_error?: boolean }[] {
  const last = (fake.requests[n]!.body.messages as { content: unknown }[]).at(-1)!;
  return last.content as { content: string; is_error?: boolean }[];
}

async function homePage(projectId: string): Promise<string> {
  const target = await t.services.containers.target(projectId);
  if (!target) throw new Error('the project is not running');
  return (await fetch(`http://${target.host}:${target.port}/`)).text();
}

async function finished(requestId: string) {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const r = await call(t.app, 'GET', `/api/claude/requests/${requestId}`, { token: me.token });
    if (r.body.status === 'succeeded' || r.body.status === 'failed') return r.body;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  throw new Error('the request did not finish in 120 s');
}

describe('tools in a real container', () => {
  it('edits, runs commands in the container (never the host) and reads the dev server logs', async () => {
    const projectId = await newProject({ name: 'In a container', templateId: 'node-http' });
    const env = await call(t.app, 'PUT', `/api/projects/${projectId}/env`, {
      token: me.token,
      body: { vars: { PAYMENT_KEY: secret } },
    });
    expect(env.status).toBe(200);
    const start = await call(t.app, 'POST', `/api/containers/${projectId}/start?wait=true`, {
      token: me.token,
    });
    expect(start.status, JSON.stringify(start.body)).toBe(200);

    fake.script([
      {
        toolCalls: [
          {
            name: 'edit_file',
            input: {
              path: 'index.html',
              old_str: '<h1>Hello from Vaporform</h1>',
              new_str: '<h1>Hello from the AI</h1>',
            },
          },
        ],
      },
      {
        toolCalls: [
          {
            name: 'run_command',
            input: {
              command:
                'pwd; grep -c \'Hello from the AI\' index.html; echo "key=$PAYMENT_KEY"; ' +
                'test -f /.dockerenv && echo in-docker; ' +
                // No base64 in the image: the same through node (`env | base64`).
                `node -p "Buffer.from(JSON.stringify(process.env)).toString('base64')"`,
            },
          },
          { name: 'run_command', input: { command: 'echo failing >&2; exit 3' } },
        ],
      },
      { toolCalls: [{ name: 'read_logs', input: { lines: 20 } }] },
      { text: 'The heading now greets from the AI.' },
    ]);
    const res = await call(t.app, 'POST', '/api/claude/modify', {
      token: me.token,
      body: { projectId, instruction: 'Change the heading' },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.success).toBe(true);
    expect(res.body.commands.map((c: { command: string }) => c.command)).toHaveLength(2);

    const [ok, failing] = results(2);
    expect(ok!.is_error, JSON.stringify(ok)).toBe(false);
    expect(ok!.content).toContain('(exit code 0)');
    expect(ok!.content).toMatch(/\/app\n1\nkey=\[redacted PAYMENT_KEY\]\nin-docker/);
    // The whole environment, base64-encoded and wrapped: the key is caught in that form too.
    const afterEcho = ok!.content.slice(ok!.content.indexOf('in-docker'));
    expect(afterEcho).toContain('[redacted PAYMENT_KEY]');
    const encoded = afterEcho
      .replace(/\[redacted PAYMENT_KEY\]/g, '')
      .replace(/[^A-Za-z0-9+/=]/g, '');
    expect(Buffer.from(encoded, 'base64').toString('latin1')).not.toContain('container_secret');
    expect(failing!.is_error).toBe(true);
    expect(failing!.content).toContain('(exit code 3)');
    expect(failing!.content).toContain('failing');
    expect(results(3)[0]!.content).toContain('listening on http://localhost:');
    for (const r of fake.requests) expect(JSON.stringify(r.body)).not.toContain(secret);
    expect(await homePage(projectId)).toContain('Hello from the AI');
  }, 180_000);
});

describe('create and debug requests', () => {
  it('create: picks the closest template, builds on it and starts the app (creating → running)', async () => {
    const projectId = await newProject({ name: 'Described app', description: 'a greeting page' });
    fake.script((request) => {
      if ((request.body.tools as unknown[]).length === 0) return { text: 'node-http' };
      const turns = (request.body.messages as unknown[]).length;
      if (turns === 1) {
        return {
          toolCalls: [
            {
              name: 'edit_file',
              input: {
                path: 'index.html',
                old_str: '<h1>Hello from Vaporform</h1>',
                new_str: '<h1>Welcome, described app</h1>',
              },
            },
          ],
        };
      }
      return { text: 'Your greeting page is ready.' };
    });
    const statuses: string[] = [];
    let streamed = '';
    const unsubscribe = await t.services.bus.subscribe(`project:${projectId}`, (m) => {
      const e = m as { type: string; data: { status?: string; stage?: string; message?: string } };
      if (e.type === 'container_status' && e.data.status) statuses.push(e.data.status);
      // What the assistant writes, as it writes it (the set-up page shows it).
      if (e.type === 'claude-progress' && e.data.stage === 'text') streamed += e.data.message;
    });
    const queued = await call(t.app, 'POST', '/api/claude/process', {
      token: me.token,
      body: { projectId, message: 'A page that welcomes visitors', type: 'create' },
    });
    expect(queued.status).toBe(202);
    const done = await finished(queued.body.requestId);
    await unsubscribe();
    expect(done.status, JSON.stringify(done)).toBe('succeeded');
    const paths = (done.result.changes as { path: string }[]).map((c) => c.path).sort();
    expect(paths).toEqual(['index.html', 'package.json', 'server.js', 'style.css']);
    const project = await call(t.app, 'GET', `/api/projects/${projectId}`, { token: me.token });
    expect(project.body.project.status).toBe('running');
    expect(await homePage(projectId)).toContain('Welcome, described app');
    const activity = await call(t.app, 'GET', `/api/projects/${projectId}/activity`, {
      token: me.token,
    });
    const changes = (activity.body.activity as { type: string; description: string }[])
      .filter((a) => a.type === 'status_changed')
      .map((a) => a.description);
    expect(changes.some((d) => d.includes('→ creating'))).toBe(true);
    expect(changes.some((d) => d.includes('creating →'))).toBe(true);
    expect(streamed).toContain('Your greeting page is ready.');
    // The new project's chat holds that conversation, with the turn's changeset to review.
    const chat = await call(t.app, 'GET', `/api/projects/${projectId}/chat`, { token: me.token });
    const messages = chat.body.messages as {
      role: string;
      content: string;
      changesetId: string | null;
    }[];
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(messages[0]!.content).toBe('A page that welcomes visitors');
    expect(messages[1]).toMatchObject({
      content: 'Your greeting page is ready.',
      changesetId: done.result.changesetId,
    });
    expect(done.result.changesetId).toBeTruthy();
  }, 180_000);

  it('the wizard’s "describe it": a project created from a description is built and started', async () => {
    fake.script((request) =>
      (request.body.tools as unknown[]).length === 0
        ? { text: 'node-http' }
        : { text: 'Built from the node-http template.' },
    );
    const res = await call(t.app, 'POST', '/api/projects', {
      token: me.token,
      body: { name: 'Described in the wizard', config: { functionality: 'a page saying hello' } },
    });
    expect(res.status).toBe(201);
    expect(res.body.project.status).toBe('creating');
    const projectId = res.body.project.id as string;
    const deadline = Date.now() + 120_000;
    let project = res.body.project as { status: string; health: string };
    while (project.health !== 'healthy' && project.status !== 'error' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      project = (await call(t.app, 'GET', `/api/projects/${projectId}`, { token: me.token })).body
        .project;
    }
    expect(project).toMatchObject({ status: 'running', health: 'healthy' });
    expect(await homePage(projectId)).toContain('Hello from Vaporform');
  }, 180_000);

  it('debug: reads the logs, fixes the crash and checks the dev server answers', async () => {
    const projectId = await newProject({ name: 'Broken app', templateId: 'node-http' });
    const template = await t.services.templates.get('node-http');
    const server = template.files.find((f) => f.path === 'server.js')!.content;
    const broken = server.replace("import { createServer } from 'node:http';", 'import {');
    const put = await call(t.app, 'PUT', `/api/projects/${projectId}/files/server.js`, {
      token: me.token,
      body: { content: broken },
    });
    expect(put.status).toBeLessThan(300);
    const start = await call(t.app, 'POST', `/api/containers/${projectId}/start`, {
      token: me.token,
    });
    expect(start.status, JSON.stringify(start.body)).toBe(200);
    // The dev server (node --watch) reports the syntax error and waits for a fix.
    const deadline = Date.now() + 60_000;
    let logs = '';
    while (!logs.includes('SyntaxError') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      logs = '';
      for await (const line of t.services.containers.logs(projectId, { follow: false, tail: 50 })) {
        logs += `${line}\n`;
      }
    }
    expect(logs).toContain('SyntaxError');
    fake.script([
      { toolCalls: [{ name: 'read_logs', input: { lines: 50 } }] },
      { toolCalls: [{ name: 'write_file', input: { path: 'server.js', content: server } }] },
      { toolCalls: [{ name: 'run_command', input: { command: 'node --check server.js' } }] },
      { text: 'Fixed the broken import in server.js.' },
    ]);
    const queued = await call(t.app, 'POST', '/api/claude/process', {
      token: me.token,
      body: { projectId, message: 'The app does not start', type: 'debug' },
    });
    const done = await finished(queued.body.requestId);
    expect(done.status, JSON.stringify(done)).toBe('succeeded');
    expect(results(1)[0]!.content).toMatch(/SyntaxError/);
    expect(results(3)[0], JSON.stringify(results(3)[0])).toMatchObject({ is_error: false });
    expect(await homePage(projectId)).toContain('Hello from Vaporform');
  }, 180_000);
});
