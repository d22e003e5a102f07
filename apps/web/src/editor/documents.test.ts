import { beforeAll, describe, expect, it } from 'vitest';
import { addMember, createProject, newUser, signIn, type Browser } from '../../test/helpers.ts';
import { ApiError, unwrap } from '../lib/client.ts';
import { DocumentStore, isDirty } from './documents.ts';

// The editor's save and conflict logic, driven against the real server's files API: two
// people (two browsers) editing the same file, drafts surviving a sign-out.

let owner: Browser & { email: string };
let projectId: string;

function storeFor(b: Browser): DocumentStore {
  return new DocumentStore({ files: b.files, drafts: b.drafts, projectId });
}

beforeAll(async () => {
  owner = await newUser();
  const project = await createProject(owner, {
    name: `editor-${Date.now()}`,
    templateId: 'node-http',
  });
  projectId = project.id;
  // Template files are written as the project is created.
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const { files } = unwrap(
      await owner.api.client.GET('/api/projects/{id}/files', {
        params: { path: { id: projectId } },
      }),
    );
    if (files.some((f) => f.path === 'index.html')) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the template files never appeared');
});

describe('opening, editing and saving', () => {
  it('opens a file at its server version, clean', async () => {
    const store = storeFor(owner);
    const doc = await store.open('index.html');
    expect(doc.content).toContain('Hello from Vaporform');
    expect(doc.version).toBeGreaterThanOrEqual(1);
    expect(isDirty(doc)).toBe(false);
    expect(store.snapshot().active).toBe('index.html');
  });

  it('marks an edit dirty, keeps a draft, and a save makes it clean at a new version', async () => {
    const store = storeFor(owner);
    const opened = await store.open('style.css');
    store.edit('style.css', opened.content + '\nh1 { color: tomato; }\n');
    expect(isDirty(store.get('style.css')!)).toBe(true);
    expect(owner.drafts.get(projectId, 'style.css')?.content).toContain('tomato');

    expect(await store.save('style.css')).toBe('saved');
    const saved = store.get('style.css')!;
    expect(isDirty(saved)).toBe(false);
    expect(saved.version).toBeGreaterThan(opened.version!);
    expect(owner.drafts.get(projectId, 'style.css')).toBeNull();
    const onServer = await owner.files.readFile(projectId, 'style.css');
    expect(onServer.content).toContain('tomato');
    expect(onServer.version).toBe(saved.version);
  });

  it('saving an unchanged file sends nothing', async () => {
    const store = storeFor(owner);
    const before = await store.open('package.json');
    expect(await store.save('package.json')).toBe('unchanged');
    expect((await owner.files.readFile(projectId, 'package.json')).version).toBe(before.version);
  });

  it('keeps typing that happened during a save as unsaved', async () => {
    const store = storeFor(owner);
    const doc = await store.open('server.js');
    store.edit('server.js', doc.content + '\n// first\n');
    const saving = store.save('server.js');
    store.edit('server.js', doc.content + '\n// first\n// second\n');
    expect(await saving).toBe('saved');
    const after = store.get('server.js')!;
    expect(after.saved).toContain('// first');
    expect(after.saved).not.toContain('// second');
    expect(isDirty(after)).toBe(true);
    expect(owner.drafts.get(projectId, 'server.js')?.content).toContain('// second');
  });

  it('creates a new file on its first save', async () => {
    const store = storeFor(owner);
    store.openNew('notes/todo.md', '# todo\n');
    expect(await store.save('notes/todo.md')).toBe('saved');
    expect((await owner.files.readFile(projectId, 'notes/todo.md')).content).toBe('# todo\n');
  });

  it('will not close a dirty tab unless forced', async () => {
    const store = storeFor(owner);
    await store.open('index.html');
    store.edit('index.html', 'changed');
    expect(store.close('index.html')).toBe(false);
    expect(store.snapshot().docs.map((d) => d.path)).toContain('index.html');
    expect(store.close('index.html', { force: true })).toBe(true);
    expect(owner.drafts.get(projectId, 'index.html')).toBeNull();
  });
});

