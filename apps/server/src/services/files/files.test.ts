import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';

type Session = Awaited<ReturnType<typeof registerAndLogin>>;

let t: TestApp;
let owner: Session;
let editor: Session;
let viewer: Session;
let stranger: Session;
let projectId: string;

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  t = await createTestApp();
  [owner, editor, viewer, stranger] = await Promise.all([
    registerAndLogin(t.app),
    registerAndLogin(t.app),
    registerAndLogin(t.app),
    registerAndLogin(t.app),
  ]);
  projectId = await newProject('Files under test');
  for (const [who, role] of [
    [editor, 'editor'],
    [viewer, 'viewer'],
  ] as const) {
    const res = await call(t.app, 'POST', `/api/projects/${projectId}/members`, {
      token: owner.token,
      body: { email: who.user.email, role },
    });
    expect(res.status).toBe(201);
  }
});

afterAll(async () => {
  await t?.close();
});

async function newProject(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await call(t.app, 'POST', '/api/projects', {
    token: owner.token,
    body: { name, ...extra },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.project.id;
}

function url(rest: string, project = projectId): string {
  return `/api/projects/${project}${rest}`;
}

async function put(
  filePath: string,
  body: Record<string, unknown>,
  who: Session = editor,
  project = projectId,
) {
  return call(t.app, 'PUT', url(`/files/${filePath}`, project), { token: who.token, body });
}

async function get(filePath: string, who: Session = viewer, project = projectId) {
  return call(t.app, 'GET', url(`/files/${filePath}`, project), { token: who.token });
}

describe('reading and writing', () => {
  it('creates, reads and lists a text file with its metadata', async () => {
    const content = 'export const answer = 42;\n';
    const created = await put('src/answer.ts', { content });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({
      changed: true,
      file: {
        path: 'src/answer.ts',
        size: Buffer.byteLength(content),
        type: 'typescript',
        encoding: 'utf-8',
        isBinary: false,
        version: 1,
        contentHash: sha256(content),
        lines: 1,
        source: 'user',
        updatedBy: editor.user.id,
      },
    });

    const read = await get('src/answer.ts');
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({
      path: 'src/answer.ts',
      content,
      encoding: 'utf-8',
      version: 1,
    });

    const updated = await put('src/answer.ts', { content: content.replace('42', '43') });
    expect(updated.status).toBe(200);
    expect(updated.body.file.version).toBe(2);

    const list = await call(t.app, 'GET', url('/files'), { token: viewer.token });
    expect(list.status).toBe(200);
    expect(list.body.directories).toContain('src');
    expect(list.body.files).toContainEqual(
      expect.objectContaining({
        path: 'src/answer.ts',
        version: 2,
        size: Buffer.byteLength(content),
      }),
    );
    const under = await call(t.app, 'GET', url('/files?dir=src'), { token: viewer.token });
    expect(under.body.files.every((f: { path: string }) => f.path.startsWith('src/'))).toBe(true);
  });

  it('round-trips binary and awkward text byte-exact', async () => {
    const binary = Buffer.concat([Buffer.from([0, 255, 0, 1, 0x89, 0x50]), randomBytes(4096)]);
    const wrote = await put('assets/blob.bin', {
      content: binary.toString('base64'),
      encoding: 'base64',
    });
    expect(wrote.status).toBe(201);
    expect(wrote.body.file).toMatchObject({
      isBinary: true,
      encoding: 'base64',
      size: binary.length,
    });
    expect(wrote.body.file.contentHash).toBe(sha256(binary));
    const back = await get('assets/blob.bin');
    expect(back.body.encoding).toBe('base64');
    expect(Buffer.from(back.body.content, 'base64').equals(binary)).toBe(true);

    // A BOM, CRLF line ends, astral characters, no final newline: all kept.
    const text = '\ufeffline one\r\nδεύτερη 🚀\r\n\tlast';
    await put('docs/awkward.txt', { content: text });
    const textBack = await get('docs/awkward.txt');
    expect(textBack.body.content).toBe(text);
    expect(textBack.body.size).toBe(Buffer.byteLength(text));
    expect(textBack.body.lines).toBe(3);

    // Text with a NUL cannot live in a PostgreSQL text column: it is stored as base64, same bytes.
    const withNul = 'a\u0000b';
    await put('docs/with-nul.txt', { content: withNul });
    const nulBack = await get('docs/with-nul.txt');
    expect(nulBack.body.encoding).toBe('base64');
    expect(Buffer.from(nulBack.body.content, 'base64').toString('utf8')).toBe(withNul);

    const bad = await put('docs/bad.bin', { content: '@@not base64@@', encoding: 'base64' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
  });

  it('makes no new version when the content is unchanged', async () => {
    await put('same.txt', { content: 'same' });
    const again = await put('same.txt', { content: 'same' });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ changed: false, file: { version: 1 } });
  });

  it('answers 404 for a file that does not exist, 400 for a malformed body', async () => {
    expect((await get('nope.txt')).status).toBe(404);
    const notJson = await call(t.app, 'PUT', url('/files/x.txt'), {
      token: editor.token,
      body: '{"content": ',
    });
    expect(notJson.status).toBe(400);
    const wrongType = await put('x.txt', { content: 42 });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error.details[0].field).toBe('content');
  });
});

describe('optimistic concurrency', () => {
  it('refuses a stale baseVersion with 409 and changes nothing', async () => {
    await put('cc/one.txt', { content: 'v1' });
    await put('cc/one.txt', { content: 'v2', baseVersion: 1 });
    const stale = await put('cc/one.txt', { content: 'lost?', baseVersion: 1 });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toMatchObject({
      code: 'conflict',
      details: { currentVersion: 2, baseVersion: 1 },
    });
    expect((await get('cc/one.txt')).body).toMatchObject({ content: 'v2', version: 2 });
    // baseVersion 0: create only.
    expect((await put('cc/one.txt', { content: 'x', baseVersion: 0 })).status).toBe(409);
  });

  it('lets exactly one of several writers with the same baseVersion win; nothing is lost', async () => {
    await put('cc/race.txt', { content: 'base' });
    const contents = Array.from({ length: 8 }, (_, i) => `writer ${i}`);
    const answers = await Promise.all(
      contents.map((content) => put('cc/race.txt', { content, baseVersion: 1 })),
    );
    const winners = answers.filter((a) => a.status === 200);
    expect(winners).toHaveLength(1);
    expect(answers.filter((a) => a.status === 409)).toHaveLength(contents.length - 1);
    const winner = contents[answers.indexOf(winners[0]!)]!;
    expect((await get('cc/race.txt')).body).toMatchObject({ content: winner, version: 2 });
    const history = await call(t.app, 'GET', url('/history/cc/race.txt'), { token: viewer.token });
    expect(history.body.versions.map((v: { version: number }) => v.version)).toEqual([2, 1]);

    // Two creators racing on a new path with baseVersion 0: one creates, one is told.
    const creators = await Promise.all(
      ['a', 'b'].map((content) => put('cc/fresh.txt', { content, baseVersion: 0 })),
    );
    expect(creators.map((c) => c.status).sort()).toEqual([201, 409]);
  });

  it('serialises writers without baseVersion: every write is a version', async () => {
    await Promise.all(
      Array.from({ length: 6 }, (_, i) => put('cc/lww.txt', { content: `last writer ${i}` })),
    );
    const history = await call(t.app, 'GET', url('/history/cc/lww.txt'), { token: viewer.token });
    expect(history.body.versions).toHaveLength(6);
    expect((await get('cc/lww.txt')).body.version).toBe(6);
  });
});

describe('history, restore, move and delete', () => {
  it('keeps every version and restores an old one as a new version', async () => {
    for (const content of ['one', 'two', 'three']) await put('h/story.md', { content });
    const history = await call(t.app, 'GET', url('/history/h/story.md'), { token: viewer.token });
    expect(history.status).toBe(200);
    expect(history.body.versions).toHaveLength(3);
    expect(history.body.versions[0]).toMatchObject({
      version: 3,
      operation: 'write',
      source: 'user',
      createdBy: editor.user.id,
      contentHash: sha256('three'),
      size: 5,
    });
    const v1 = await call(t.app, 'GET', url('/history/h/story.md?version=1'), {
      token: viewer.token,
    });
    expect(v1.body).toMatchObject({
      path: 'h/story.md',
      version: 1,
      content: 'one',
      encoding: 'utf-8',
    });

    const restored = await call(t.app, 'POST', url('/restore'), {
      token: editor.token,
      body: { path: 'h/story.md', version: 1 },
    });
    expect(restored.status).toBe(200);
    expect(restored.body.file).toMatchObject({ version: 4, contentHash: sha256('one') });
    expect((await get('h/story.md')).body.content).toBe('one');
    const after = await call(t.app, 'GET', url('/history/h/story.md?limit=1'), {
      token: viewer.token,
    });
    expect(after.body.versions[0]).toMatchObject({ version: 4, operation: 'restore' });

    const missing = await call(t.app, 'GET', url('/history/h/story.md?version=99'), {
      token: viewer.token,
    });
    expect(missing.status).toBe(404);
  });

  it('deletes a file (history stays, restorable) and a whole directory', async () => {
    await put('d/keep/a.txt', { content: 'a' });
    await put('d/keep/b.txt', { content: 'b' });
    await put('d/gone.txt', { content: 'gone' });
    const del = await call(t.app, 'DELETE', url('/files/d/gone.txt'), { token: editor.token });
    expect(del.status).toBe(204);
    expect((await get('d/gone.txt')).status).toBe(404);
    const history = await call(t.app, 'GET', url('/history/d/gone.txt'), { token: viewer.token });
    expect(history.body.versions.map((v: { operation: string }) => v.operation)).toEqual([
      'delete',
      'write',
    ]);
    const back = await call(t.app, 'POST', url('/restore'), {
      token: editor.token,
      body: { path: 'd/gone.txt', version: 1 },
    });
    expect(back.body.file).toMatchObject({ version: 3 });
    const deletion = await call(t.app, 'POST', url('/restore'), {
      token: editor.token,
      body: { path: 'd/gone.txt', version: 2 },
    });
    expect(deletion.status).toBe(400);

    expect(
      (await call(t.app, 'DELETE', url('/files/d/keep'), { token: editor.token })).status,
    ).toBe(204);
    expect((await get('d/keep/a.txt')).status).toBe(404);
    expect((await get('d/keep/b.txt')).status).toBe(404);
    expect(
      (await call(t.app, 'DELETE', url('/files/d/keep'), { token: editor.token })).status,
    ).toBe(404);
    const stale = await call(t.app, 'DELETE', url('/files/d/gone.txt?baseVersion=1'), {
      token: editor.token,
    });
    expect(stale.status).toBe(409);
  });

  it('lists recently deleted files (not moved ones, not recreated ones) and restores them', async () => {
    const project = await newProject('Recently deleted');
    const putIn = (p: string, content: string) => put(p, { content }, owner, project);
    const remove = (p: string) =>
      call(t.app, 'DELETE', url(`/files/${p}`, project), { token: owner.token });
    const deletedList = async () => {
      const res = await call(t.app, 'GET', url('/deleted', project), { token: owner.token });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body.files as { path: string; restoreVersion: number; size: number }[];
    };
    await putIn('rd/first.txt', 'one');
    await putIn('rd/first.txt', 'one, edited');
    await putIn('rd/second.txt', 'two');
    await putIn('rd/moved.txt', 'moved');
    await putIn('rd/again.txt', 'again');
    expect(await deletedList()).toEqual([]);

    expect((await remove('rd/first.txt')).status).toBe(204);
    expect((await remove('rd/second.txt')).status).toBe(204);
    expect((await remove('rd/again.txt')).status).toBe(204);
    await putIn('rd/again.txt', 'recreated');
    const moved = await call(t.app, 'POST', url('/move', project), {
      token: owner.token,
      body: { from: 'rd/moved.txt', to: 'rd/elsewhere.txt' },
    });
    expect(moved.status).toBe(200);

    const listed = await deletedList();
    // Newest deletion first; the moved file and the recreated one are not "deleted".
    expect(listed.map((f) => f.path)).toEqual(['rd/second.txt', 'rd/first.txt']);
    expect(listed[1]).toMatchObject({
      path: 'rd/first.txt',
      version: 3,
      restoreVersion: 2,
      size: Buffer.byteLength('one, edited'),
      source: 'user',
      deletedBy: owner.user.id,
    });

    const back = await call(t.app, 'POST', url('/restore', project), {
      token: owner.token,
      body: { path: 'rd/first.txt', version: listed[1]!.restoreVersion },
    });
    expect(back.status).toBe(200);
    expect((await get('rd/first.txt', owner, project)).body.content).toBe('one, edited');
    expect((await deletedList()).map((f) => f.path)).toEqual(['rd/second.txt']);

    const bad = await call(t.app, 'GET', url('/deleted?limit=0', project), {
      token: owner.token,
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
  });

  it('moves a file and a directory, linking both histories', async () => {
    await put('m/old.ts', { content: 'let x = 1;' });
    const moved = await call(t.app, 'POST', url('/move'), {
      token: editor.token,
      body: { from: 'm/old.ts', to: 'm/new/name.ts' },
    });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    expect(moved.body.file).toMatchObject({ path: 'm/new/name.ts', version: 1 });
    expect((await get('m/old.ts')).status).toBe(404);
    expect((await get('m/new/name.ts')).body.content).toBe('let x = 1;');
    const newHistory = await call(t.app, 'GET', url('/history/m/new/name.ts'), {
      token: viewer.token,
    });
    expect(newHistory.body.versions[0]).toMatchObject({ operation: 'move', movedFrom: 'm/old.ts' });
    const oldHistory = await call(t.app, 'GET', url('/history/m/old.ts'), { token: viewer.token });
    expect(oldHistory.body.versions[0]).toMatchObject({
      operation: 'delete',
      movedTo: 'm/new/name.ts',
    });

    await put('m/taken.ts', { content: 'taken' });
    const onto = await call(t.app, 'POST', url('/move'), {
      token: editor.token,
      body: { from: 'm/new/name.ts', to: 'm/taken.ts' },
    });
    expect(onto.status).toBe(409);

    const dir = await call(t.app, 'POST', url('/move'), {
      token: editor.token,
      body: { from: 'm/new', to: 'lib/renamed' },
    });
    expect(dir.status).toBe(200);
    expect(dir.body.files.map((f: { path: string }) => f.path)).toEqual(['lib/renamed/name.ts']);
    const into = await call(t.app, 'POST', url('/move'), {
      token: editor.token,
      body: { from: 'lib', to: 'lib/inner' },
    });
    expect(into.status).toBe(400);
    const nothing = await call(t.app, 'POST', url('/move'), {
      token: editor.token,
      body: { from: 'no/such', to: 'x' },
    });
    expect(nothing.status).toBe(404);
  });

  it('refuses a file where a directory is, and the reverse, with 409', async () => {
    await put('clash/dir/file.txt', { content: 'x' });
    expect((await put('clash/dir', { content: 'x' })).status).toBe(409);
    expect((await put('clash/dir/file.txt/deeper', { content: 'x' })).status).toBe(409);
  });
});

describe('changesets (FilesService.applyChangeset, for the AI)', () => {
  it('applies several changes in one transaction, all or nothing', async () => {
    const files = t.services.files;
    await put('cs/a.ts', { content: 'a1' });
    await put('cs/b.ts', { content: 'b1' });
    const failed = files.applyChangeset(
      projectId,
      [
        { op: 'write', path: 'cs/a.ts', content: 'a2' },
        { op: 'delete', path: 'cs/b.ts' },
        { op: 'write', path: 'cs/c.ts', content: 'c1' },
        { op: 'write', path: 'cs/a.ts', content: 'a3', baseVersion: 1 }, // stale by now
      ],
      { source: 'claude', userId: editor.user.id },
    );
    await expect(failed).rejects.toMatchObject({ code: 'conflict' });
    expect((await get('cs/a.ts')).body).toMatchObject({ content: 'a1', version: 1 });
    expect((await get('cs/b.ts')).body.content).toBe('b1');
    expect((await get('cs/c.ts')).status).toBe(404);
    expect(
      readFileSync(path.join(t.services.files.workspacePath(projectId), 'cs/a.ts'), 'utf8'),
    ).toBe('a1');

    const outcomes = await files.applyChangeset(
      projectId,
      [
        { op: 'write', path: 'cs/a.ts', content: 'a2', baseVersion: 1 },
        { op: 'move', from: 'cs/b.ts', to: 'cs/renamed.ts' },
        { op: 'write', path: 'cs/c.ts', content: new Uint8Array([1, 2, 0, 3]) },
      ],
      { source: 'claude', userId: editor.user.id },
    );
    expect(outcomes.map((o) => [o.operation, o.path, o.version])).toEqual([
      ['write', 'cs/a.ts', 2],
      ['move', 'cs/renamed.ts', 1],
      ['write', 'cs/c.ts', 1],
    ]);
    const a = (await get('cs/a.ts')).body;
    expect(a).toMatchObject({ content: 'a2', source: 'claude', updatedBy: editor.user.id });
    const activity = (await call(t.app, 'GET', url('/activity?limit=3'), { token: owner.token }))
      .body.activity;
    expect(activity.every((e: { sourceType: string }) => e.sourceType === 'claude')).toBe(true);
  });
});

describe('limits', () => {
  it('refuses a file over the size limit with 413 (default 5 MiB)', async () => {
    const big = 'x'.repeat(5 * 1024 * 1024 + 1);
    const res = await put('big.txt', { content: big });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('too_large');
    expect((await get('big.txt')).status).toBe(404);
    const atLimit = await put('limit.txt', { content: 'y'.repeat(5 * 1024 * 1024) });
    expect(atLimit.status).toBe(201);
    await call(t.app, 'DELETE', url('/files/limit.txt'), { token: editor.token });
  });

  it('enforces the project storage quota; a refused write leaves nothing behind', async () => {
    const small = await newProject('Tiny quota');
    // There is no API for resource limits yet; set the column as an operator would.
    const client = new pg.Client({ connectionString: t.databaseUrl });
    await client.connect();
    await client.query('UPDATE projects SET storage_limit_mb = 1 WHERE id = $1', [small]);
    await client.end();
    const chunk = 'z'.repeat(600 * 1024);
    expect((await put('one.txt', { content: chunk }, owner, small)).status).toBe(201);
    const over = await put('two.txt', { content: chunk }, owner, small);
    expect(over.status).toBe(413);
    expect((await get('two.txt', owner, small)).status).toBe(404);
    // Shrinking is always allowed.
    expect((await put('one.txt', { content: 'small now' }, owner, small)).status).toBe(200);
    expect((await put('two.txt', { content: chunk }, owner, small)).status).toBe(201);
  });
});

describe('statistics and activity', () => {
  it('keeps totals and the activity log right through every operation', async () => {
    const id = await newProject('Stats');
    await put('a.txt', { content: 'aaaa' }, owner, id);
    await put('b/b.txt', { content: 'bb' }, owner, id);
    await put('a.txt', { content: 'a' }, owner, id);
    await call(t.app, 'POST', url('/move', id), {
      token: owner.token,
      body: { from: 'b', to: 'c' },
    });
    await call(t.app, 'DELETE', url('/files/a.txt', id), { token: owner.token });
    await call(t.app, 'POST', url('/restore', id), {
      token: owner.token,
      body: { path: 'a.txt', version: 1 },
    });
    const project = (await call(t.app, 'GET', url('', id), { token: owner.token })).body.project;
    const files = (await call(t.app, 'GET', url('/files', id), { token: owner.token })).body.files;
    expect(files.map((f: { path: string }) => f.path)).toEqual(['a.txt', 'c/b.txt']);
    expect(project.totalFiles).toBe(2);
    expect(project.totalSizeBytes).toBe(6);

    const activity = (await call(t.app, 'GET', url('/activity', id), { token: owner.token })).body
      .activity as { type: string; userId?: string; sourceType: string }[];
    const fileEvents = activity.filter((a) => a.type.startsWith('file_')).map((a) => a.type);
    expect(fileEvents.reverse()).toEqual([
      'file_created',
      'file_created',
      'file_modified',
      'file_moved',
      'file_deleted',
      'file_created',
    ]);
    for (const a of activity.filter((x) => x.type.startsWith('file_'))) {
      expect(a).toMatchObject({ userId: owner.user.id, sourceType: 'user' });
    }
  });
});

describe('roles', () => {
  it('lets viewers read, editors write, and tells strangers nothing exists', async () => {
    await put('roles/file.txt', { content: 'r' });
    const reads: [string, string][] = [
      ['GET', '/files'],
      ['GET', '/files/roles/file.txt'],
      ['GET', '/history/roles/file.txt'],
      ['GET', '/search?q=r'],
      ['GET', '/archive'],
      ['GET', '/deleted'],
    ];
    const writes: [string, string, unknown][] = [
      ['PUT', '/files/roles/file.txt', { content: 'w' }],
      ['DELETE', '/files/roles/file.txt', undefined],
      ['POST', '/move', { from: 'roles/file.txt', to: 'roles/x.txt' }],
      ['POST', '/restore', { path: 'roles/file.txt', version: 1 }],
      ['POST', '/import', undefined],
    ];
    for (const [method, rest] of reads) {
      const asViewer = await call(t.app, method, url(rest), { token: viewer.token });
      expect(asViewer.status, `${method} ${rest} as viewer`).toBe(200);
      const asStranger = await call(t.app, method, url(rest), { token: stranger.token });
      expect(asStranger.status, `${method} ${rest} as stranger`).toBe(404);
      const anonymous = await call(t.app, method, url(rest));
      expect(anonymous.status).toBe(401);
    }
    for (const [method, rest, body] of writes) {
      const asViewer = await call(t.app, method, url(rest), { token: viewer.token, body });
      expect(asViewer.status, `${method} ${rest} as viewer`).toBe(403);
      const asStranger = await call(t.app, method, url(rest), { token: stranger.token, body });
      expect(asStranger.status, `${method} ${rest} as stranger`).toBe(404);
      // Strangers learn nothing, whatever the body.
      const junk = await call(t.app, method, url(rest), { token: stranger.token, body: '{"x":' });
      expect(junk.status).toBe(404);
    }
    const malformed = await call(t.app, 'GET', '/api/projects/not-a-uuid/files', {
      token: owner.token,
    });
    expect(malformed.status).toBe(404);
    expect((await get('roles/file.txt')).body.content).toBe('r');
  });
});

describe('templates and the API description', () => {
  it('writes the template’s files into a new project (source template) and its workspace', async () => {
    const id = await newProject('From a template', { templateId: 'node-http' });
    const template = await t.services.templates.get('node-http');
    const files = (await call(t.app, 'GET', url('/files', id), { token: owner.token })).body.files;
    expect(files.map((f: { path: string }) => f.path).sort()).toEqual(
      template.files.map((f) => f.path).sort(),
    );
    expect(files.every((f: { source: string }) => f.source === 'template')).toBe(true);
    const project = (await call(t.app, 'GET', url('', id), { token: owner.token })).body.project;
    expect(project.totalFiles).toBe(template.files.length);
    const dir = t.services.files.workspacePath(id);
    for (const f of template.files) {
      expect(readFileSync(path.join(dir, f.path), 'utf8')).toBe(f.content);
    }
  });

  it('documents every file route in /openapi.json, the wildcard path included', async () => {
    const doc = (await call(t.app, 'GET', '/openapi.json')).body;
    const filePath = doc.paths['/api/projects/{id}/files/{path}'];
    expect(Object.keys(filePath).sort()).toEqual(['delete', 'get', 'put']);
    expect(filePath.get.parameters.map((p: { name: string }) => p.name)).toContain('path');
    for (const p of [
      '/files',
      '/move',
      '/history/{path}',
      '/restore',
      '/search',
      '/archive',
      '/import',
    ]) {
      expect(doc.paths[`/api/projects/{id}${p}`], p).toBeDefined();
    }
    expect(Object.keys(doc.paths).some((p) => p.includes('{.+}'))).toBe(false);
  });

  it('removes the workspace when the project is deleted', async () => {
    const id = await newProject('Short lived', { templateId: 'node-http' });
    const dir = t.services.files.workspacePath(id);
    expect(existsSync(dir)).toBe(true);
    expect(t.services.files.isWatching(id)).toBe(true);
    expect((await call(t.app, 'DELETE', url('', id), { token: owner.token })).status).toBe(204);
    expect(existsSync(dir)).toBe(false);
    expect(t.services.files.isWatching(id)).toBe(false);
  });
});
