import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
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
    body: { name: `Review ${Math.random().toString(36).slice(2)}`, description: 'x' },
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

async function put(path: string, content: string): Promise<void> {
  const res = await call(t.app, 'PUT', `/api/projects/${projectId}/files/${path}`, {
    token: owner.token,
    body: { content },
  });
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
}

async function read(path: string): Promise<string | undefined> {
  const res = await call(t.app, 'GET', `/api/projects/${projectId}/files/${path}`, {
    token: owner.token,
  });
  return res.status === 200 ? (res.body.content as string) : undefined;
}

const lines = (n: number, tag = 'line') =>
  Array.from({ length: n }, (_, i) => `${tag} ${i + 1}\n`).join('');

/** One assistant turn that rewrites a.js in two places, edits b.js and creates c.md. */
async function assistantTurn(): Promise<string> {
  await put('a.js', lines(20));
  await put('b.js', 'const x = 1;\nconst y = 2;\n');
  const aAfter = lines(20)
    .replace('line 3\n', 'LINE THREE\n')
    .replace('line 15\n', 'LINE 15a\nLINE 15b\n');
  fake.script([
    {
      toolCalls: [
        { name: 'write_file', input: { path: 'a.js', content: aAfter } },
        { name: 'edit_file', input: { path: 'b.js', old_str: 'y = 2', new_str: 'y = 20' } },
        { name: 'write_file', input: { path: 'c.md', content: '# New\n' } },
      ],
    },
    { text: 'Done.' },
  ]);
  const res = await call(t.app, 'POST', '/api/claude/modify', {
    token: editor.token,
    body: { projectId, instruction: 'Change things' },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.changesetId as string;
}

function review(changesetId: string, token = editor.token) {
  return call(t.app, 'GET', `/api/projects/${projectId}/changesets/${changesetId}`, { token });
}

function decide(
  changesetId: string,
  verb: 'accept' | 'reject',
  hunkId?: string,
  token = editor.token,
) {
  const path = hunkId
    ? `/api/projects/${projectId}/changesets/${changesetId}/hunks/${hunkId}/${verb}`
    : `/api/projects/${projectId}/changesets/${changesetId}/${verb}`;
  return call(t.app, 'POST', path, { token });
}

type ReviewFile = {
  path: string;
  operation: string;
  hunks: { id: string; state: string; oldStart: number; newStart: number; decidedBy: string }[];
};

function file(body: { changeset: { files: ReviewFile[] } }, path: string): ReviewFile {
  return body.changeset.files.find((f) => f.path === path)!;
}

describe('hunk review of an assistant turn', () => {
  it('lists files and hunks, rejects one hunk of a file edited since, and undoes decisions', async () => {
    const changesetId = await assistantTurn();
    const res = await review(changesetId);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const a = file(res.body, 'a.js');
    expect(a.operation).toBe('update');
    expect(a.hunks).toHaveLength(2);
    expect(a.hunks.map((h) => h.state)).toEqual(['pending', 'pending']);
    expect(a.hunks[0]).toMatchObject({ oldStart: 3, oldLines: 1, newStart: 3, newLines: 1 });
    expect(file(res.body, 'b.js').hunks).toHaveLength(1);
    expect(file(res.body, 'c.md')).toMatchObject({ operation: 'create' });
    // Ids are stable across reads.
    expect(file((await review(changesetId)).body, 'a.js').hunks[1]!.id).toBe(a.hunks[1]!.id);

    // Someone edits a.js in between: two lines on top, one at the end.
    const edited = `// header\n// more\n${(await read('a.js'))!}tail\n`;
    await put('a.js', edited);

    // Reject the second hunk (line 15 → two lines): the old line comes back where it now is.
    const rejected = await decide(changesetId, 'reject', a.hunks[1]!.id);
    expect(rejected.status, JSON.stringify(rejected.body)).toBe(200);
    expect(file(rejected.body, 'a.js').hunks.map((h) => h.state)).toEqual(['pending', 'rejected']);
    expect(file(rejected.body, 'a.js').hunks[1]!.decidedBy).toBe(editor.user.id);
    const expected = edited.replace('LINE 15a\nLINE 15b\n', 'line 15\n');
    expect(await read('a.js')).toBe(expected);
    expect(expected).toContain('LINE THREE\n'); // the other hunk is untouched

    // Accept the first; reject b.js's only hunk.
    expect((await decide(changesetId, 'accept', a.hunks[0]!.id)).status).toBe(200);
    expect(await read('a.js')).toBe(expected);
    const bHunk = file(res.body, 'b.js').hunks[0]!.id;
    expect((await decide(changesetId, 'reject', bHunk)).status).toBe(200);
    expect(await read('b.js')).toBe('const x = 1;\nconst y = 2;\n');

    // Undo: accepting the rejected hunk puts the assistant's text back, the edit kept.
    const undone = await decide(changesetId, 'accept', a.hunks[1]!.id);
    expect(undone.status, JSON.stringify(undone.body)).toBe(200);
    expect(await read('a.js')).toBe(edited);
    // And the accepted one can be rejected.
    expect((await decide(changesetId, 'reject', a.hunks[0]!.id)).status).toBe(200);
    expect(await read('a.js')).toBe(edited.replace('LINE THREE\n', 'line 3\n'));

    // Rejecting the created file's hunk removes the file; accepting it brings it back.
    const cHunk = file(res.body, 'c.md').hunks[0]!.id;
    expect((await decide(changesetId, 'reject', cHunk)).status).toBe(200);
    expect(await read('c.md')).toBeUndefined();
    expect((await decide(changesetId, 'accept', cHunk)).status).toBe(200);
    expect(await read('c.md')).toBe('# New\n');

    // The activity log has each decision with who made it.
    const log = await call(t.app, 'GET', `/api/projects/${projectId}/activity`, {
      token: owner.token,
    });
    const decisions = (log.body.activity as { type: string; userId?: string }[]).filter((e) =>
      e.type.startsWith('ai_hunk_'),
    );
    // Newest first.
    expect(decisions.map((d) => d.type)).toEqual([
      'ai_hunk_accepted',
      'ai_hunk_rejected',
      'ai_hunk_rejected',
      'ai_hunk_accepted',
      'ai_hunk_rejected',
      'ai_hunk_accepted',
      'ai_hunk_rejected',
    ]);
    expect(decisions.every((d) => d.userId === editor.user.id)).toBe(true);
  });

  it('answers 409 and changes nothing when the hunk’s lines changed since', async () => {
    const changesetId = await assistantTurn();
    const a = file((await review(changesetId)).body, 'a.js');
    const now = (await read('a.js'))!.replace('LINE 15a\n', 'LINE 15a edited by hand\n');
    await put('a.js', now);
    const before = await call(t.app, 'GET', `/api/projects/${projectId}/history/a.js`, {
      token: owner.token,
    });
    const res = await decide(changesetId, 'reject', a.hunks[1]!.id);
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('conflict');
    expect(res.body.error.message).toMatch(/a\.js/);
    expect(await read('a.js')).toBe(now);
    const after = await call(t.app, 'GET', `/api/projects/${projectId}/history/a.js`, {
      token: owner.token,
    });
    expect(after.body.versions).toHaveLength(before.body.versions.length);
    expect(file((await review(changesetId)).body, 'a.js').hunks[1]!.state).toBe('pending');
    // Rejecting the whole turn fails as a whole too: b.js keeps the assistant's change.
    expect((await decide(changesetId, 'reject')).status).toBe(409);
    expect(await read('b.js')).toBe('const x = 1;\nconst y = 20;\n');
  });

  it('rejects and accepts a whole turn', async () => {
    const changesetId = await assistantTurn();
    const res = await decide(changesetId, 'reject');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(
      (res.body.changeset.files as ReviewFile[]).flatMap((f) => f.hunks.map((h) => h.state)),
    ).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    expect(await read('a.js')).toBe(lines(20));
    expect(await read('b.js')).toBe('const x = 1;\nconst y = 2;\n');
    expect(await read('c.md')).toBeUndefined();
    expect((await decide(changesetId, 'accept')).status).toBe(200);
    expect(await read('a.js')).toContain('LINE 15b\n');
    expect(await read('c.md')).toBe('# New\n');
  });

  it('shows viewers the review but refuses their decisions (403); strangers 404', async () => {
    const changesetId = await assistantTurn();
    const hunk = file((await review(changesetId)).body, 'b.js').hunks[0]!.id;
    const seen = await review(changesetId, viewer.token);
    expect(seen.status).toBe(200);
    expect(file(seen.body, 'b.js').hunks[0]).toMatchObject({ id: hunk, state: 'pending' });
    const v = await decide(changesetId, 'reject', hunk, viewer.token);
    expect(v.status).toBe(403);
    expect(v.body.error.code).toBe('forbidden');
    expect((await decide(changesetId, 'reject', undefined, viewer.token)).status).toBe(403);
    expect((await decide(changesetId, 'reject', hunk, stranger.token)).status).toBe(404);
    expect((await review(changesetId, stranger.token)).status).toBe(404);
    expect((await decide(changesetId, 'reject', 'nope')).status).toBe(404);
    expect(await read('b.js')).toBe('const x = 1;\nconst y = 20;\n');
  });
});
