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
  verb: 'accept' | 'reject' | 'undo',
  hunkId?: string,
  token = editor.token,
) {
  const path = hunkId
    ? `/api/projects/${projectId}/changesets/${changesetId}/hunks/${hunkId}/${verb}`
    : `/api/projects/${projectId}/changesets/${changesetId}/${verb}`;
  return call(t.app, 'POST', path, { token });
}

type Pending = {
  files: {
    path: string;
    hunks: { changesetId: string; hunkId: string; line: number | null; lines: number }[];
  }[];
};

async function pending(token = editor.token): Promise<Pending> {
  const res = await call(t.app, 'GET', `/api/projects/${projectId}/review/pending`, { token });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as Pending;
}

/** Path → [line, lines] of each pending hunk. */
function marks(p: Pending): Record<string, [number | null, number][]> {
  return Object.fromEntries(p.files.map((f) => [f.path, f.hunks.map((h) => [h.line, h.lines])]));
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

  it('undoes a decision back to pending: a rejected hunk’s text comes back, nothing else moves', async () => {
    const changesetId = await assistantTurn();
    const a = file((await review(changesetId)).body, 'a.js');
    const afterTurn = (await read('a.js'))!;
    const events: { type: string; data: any }[] = [];
    const unsubscribe = await t.services.bus.subscribe(`project:${projectId}`, (m) =>
      events.push(m as { type: string; data: any }),
    );

    // Rejected, then undone: pending again, and the assistant's text is back in the file.
    expect((await decide(changesetId, 'reject', a.hunks[0]!.id)).status).toBe(200);
    expect(await read('a.js')).toBe(afterTurn.replace('LINE THREE\n', 'line 3\n'));
    const undone = await decide(changesetId, 'undo', a.hunks[0]!.id);
    expect(undone.status, JSON.stringify(undone.body)).toBe(200);
    expect(file(undone.body, 'a.js').hunks[0]).toMatchObject({
      state: 'pending',
      decidedBy: null,
      decidedAt: null,
    });
    expect(await read('a.js')).toBe(afterTurn);

    // Accepted, then undone: pending again; the file does not change.
    expect((await decide(changesetId, 'accept', a.hunks[1]!.id)).status).toBe(200);
    const versions = async () =>
      (await call(t.app, 'GET', `/api/projects/${projectId}/history/a.js`, { token: owner.token }))
        .body.versions.length as number;
    const before = await versions();
    const undone2 = await decide(changesetId, 'undo', a.hunks[1]!.id);
    expect(file(undone2.body, 'a.js').hunks[1]!.state).toBe('pending');
    expect(await versions()).toBe(before);
    // Undoing a pending hunk changes nothing.
    expect((await decide(changesetId, 'undo', a.hunks[1]!.id)).status).toBe(200);

    // The whole turn: rejected, then every decision undone.
    expect((await decide(changesetId, 'reject')).status).toBe(200);
    expect(await read('c.md')).toBeUndefined();
    const all = await decide(changesetId, 'undo');
    expect(all.status, JSON.stringify(all.body)).toBe(200);
    expect(
      (all.body.changeset.files as ReviewFile[]).flatMap((f) => f.hunks.map((h) => h.state)),
    ).toEqual(['pending', 'pending', 'pending', 'pending']);
    expect(await read('a.js')).toBe(afterTurn);
    expect(await read('c.md')).toBe('# New\n');

    // Each change of state reached members as a `review_changed` event; a no-op did not.
    await unsubscribe();
    const changes = events.filter((e) => e.type === 'review_changed').map((e) => e.data);
    expect(changes.map((d) => [d.state, d.hunks.length])).toEqual([
      ['rejected', 1],
      ['pending', 1],
      ['accepted', 1],
      ['pending', 1],
      ['rejected', 4],
      ['pending', 4],
    ]);
    expect(changes[0]).toMatchObject({
      changesetId,
      userId: editor.user.id,
      hunks: [{ id: a.hunks[0]!.id, path: 'a.js' }],
    });
    const log = await call(t.app, 'GET', `/api/projects/${projectId}/activity`, {
      token: owner.token,
    });
    const undos = (log.body.activity as { type: string; description: string }[]).filter(
      (e) => e.type === 'ai_hunk_undone',
    );
    expect(undos).toHaveLength(3);
    expect(undos[0]!.description).toBe(
      "Returned to pending the assistant's changes (4 hunks in 3 files)",
    );
  });

  it('lists pending hunks by file, where they are now, until they are decided', async () => {
    const changesetId = await assistantTurn();
    const a = file((await review(changesetId)).body, 'a.js');
    expect(marks(await pending())).toEqual({
      'a.js': [
        [3, 1],
        [15, 2],
      ],
      'b.js': [[2, 1]],
      'c.md': [[1, 1]],
    });
    expect((await pending()).files[0]!.hunks[0]).toMatchObject({
      changesetId,
      hunkId: a.hunks[0]!.id,
    });

    // Two lines added on top of a.js: its marks move with the text.
    await put('a.js', `// header\n// more\n${(await read('a.js'))!}`);
    expect(marks(await pending())['a.js']).toEqual([
      [5, 1],
      [17, 2],
    ]);
    // A hunk whose lines were rewritten by hand can no longer be placed, but is still pending.
    await put('b.js', 'rewritten\n');
    expect(marks(await pending())['b.js']).toEqual([[null, 1]]);

    // Decided hunks are no longer pending; an undo brings them back.
    expect((await decide(changesetId, 'accept', a.hunks[0]!.id)).status).toBe(200);
    expect((await decide(changesetId, 'reject', a.hunks[1]!.id)).status).toBe(200);
    expect(marks(await pending())['a.js']).toBeUndefined();
    expect((await decide(changesetId, 'undo', a.hunks[0]!.id)).status).toBe(200);
    expect(marks(await pending())['a.js']).toEqual([[5, 1]]);

    // Viewers see the marks; strangers get 404; a reverted turn has nothing pending.
    expect(marks(await pending(viewer.token))['a.js']).toEqual([[5, 1]]);
    const hidden = await call(t.app, 'GET', `/api/projects/${projectId}/review/pending`, {
      token: stranger.token,
    });
    expect(hidden.status).toBe(404);
    expect(hidden.body.error.code).toBe('not_found');
    const reverted = await call(
      t.app,
      'POST',
      `/api/projects/${projectId}/changesets/${changesetId}/revert`,
      { token: editor.token, body: { force: true } },
    );
    expect(reverted.status, JSON.stringify(reverted.body)).toBe(200);
    expect((await pending()).files).toEqual([]);
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
    expect((await decide(changesetId, 'undo', hunk, viewer.token)).status).toBe(403);
    expect((await decide(changesetId, 'undo', undefined, viewer.token)).status).toBe(403);
    expect((await decide(changesetId, 'reject', hunk, stranger.token)).status).toBe(404);
    expect((await review(changesetId, stranger.token)).status).toBe(404);
    expect((await decide(changesetId, 'reject', 'nope')).status).toBe(404);
    expect(await read('b.js')).toBe('const x = 1;\nconst y = 20;\n');
  });
});
