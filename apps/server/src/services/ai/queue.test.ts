import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../db/index.ts';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { startFakeAnthropic, type FakeServer } from '../../../test/fakes/anthropic.ts';

const serverDir = path.resolve(import.meta.dirname, '../../..');

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('POST /api/claude/process (in process)', () => {
  let fake: FakeServer;
  let t: TestApp;

  beforeAll(async () => {
    fake = await startFakeAnthropic();
    t = await createTestApp({ ANTHROPIC_API_KEY: 'sk-ant-test', ANTHROPIC_BASE_URL: fake.url });
  });
  afterAll(async () => {
    await t?.close();
    await fake?.close();
  });

  it('queues, runs, reports on the project channel and at GET /api/claude/requests/:id', async () => {
    const me = await registerAndLogin(t.app);
    const project = await call(t.app, 'POST', '/api/projects', {
      token: me.token,
      body: { name: 'Queued work' },
    });
    const projectId = project.body.project.id as string;
    const events: { type: string; data: any }[] = [];
    const unsubscribe = await t.services.bus.subscribe(`project:${projectId}`, (m) =>
      events.push(m as { type: string; data: any }),
    );
    fake.script([
      { toolCalls: [{ name: 'write_file', input: { path: 'hello.txt', content: 'hi\n' } }] },
      { text: 'Wrote hello.txt.' },
    ]);
    const res = await call(t.app, 'POST', '/api/claude/process', {
      token: me.token,
      body: { projectId, message: 'Say hi in a file', type: 'modify' },
    });
    expect(res.status).toBe(202);
    const { requestId } = res.body as { requestId: string };
    const done = await until('the request to finish', async () => {
      const r = await call(t.app, 'GET', `/api/claude/requests/${requestId}`, { token: me.token });
      return r.body.status === 'succeeded' || r.body.status === 'failed' ? r.body : undefined;
    });
    expect(done).toMatchObject({
      requestId,
      projectId,
      type: 'modify',
      status: 'succeeded',
      attempts: 1,
      result: {
        success: true,
        message: 'Wrote hello.txt.',
        changes: [{ path: 'hello.txt', content: 'hi\n', operation: 'create' }],
      },
    });
    await until('claude-response', async () =>
      events.some((e) => e.type === 'claude-response') ? true : undefined,
    );
    await unsubscribe();
    const kinds = events.map((e) => e.type).filter((k) => k.startsWith('claude-'));
    expect(kinds[0]).toBe('claude-progress');
    expect(kinds.at(-1)).toBe('claude-response');
    const progress = events.filter((e) => e.type === 'claude-progress');
    expect(progress.map((e) => e.data.stage)).toEqual(['queued', 'started', 'tool', 'text']);
    // What the assistant wrote is streamed as it is written (a set-up page shows it live).
    expect(progress.at(-1)!.data.message).toBe('Wrote hello.txt.');
    const response = events.find((e) => e.type === 'claude-response')!.data;
    expect(response).toMatchObject({ requestId, changesetId: done.result.changesetId });
    expect(events.some((e) => e.type === 'file_changed' && e.data.path === 'hello.txt')).toBe(true);

    // Another user cannot see it; unknown ids are 404.
    const other = await registerAndLogin(t.app);
    const hidden = await call(t.app, 'GET', `/api/claude/requests/${requestId}`, {
      token: other.token,
    });
    expect(hidden.status).toBe(404);
    const unknown = await call(t.app, 'GET', '/api/claude/requests/nope', { token: me.token });
    expect(unknown.status).toBe(404);
  });
});