describe('two people on one file', () => {
  let editor: Browser;

  beforeAll(async () => {
    const other = await newUser();
    await addMember(owner, projectId, other.email, 'editor');
    editor = other;
  });

  it('a stale save gets a conflict holding their text; "theirs" takes it and is clean', async () => {
    await owner.files.writeFile(projectId, 'shared.txt', 'base\n');
    const mine = storeFor(owner);
    const theirs = storeFor(editor);
    await mine.open('shared.txt');
    await theirs.open('shared.txt');

    theirs.edit('shared.txt', 'base\ntheirs\n');
    expect(await theirs.save('shared.txt')).toBe('saved');

    mine.edit('shared.txt', 'base\nmine\n');
    expect(await mine.save('shared.txt')).toBe('conflict');
    const conflicted = mine.get('shared.txt')!;
    expect(conflicted.conflict?.theirs).toBe('base\ntheirs\n');
    // Who saved first, for the banner to name them.
    expect(conflicted.conflict?.by).toEqual({
      source: 'user',
      userId: editor.api.session.get()!.user.id,
    });
    expect(conflicted.content).toBe('base\nmine\n');
    // Nothing was lost on the server either.
    expect((await owner.files.readFile(projectId, 'shared.txt')).content).toBe('base\ntheirs\n');
    // While in conflict, Ctrl+S does not overwrite.
    expect(await mine.save('shared.txt')).toBe('conflict');

    expect(await mine.resolveConflict('shared.txt', 'theirs')).toBe('saved');
    const resolved = mine.get('shared.txt')!;
    expect(resolved.content).toBe('base\ntheirs\n');
    expect(isDirty(resolved)).toBe(false);
    expect(owner.drafts.get(projectId, 'shared.txt')).toBeNull();
  });

  it('"keep mine" saves over their version, and they see a conflict next', async () => {
    await owner.files.writeFile(projectId, 'mine.txt', 'v1\n');
    const mine = storeFor(owner);
    const theirs = storeFor(editor);
    await mine.open('mine.txt');
    await theirs.open('mine.txt');
    theirs.edit('mine.txt', 'theirs\n');
    await theirs.save('mine.txt');
    mine.edit('mine.txt', 'mine\n');
    expect(await mine.save('mine.txt')).toBe('conflict');
    expect(await mine.resolveConflict('mine.txt', 'mine')).toBe('saved');
    expect((await owner.files.readFile(projectId, 'mine.txt')).content).toBe('mine\n');

    theirs.edit('mine.txt', 'theirs again\n');
    expect(await theirs.save('mine.txt')).toBe('conflict');
    expect(theirs.get('mine.txt')!.conflict?.theirs).toBe('mine\n');
  });

  it('a live change reloads a clean buffer and flags a dirty one', async () => {
    await owner.files.writeFile(projectId, 'live.txt', 'one\n');
    const clean = storeFor(owner);
    const dirty = storeFor(editor);
    await clean.open('live.txt');
    await dirty.open('live.txt');
    dirty.edit('live.txt', 'local edit\n');

    const { file } = await owner.files.writeFile(projectId, 'live.txt', 'two\n');
    await clean.remoteChanged('live.txt', file.version);
    await dirty.remoteChanged('live.txt', file.version);

    expect(clean.get('live.txt')!.content).toBe('two\n');
    expect(clean.get('live.txt')!.version).toBe(file.version);
    expect(dirty.get('live.txt')!.content).toBe('local edit\n');
    expect(dirty.get('live.txt')!.remoteChanged).toBe(true);
    expect(await dirty.save('live.txt')).toBe('conflict');
  });

  it('ignores the echo of its own save', async () => {
    await owner.files.writeFile(projectId, 'echo.txt', 'a\n');
    const store = storeFor(owner);
    await store.open('echo.txt');
    store.edit('echo.txt', 'b\n');
    await store.save('echo.txt');
    store.edit('echo.txt', 'c\n');
    await store.remoteChanged('echo.txt', store.get('echo.txt')!.version!);
    expect(store.get('echo.txt')!.content).toBe('c\n');
    expect(store.get('echo.txt')!.remoteChanged).toBeFalsy();
  });
});

describe('drafts survive a sign-out', () => {
  it('restores unsaved text after the session ends and the user signs in again', async () => {
    await owner.files.writeFile(projectId, 'draft.txt', 'saved text\n');
    const store = storeFor(owner);
    await store.open('draft.txt');
    store.edit('draft.txt', 'saved text\nunsaved line\n');

    // The session is revoked (sign-out elsewhere); the tokens go, the draft stays.
    owner.api.session.clear('expired');
    await expect(owner.files.readFile(projectId, 'draft.txt')).rejects.toBeInstanceOf(ApiError);
    expect(owner.drafts.get(projectId, 'draft.txt')?.content).toContain('unsaved line');

    const again = await signIn(owner.email, owner.storage);
    owner = { ...owner, ...again };
    const reopened = storeFor(owner);
    const doc = await reopened.open('draft.txt');
    expect(doc.restoredDraft).toBe(true);
    expect(doc.content).toBe('saved text\nunsaved line\n');
    expect(isDirty(doc)).toBe(true);
    expect(await reopened.save('draft.txt')).toBe('saved');
    expect((await owner.files.readFile(projectId, 'draft.txt')).content).toContain('unsaved line');
  });

  it('never offers one user’s draft to the next person signing in on the same browser', async () => {
    await owner.files.writeFile(projectId, 'mine.txt', 'shared text\n');
    const store = storeFor(owner);
    await store.open('mine.txt');
    store.edit('mine.txt', 'shared text\nprivate unsaved line\n');
    owner.api.session.clear('expired');

    // Someone else signs in on this browser (same storage) and is a member of the project.
    const other = await newUser();
    await addMember(await signIn(owner.email), projectId, other.email, 'editor');
    const next = await signIn(other.email, owner.storage);
    expect(next.drafts.paths(projectId)).toEqual([]);
    const theirs = await storeFor(next).open('mine.txt');
    expect(theirs.restoredDraft).toBeFalsy();
    expect(theirs.content).toBe('shared text\n');

    // The owner signs in again: the draft is still theirs.
    const back = await signIn(owner.email, owner.storage);
    owner = { ...owner, ...back };
    expect(owner.drafts.paths(projectId)).toContain('mine.txt');
    const doc = await storeFor(owner).open('mine.txt');
    expect(doc.content).toContain('private unsaved line');
  });

  it('a draft made against an old version reports the conflict instead of overwriting', async () => {
    await owner.files.writeFile(projectId, 'old.txt', 'v1\n');
    const store = storeFor(owner);
    await store.open('old.txt');
    store.edit('old.txt', 'my draft\n');
    await owner.files.writeFile(projectId, 'old.txt', 'someone else\n');

    const reopened = storeFor(owner);
    const doc = await reopened.open('old.txt');
    expect(doc.content).toBe('my draft\n');
    expect(await reopened.save('old.txt')).toBe('conflict');
    expect(reopened.get('old.txt')!.conflict?.theirs).toBe('someone else\n');
  });
});
