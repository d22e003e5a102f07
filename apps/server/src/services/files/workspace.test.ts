import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { chmod, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';

type Event = { type: string; data: Record<string, unknown> };

let t: TestApp;
let token: string;
let userId: string;

beforeAll(async () => {
  t = await createTestApp();
  ({
    token,
    user: { id: userId },
  } = await registerAndLogin(t.app));
});

afterAll(async () => {
  await t?.close();
});

/** Polls `check` every 50 ms until it holds (at most `ms`). */
async function waitFor<T>(
  check: () => Promise<T | undefined> | T | undefined,
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function project(app: TestApp, tokenFor: string, name: string) {
  const res = await call(app.app, 'POST', '/api/projects', { token: tokenFor, body: { name } });
  expect(res.status).toBe(201);
  const id: string = res.body.project.id;
  const events: Event[] = [];
  await app.services.bus.subscribe(`project:${id}`, (m) => events.push(m as Event));
  return { id, dir: app.services.files.workspacePath(id), events };
}

async function readFile(app: TestApp, tokenFor: string, id: string, p: string) {
  return call(app.app, 'GET', `/api/projects/${id}/files/${p}`, { token: tokenFor });
}

/**
 * Writes a file inside the workspace and waits until it is imported: everything the watcher saw
 * before it has been handled by then (one lane per project).
 */
async function sentinel(app: TestApp, tokenFor: string, id: string, dir: string): Promise<void> {
  const name = `sentinel-${randomBytes(4).toString('hex')}.txt`;
  writeFileSync(path.join(dir, name), name);
  await waitFor(async () => (await readFile(app, tokenFor, id, name)).status === 200);
}

function filesOnDisk(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => !d.isDirectory())
    .map((d) => path.relative(dir, path.join(d.parentPath, d.name)))
    .sort();
}

describe('database → workspace', () => {
  it('puts every API change on disk before answering (atomic writes, no leftovers)', async () => {
    const { id, dir } = await project(t, token, 'To disk');
    const bin = randomBytes(2048);
    await call(t.app, 'PUT', `/api/projects/${id}/files/src/a.ts`, {
      token,
      body: { content: 'a' },
    });
    await call(t.app, 'PUT', `/api/projects/${id}/files/img/b.bin`, {
      token,
      body: { content: bin.toString('base64'), encoding: 'base64' },
    });
    expect(readFileSync(path.join(dir, 'src/a.ts'), 'utf8')).toBe('a');
    expect(readFileSync(path.join(dir, 'img/b.bin')).equals(bin)).toBe(true);

    // An executable script keeps its mode when rewritten.
    await call(t.app, 'PUT', `/api/projects/${id}/files/run.sh`, {
      token,
      body: { content: '#!/bin/sh\n' },
    });
    await chmod(path.join(dir, 'run.sh'), 0o755);
    await call(t.app, 'PUT', `/api/projects/${id}/files/run.sh`, {
      token,
      body: { content: '#!/bin/sh\necho hi\n' },
    });
    expect((await stat(path.join(dir, 'run.sh'))).mode & 0o777).toBe(0o755);

    await call(t.app, 'POST', `/api/projects/${id}/move`, {
      token,
      body: { from: 'src', to: 'lib' },
    });
    expect(existsSync(path.join(dir, 'src'))).toBe(false);
    expect(readFileSync(path.join(dir, 'lib/a.ts'), 'utf8')).toBe('a');

    await call(t.app, 'DELETE', `/api/projects/${id}/files/img/b.bin`, { token });
    expect(existsSync(path.join(dir, 'img'))).toBe(false); // emptied directories go too
    expect(filesOnDisk(dir)).toEqual(['lib/a.ts', 'run.sh']);
  });

  it('never writes through a symbolic link planted in the workspace', async () => {
    const { id, dir } = await project(t, token, 'Planted link');
    const outside = mkdtempSync(path.join(tmpdir(), 'vf-outside-'));
    try {
      symlinkSync(outside, path.join(dir, 'escape'));
      const res = await call(t.app, 'PUT', `/api/projects/${id}/files/escape/pwn.txt`, {
        token,
        body: { content: 'pwned' },
      });
      // The database keeps the file (it is the source of truth); the disk write is refused.
      expect(res.status).toBe(201);
      expect(readdirSync(outside)).toEqual([]);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });
});

describe('workspace → database', () => {
  it('imports files created, changed and deleted inside the workspace, with file_changed events', async () => {
    const { id, dir, events } = await project(t, token, 'From disk');
    mkdirSync(path.join(dir, 'gen'));
    writeFileSync(path.join(dir, 'gen/out.txt'), 'generated');
    const first = await waitFor(async () => {
      const res = await readFile(t, token, id, 'gen/out.txt');
      return res.status === 200 ? res.body : undefined;
    });
    expect(first).toMatchObject({ content: 'generated', source: 'container', version: 1 });
    expect(first).not.toHaveProperty('updatedBy');
    await waitFor(() =>
      events.find((e) => e.type === 'file_changed' && e.data.path === 'gen/out.txt'),
    );
    expect(events.find((e) => e.data.path === 'gen/out.txt')!.data).toMatchObject({
      path: 'gen/out.txt',
      version: 1,
      source: 'container',
      operation: 'write',
    });

    writeFileSync(path.join(dir, 'gen/out.txt'), 'regenerated');
    await waitFor(async () => (await readFile(t, token, id, 'gen/out.txt')).body.version === 2);

    const bin = randomBytes(10_000);
    mkdirSync(path.join(dir, 'deep/er'), { recursive: true });
    writeFileSync(path.join(dir, 'deep/er/blob.bin'), bin);
    writeFileSync(path.join(dir, 'deep/note.md'), '# note');
    const blob = await waitFor(async () => {
      const res = await readFile(t, token, id, 'deep/er/blob.bin');
      return res.status === 200 ? res.body : undefined;
    });
    expect(Buffer.from(blob.content, 'base64').equals(bin)).toBe(true);

    unlinkSync(path.join(dir, 'gen/out.txt'));
    await waitFor(async () => (await readFile(t, token, id, 'gen/out.txt')).status === 404);
    rmSync(path.join(dir, 'deep'), { recursive: true });
    await waitFor(async () => (await readFile(t, token, id, 'deep/note.md')).status === 404);
    expect((await readFile(t, token, id, 'deep/er/blob.bin')).status).toBe(404);
    await waitFor(() =>
      events.find((e) => e.data.path === 'gen/out.txt' && e.data.operation === 'delete'),
    );

    const activity = await call(t.app, 'GET', `/api/projects/${id}/activity`, { token });
    const created = activity.body.activity.find(
      (a: { type: string; metadata: { file_path?: string } }) =>
        a.type === 'file_created' && a.metadata.file_path === 'gen/out.txt',
    );
    expect(created).toMatchObject({ sourceType: 'system' });
  });

  it('leaves node_modules, .git, dist and other ignored paths alone, and symlinks too', async () => {
    const { id, dir } = await project(t, token, 'Ignored');
    for (const p of [
      'node_modules/left-pad/index.js',
      '.git/HEAD',
      'dist/bundle.js',
      'a/__pycache__/x.pyc',
    ]) {
      mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
      writeFileSync(path.join(dir, p), 'ignored');
    }
    symlinkSync('/etc/hostname', path.join(dir, 'link.txt'));
    writeFileSync(path.join(dir, 'package-lock.json'), '{}');
    await sentinel(t, token, id, dir);
    const list = await call(t.app, 'GET', `/api/projects/${id}/files`, { token });
    expect(
      list.body.files
        .map((f: { path: string }) => f.path)
        .filter((p: string) => !p.startsWith('sentinel')),
    ).toEqual(['package-lock.json']);
  });

  it('does not echo: an API write comes back from the disk as nothing', async () => {
    const { id, dir, events } = await project(t, token, 'No echo');
    for (let i = 0; i < 5; i++) {
      await call(t.app, 'PUT', `/api/projects/${id}/files/echo.txt`, {
        token,
        body: { content: `v${i}` },
      });
    }
    await sentinel(t, token, id, dir);
    const history = await call(t.app, 'GET', `/api/projects/${id}/history/echo.txt`, { token });
    expect(history.body.versions).toHaveLength(5);
    expect(history.body.versions.every((v: { source: string }) => v.source === 'user')).toBe(true);
    const echoes = events.filter((e) => e.data.path === 'echo.txt');
    expect(echoes).toHaveLength(5);
    expect(echoes.every((e) => e.data.source === 'user' && e.data.userId === userId)).toBe(true);
  });

  it('skips files over the size limit instead of versioning them', async () => {
    const { id, dir } = await project(t, token, 'Too big');
    writeFileSync(path.join(dir, 'huge.bin'), Buffer.alloc(5 * 1024 * 1024 + 1));
    await sentinel(t, token, id, dir);
    expect((await readFile(t, token, id, 'huge.bin')).status).toBe(404);
  });
});

describe('restart', () => {
  it('resynchronises: the database wins for its files, files only on disk are imported', async () => {
    // The holder owns the database (and the keys in the data dir) across the restart; it knows
    // nothing of the project, which is created after it started.
    const dataDir = mkdtempSync(path.join(tmpdir(), 'vf-restart-'));
    const holder = await createTestApp({}, { dataDir });
    let second: TestApp | undefined;
    try {
      const first = await createTestApp({}, { databaseUrl: holder.databaseUrl, dataDir });
      const session = await registerAndLogin(first.app);
      const { id, dir } = await project(first, session.token, 'Restarted');
      for (const [p, content] of [
        ['kept.txt', 'kept'],
        ['tampered.txt', 'original'],
        ['removed.txt', 'removed while down'],
      ]) {
        await call(first.app, 'PUT', `/api/projects/${id}/files/${p}`, {
          token: session.token,
          body: { content },
        });
      }
      await first.close();

      // While the server is down, someone edits the workspace.
      writeFileSync(path.join(dir, 'tampered.txt'), 'changed while down');
      unlinkSync(path.join(dir, 'removed.txt'));
      writeFileSync(path.join(dir, 'new-on-disk.txt'), 'born while down');

      second = await createTestApp({}, { databaseUrl: holder.databaseUrl, dataDir });
      await second.services.files.ready;
      expect(readFileSync(path.join(dir, 'tampered.txt'), 'utf8')).toBe('original');
      expect(readFileSync(path.join(dir, 'removed.txt'), 'utf8')).toBe('removed while down');
      const imported = await readFile(second, session.token, id, 'new-on-disk.txt');
      expect(imported.body).toMatchObject({ content: 'born while down', source: 'container' });
      const tampered = await call(second.app, 'GET', `/api/projects/${id}/history/tampered.txt`, {
        token: session.token,
      });
      expect(tampered.body.versions).toHaveLength(1);

      // And it watches again.
      writeFileSync(path.join(dir, 'after-restart.txt'), 'watched');
      await waitFor(
        async () =>
          (await readFile(second!, session.token, id, 'after-restart.txt')).status === 200,
      );
    } finally {
      await second?.close();
      await holder.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