describe('exactly-once effect under at-least-once delivery', () => {
  let fake: FakeServer;
  let database: TestDatabase;
  let dataDir: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    fake = await startFakeAnthropic();
    database = await createTestDatabase();
    dataDir = mkdtempSync(path.join(tmpdir(), 'vf-ai-crash-'));
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await fake?.close();
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function startServer(port: number): Promise<ChildProcess> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: serverDir,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_URL: database.url,
        VAPORFORM_DATA_DIR: dataDir,
        VAPORFORM_RUNTIME: 'process',
        ANTHROPIC_API_KEY: 'sk-ant-test',
        ANTHROPIC_BASE_URL: fake.url,
        VAPORFORM_AI_LEASE_SECONDS: '2',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await until(
      'the server to answer /readyz',
      async () => {
        if (child.exitCode !== null) throw new Error(`server exited: ${stderr}`);
        try {
          return (await fetch(`http://127.0.0.1:${port}/readyz`)).ok ? true : undefined;
        } catch {
          return undefined;
        }
      },
      90_000,
    );
    return child;
  }

  async function api(port: number, method: string, url: string, token?: string, body?: unknown) {
    const res = await fetch(`http://127.0.0.1:${port}${url}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  it('a server killed mid-job: after restart the job runs again and applies once', async () => {
    // Each attempt: write a.txt, edit base.txt; the first also leaves scratch.txt, then stalls.
    let attempt = 0;
    let stalledResolve!: () => void;
    const stalled = new Promise<void>((r) => (stalledResolve = r));
    fake.script((request) => {
      const turns = (request.body.messages as unknown[]).length;
      if (turns === 1) attempt++;
      const step = (turns - 1) / 2;
      if (step === 0) {
        return {
          toolCalls: [
            { name: 'write_file', input: { path: 'a.txt', content: 'from the AI\n' } },
            ...(attempt === 1
              ? [{ name: 'write_file', input: { path: 'scratch.txt', content: 'half-done\n' } }]
              : []),
          ],
        };
      }
      if (step === 1) {
        return {
          toolCalls: [
            {
              name: 'edit_file',
              input: { path: 'base.txt', old_str: 'count = 1', new_str: 'count = 2' },
            },
          ],
        };
      }
      if (attempt === 1) {
        stalledResolve();
        return { text: 'never finished', stall: new Promise<void>(() => undefined) };
      }
      return { text: 'Done: count is 2.' };
    });

    const port = await freePort();
    const first = await startServer(port);
    const reg = await api(port, 'POST', '/api/auth/register', undefined, {
      email: 'crash@example.test',
      password: 'correct horse battery staple',
      name: 'Crash',
    }).then(() =>
      api(port, 'POST', '/api/auth/login', undefined, {
        email: 'crash@example.test',
        password: 'correct horse battery staple',
      }),
    );
    const token = reg.body.token as string;
    const project = await api(port, 'POST', '/api/projects', token, { name: 'Crash test' });
    const projectId = project.body.project.id as string;
    const put = await api(port, 'PUT', `/api/projects/${projectId}/files/base.txt`, token, {
      content: 'count = 1\n',
    });
    expect(put.status).toBeLessThan(300);
    const queued = await api(port, 'POST', '/api/claude/process', token, {
      projectId,
      message: 'Set count to 2',
      type: 'modify',
    });
    expect(queued.status).toBe(202);
    const requestId = queued.body.requestId as string;

    await stalled;
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const half = await api(port, 'GET', `/api/projects/${projectId}/files`, token).catch(
      () => undefined,
    );
    expect(half).toBeUndefined(); // really gone

    await startServer(port);
    const finished = await until(
      'the retried request to finish',
      async () => {
        const r = await api(port, 'GET', `/api/claude/requests/${requestId}`, token);
        return r.body.status === 'succeeded' || r.body.status === 'failed' ? r.body : undefined;
      },
      60_000,
    );
    expect(finished).toMatchObject({ status: 'succeeded', attempts: 2 });
    expect(attempt).toBe(2);

    // The project as after one clean run: no scratch file, the edit applied once.
    const files = await api(port, 'GET', `/api/projects/${projectId}/files`, token);
    expect(files.body.files.map((f: { path: string }) => f.path).sort()).toEqual([
      'a.txt',
      'base.txt',
    ]);
    const base = await api(port, 'GET', `/api/projects/${projectId}/files/base.txt`, token);
    expect(base.body.content).toBe('count = 2\n');
    // The second attempt's edit found the original text: the first attempt had been undone.
    const lastEdit = fake.requests.at(-1)!.body.messages.at(-1).content[0];
    expect(lastEdit).toMatchObject({ type: 'tool_result', is_error: false });

    // One changeset for the request, holding exactly the clean run's files.
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const sets = await client.query(
        'SELECT id, status, request_id FROM ai_changesets WHERE project_id = $1',
        [projectId],
      );
      expect(sets.rows).toEqual([
        { id: finished.result.changesetId, status: 'applied', request_id: requestId },
      ]);
      const changed = await client.query(
        'SELECT file_path FROM ai_changeset_files WHERE changeset_id = $1 ORDER BY file_path',
        [finished.result.changesetId],
      );
      expect(changed.rows.map((r) => r.file_path)).toEqual(['a.txt', 'base.txt']);
    } finally {
      await client.end();
    }
  }, 180_000);
});
