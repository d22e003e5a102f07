import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { call, createTestApp, listen, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { collabUrl, connectCollab, docs, until } from '../../../test/collab-client.ts';
import { startFakeAnthropic, type FakeServer } from '../../../test/fakes/anthropic.ts';

type Session = Awaited<ReturnType<typeof registerAndLogin>>;

let fake: FakeServer;
let t: TestApp;
let owner: Session;
let editor: Session;
let viewer: Session;
let stranger: Session;
let projectId: string;

beforeAll(async () => {
  fake = await startFakeAnthropic();
  t = await createTestApp({ ANTHROPIC_API_KEY: 'sk-ant-test-key', ANTHROPIC_BASE_URL: fake.url });
  [owner, editor, viewer, stranger] = (await Promise.all(
    Array.from({ length: 4 }, () => registerAndLogin(t.app)),
  )) as [Session, Session, Session, Session];
});

afterAll(async () => {
  await t?.close();
  await fake?.close();
});

beforeEach(async () => {
  const res = await call(t.app, 'POST', '/api/projects', {
    token: owner.token,
    body: { name: `CP ${Math.random().toString(36).slice(2)}`, description: 'x' },
  });
  expect(res.status).toBe(201);
  projectId = res.body.project.id;
  for (const [who, role] of [
    [editor, 'editor'],
    [viewer, 'viewer'],
  ] as const) {
    const added = await call(t.app, 'POST', `/api/projects/${projectId}/members`, {
      token: owner.token,
      body: { email: who.user.email, role },
    });
    expect(added.status).toBe(201);
  }
});

async function put(path: string, content: string, encoding?: string, project = projectId) {
  const res = await call(t.app, 'PUT', `/api/projects/${project}/files/${path}`, {
    token: owner.token,
    body: { content, ...(encoding ? { encoding } : {}) },
  });
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
}

/** Every file of a project with its content, as the API gives it. */
async function snapshot(project = projectId, token = owner.token) {
  const list = await call(t.app, 'GET', `/api/projects/${project}/files`, { token });
  expect(list.status).toBe(200);
  const out: Record<string, { content: string; encoding: string }> = {};
  for (const f of list.body.files as { path: string }[]) {
    const r = await call(t.app, 'GET', `/api/projects/${project}/files/${f.path}`, { token });
    out[f.path] = { content: r.body.content, encoding: r.body.encoding };
  }
  return out;
}

async function chatTurn(message: string, answer: string) {
  fake.script([{ text: answer }]);
  const res = await call(t.app, 'POST', `/api/projects/${projectId}/chat`, {
    token: editor.token,
    body: { message },
  });
  expect(res.status).toBe(200);
}

function checkpoint(name: string, token = editor.token) {
  return call(t.app, 'POST', `/api/projects/${projectId}/checkpoints`, { token, body: { name } });
}

function restore(id: string, token = editor.token) {
  return call(t.app, 'POST', `/api/projects/${projectId}/checkpoints/${id}/restore`, { token });
}

describe('checkpoints', () => {
  it('restores files byte for byte, rewinds the chat, and can be undone', async () => {
    await put('src/app.js', 'console.log("v1");\r\nno newline at end');
    await put('keep.txt', 'same\n');
    await put('gone.txt', 'deleted later\n');
    await put('img.bin', Buffer.from([0, 1, 2, 255, 254]).toString('base64'), 'base64');
    await chatTurn('first question', 'first answer');
    const before = await snapshot();

    const made = await checkpoint('Before the experiment');
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    expect(made.body.checkpoint).toMatchObject({
      name: 'Before the experiment',
      kind: 'manual',
      files: 4,
      createdBy: editor.user.id,
    });
    const cp = made.body.checkpoint.id as string;

    // Many changes: edits, a deletion, new files, chat turns (each assistant turn makes an
    // automatic checkpoint).
    await put('src/app.js', 'console.log("v2");\n');
    await put('src/app.js', 'console.log("v3");\n');
    await put('img.bin', Buffer.from([9, 9]).toString('base64'), 'base64');
    const del = await call(t.app, 'DELETE', `/api/projects/${projectId}/files/gone.txt`, {
      token: owner.token,
    });
    expect(del.status).toBe(204);
    for (let i = 0; i < 5; i++) await put(`new/file${i}.txt`, `new ${i}\n`);
    await chatTurn('second question', 'second answer');
    await chatTurn('third question', 'third answer');
    const afterChanges = await snapshot();

    const list = await call(t.app, 'GET', `/api/projects/${projectId}/checkpoints`, {
      token: editor.token,
    });
    expect(list.status).toBe(200);
    const kinds = (list.body.checkpoints as { kind: string }[]).map((c) => c.kind);
    expect(kinds).toEqual(['assistant', 'assistant', 'manual', 'assistant']);

    const events: { type: string; data: any }[] = [];
    const unsubscribe = await t.services.bus.subscribe(`project:${projectId}`, (m) =>
      events.push(m as { type: string; data: any }),
    );
    const res = await restore(cp);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.restored.removed).toEqual([
      'new/file0.txt',
      'new/file1.txt',
      'new/file2.txt',
      'new/file3.txt',
      'new/file4.txt',
    ]);
    expect(res.body.restored.files).toEqual(['gone.txt', 'img.bin', 'src/app.js']);
    // Members hear of the restore's 8 file changes as one `files_changed`, not 8 events.
    await t.services.files.settled(projectId);
    const summary = await until(
      () => events.find((x) => x.type === 'files_changed'),
      10_000,
      'a files_changed event',
    );
    await unsubscribe();
    expect(events.filter((e) => e.type === 'file_changed')).toEqual([]);
    expect(events.filter((e) => e.type === 'files_changed')).toHaveLength(1);
    expect(summary.data).toMatchObject({ source: 'user', userId: editor.user.id });
    // The undo point made first is announced, so open timelines show it.
    expect(events.filter((e) => e.type === 'checkpoint_created').map((e) => e.data)).toEqual([
      {
        checkpointId: res.body.checkpoint.id,
        name: 'Before restoring “Before the experiment”',
        kind: 'restore',
        userId: editor.user.id,
      },
    ]);
    const announced = (summary.data.files as { path: string; operation: string }[])
      .map((f) => `${f.operation} ${f.path}`)
      .sort();
    expect(announced).toEqual([
      'delete new/file0.txt',
      'delete new/file1.txt',
      'delete new/file2.txt',
      'delete new/file3.txt',
      'delete new/file4.txt',
      'write gone.txt',
      'write img.bin',
      'write src/app.js',
    ]);
    expect(res.body.checkpoint.kind).toBe('restore');
    expect(await snapshot()).toEqual(before);

    // The chat is rewound: later messages kept, marked, and out of the model's context.
    const chat = await call(t.app, 'GET', `/api/projects/${projectId}/chat`, {
      token: editor.token,
    });
    const messages = chat.body.messages as { content: string; rewoundAt: string | null }[];
    expect(messages.map((m) => [m.content, m.rewoundAt !== null])).toEqual([
      ['first question', false],
      ['first answer', false],
      ['second question', true],
      ['second answer', true],
      ['third question', true],
      ['third answer', true],
    ]);
    await chatTurn('fourth question', 'fourth answer');
    const sent = JSON.stringify(fake.requests.at(-1)!.body.messages);
    expect(sent).toContain('fourth question');
    expect(sent).toContain('first answer');
    expect(sent).not.toContain('second answer');

    // Nothing lost: restoring the checkpoint made before the restore brings everything back.
    const undo = await restore(res.body.checkpoint.id);
    expect(undo.status, JSON.stringify(undo.body)).toBe(200);
    expect(await snapshot()).toEqual(afterChanges);
    const chat2 = await call(t.app, 'GET', `/api/projects/${projectId}/chat`, {
      token: editor.token,
    });
    expect(
      (chat2.body.messages as { content: string; rewoundAt: string | null }[]).map((m) => [
        m.content,
        m.rewoundAt !== null,
      ]),
    ).toEqual([
      ['first question', false],
      ['first answer', false],
      ['second question', false],
      ['second answer', false],
      ['third question', false],
      ['third answer', false],
      ['fourth question', true],
      ['fourth answer', true],
    ]);

    // Logged.
    const log = await call(t.app, 'GET', `/api/projects/${projectId}/activity`, {
      token: owner.token,
    });
    expect(
      (log.body.activity as { type: string }[]).filter((e) => e.type === 'checkpoint_restored'),
    ).toHaveLength(2);
  });

  it('brings back a file someone has open in live editing (the one files_changed reaches it)', async () => {
    await put('live.txt', 'before\n');
    const cp = (await checkpoint('live')).body.checkpoint.id as string;
    await put('live.txt', 'after\n');
    const server = await listen(t);
    const client = await connectCollab(collabUrl(server.url, editor.token));
    try {
      const doc = client.doc(projectId, 'live.txt');
      await docs.subscribe(doc);
      expect(doc.data).toBe('after\n');
      expect((await restore(cp)).status).toBe(200);
      await until(() => doc.data === 'before\n', 10_000, 'the shared document to follow');
    } finally {
      client.close();
      await server.close();
    }
  });

  it('is for editors: viewers 403, strangers 404, unknown checkpoints 404', async () => {
    const made = await checkpoint('x');
    const id = made.body.checkpoint.id as string;
    expect((await checkpoint('v', viewer.token)).status).toBe(403);
    expect((await restore(id, viewer.token)).status).toBe(403);
    expect((await restore(id, stranger.token)).status).toBe(404);
    expect((await restore('00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await restore('nope')).status).toBe(404);
    const list = await call(t.app, 'GET', `/api/projects/${projectId}/checkpoints`, {
      token: stranger.token,
    });
    expect(list.status).toBe(404);
  });
});

describe('fork', () => {
  async function setEnv() {
    const res = await call(t.app, 'PUT', `/api/projects/${projectId}/env`, {
      token: owner.token,
      body: { vars: { API_TOKEN: 'super-secret-value-123', MODE: 'production' } },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  }

  /** The fork's environment as its container would get it (the forker owns it). */
  async function environmentOf(id: string): Promise<Record<string, string>> {
    return t.services.secrets.projectEnvironment(id);
  }

  it('copies files, configuration and env values for an editor; the fork is independent', async () => {
    await put('a.txt', 'A\n');
    await put('dir/b.bin', Buffer.from([1, 2, 3]).toString('base64'), 'base64');
    await setEnv();
    const original = await snapshot();
    const res = await call(t.app, 'POST', `/api/projects/${projectId}/fork`, {
      token: editor.token,
      body: { name: 'My fork' },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const fork = res.body.project;
    expect(fork).toMatchObject({ name: 'My fork', role: 'owner', ownerId: editor.user.id });
    expect(res.body.origin).toEqual({ projectId, checkpointId: null });
    expect(await snapshot(fork.id, editor.token)).toEqual(original);
    const members = await call(t.app, 'GET', `/api/projects/${fork.id}/members`, {
      token: editor.token,
    });
    expect((members.body.members as { userId: string }[]).map((m) => m.userId)).toEqual([
      editor.user.id,
    ]);
    // The original's owner is not a member of the fork.
    expect(
      (await call(t.app, 'GET', `/api/projects/${fork.id}`, { token: owner.token })).status,
    ).toBe(404);
    expect(await environmentOf(fork.id)).toEqual({
      API_TOKEN: 'super-secret-value-123',
      MODE: 'production',
    });

    // Independent: changing one leaves the other alone.
    await put('a.txt', 'changed in the original\n');
    const inFork = await call(t.app, 'GET', `/api/projects/${fork.id}/files/a.txt`, {
      token: editor.token,
    });
    expect(inFork.body.content).toBe('A\n');
    const w = await call(t.app, 'PUT', `/api/projects/${fork.id}/files/c.txt`, {
      token: editor.token,
      body: { content: 'only in the fork\n' },
    });
    expect(w.status).toBe(201);
    expect(
      (await call(t.app, 'GET', `/api/projects/${projectId}/files/c.txt`, { token: owner.token }))
        .status,
    ).toBe(404);

    // Same name again: 409.
    const again = await call(t.app, 'POST', `/api/projects/${projectId}/fork`, {
      token: editor.token,
      body: { name: 'My fork' },
    });
    expect(again.status).toBe(409);
  });

  it('gives a viewer the env names with empty values, never the secrets', async () => {
    await put('a.txt', 'A\n');
    await setEnv();
    const res = await call(t.app, 'POST', `/api/projects/${projectId}/fork`, {
      token: viewer.token,
      body: { name: 'Viewer fork' },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const env = await environmentOf(res.body.project.id);
    expect(env).toEqual({ API_TOKEN: '', MODE: '' });
    expect(JSON.stringify(res.body)).not.toContain('super-secret');
    const stranger404 = await call(t.app, 'POST', `/api/projects/${projectId}/fork`, {
      token: stranger.token,
      body: { name: 'x' },
    });
    expect(stranger404.status).toBe(404);
  });

  it('forks the files as they were at a checkpoint', async () => {
    await put('a.txt', 'then\n');
    await put('old.txt', 'old\n');
    const cp = (await checkpoint('then')).body.checkpoint.id as string;
    const then = await snapshot();
    await put('a.txt', 'now\n');
    await call(t.app, 'DELETE', `/api/projects/${projectId}/files/old.txt`, { token: owner.token });
    await put('later.txt', 'later\n');
    const res = await call(t.app, 'POST', `/api/projects/${projectId}/fork`, {
      token: editor.token,
      body: { name: 'From a checkpoint', checkpointId: cp },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.origin).toEqual({ projectId, checkpointId: cp });
    expect(await snapshot(res.body.project.id, editor.token)).toEqual(then);
    const bad = await call(t.app, 'POST', `/api/projects/${projectId}/fork`, {
      token: editor.token,
      body: { name: 'Bad', checkpointId: '00000000-0000-4000-8000-000000000000' },
    });
    expect(bad.status).toBe(404);
  });
});
