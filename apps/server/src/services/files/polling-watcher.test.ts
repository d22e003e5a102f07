import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { until } from '../../../test/wait.ts';
import { createLogger } from '../../common/logger.ts';
import { createDb } from '../../db/index.ts';
import { Metrics } from '../monitoring/index.ts';
import { FilesService } from './service.ts';

// A second files service on the test app's database, polling a data dir of its own: the app's
// inotify watcher never sees these workspaces, so everything imported here came from polling.
let t: TestApp;
let token: string;
let userId: string;
let files: FilesService;
let dataDir: string;
let closeDb: () => Promise<void>;

beforeAll(async () => {
  t = await createTestApp();
  ({
    token,
    user: { id: userId },
  } = await registerAndLogin(t.app));
  dataDir = mkdtempSync(path.join(tmpdir(), 'vf-poll-'));
  const { db } = createDb(t.databaseUrl, 4);
  closeDb = () => db.destroy();
  files = pollingFiles(db, dataDir);
});

/** A files service polling `dir` every 150 ms, on the test app's database. */
function pollingFiles(
  db: ReturnType<typeof createDb>['db'],
  dir: string,
  active?: (projectId: string) => boolean,
): FilesService {
  return new FilesService({
    db,
    projects: t.services.projects,
    bus: t.services.bus,
    log: createLogger('silent'),
    metrics: new Metrics(),
    dataDir: dir,
    limits: {
      maxFileBytes: t.config.files.maxFileBytes,
      maxArchiveBytes: t.config.files.importMaxBytes,
      zip: {
        maxEntries: t.config.files.importMaxEntries,
        maxTotalBytes: t.config.files.importMaxUncompressedBytes,
        maxRatio: t.config.files.importMaxRatio,
      },
    },
    workspaceIgnore: t.config.files.workspaceIgnore,
    workspaceWatch: 'poll',
    workspacePollMs: 150,
    workspacePollActive: active,
  });
}

afterAll(async () => {
  await files?.close();
  await closeDb?.();
  await t?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** A new project, synchronised and polled by `files`; returns its id and workspace. */
async function project(name: string): Promise<{ id: string; dir: string }> {
  const res = await call(t.app, 'POST', '/api/projects', { token, body: { name } });
  expect(res.status).toBe(201);
  const id: string = res.body.project.id;
  await files.resync(id);
  expect(files.isWatching(id)).toBe(true);
  return { id, dir: files.workspacePath(id) };
}

function read(id: string, p: string) {
  return files.read(id, p).catch(() => undefined);
}

/**
 * Writes a file straight into the workspace and waits until it is imported: everything on disk
 * before it has been seen by then (one walk sees both, or an earlier one did).
 */
async function sentinel(id: string, dir: string): Promise<void> {
  const name = `sentinel-${randomBytes(4).toString('hex')}.txt`;
  writeFileSync(path.join(dir, name), name);
  await until(() => read(id, name), 10_000, `${name} imported`);
  await files.settled(id);
}

describe('workspace polling (VAPORFORM_WORKSPACE_WATCH=poll)', () => {
  it('imports a file a container creates, changes and deletes', async () => {
    const { id, dir } = await project('Polled');
    mkdirSync(path.join(dir, 'gen'));
    writeFileSync(path.join(dir, 'gen/out.txt'), 'hello');
    const created = await until(() => read(id, 'gen/out.txt'), 10_000, 'gen/out.txt imported');
    expect(created).toMatchObject({ content: 'hello', source: 'container', version: 1 });

    writeFileSync(path.join(dir, 'gen/out.txt'), 'world'); // same size, in place
    const changed = await until(
      async () =>
        (await read(id, 'gen/out.txt'))?.version === 2 ? read(id, 'gen/out.txt') : undefined,
      10_000,
      'the change imported',
    );
    expect(changed).toMatchObject({ content: 'world', source: 'container' });

    rmSync(path.join(dir, 'gen'), { recursive: true });
    await until(async () => (await read(id, 'gen/out.txt')) === undefined, 10_000, 'deletion');
    const history = await files.history(id, 'gen/out.txt');
    expect(history.map((v) => [v.version, v.operation, v.source])).toEqual([
      [3, 'delete', 'container'],
      [2, 'write', 'container'],
      [1, 'write', 'container'],
    ]);
  });

  it('does not echo what the service itself wrote', async () => {
    const { id, dir } = await project('No echo');
    await files.write(id, 'echo.txt', 'written by the API', { source: 'user', userId });
    await files.write(id, 'deep/er/echo.txt', 'also', { source: 'user', userId });
    await sentinel(id, dir);
    for (const p of ['echo.txt', 'deep/er/echo.txt']) {
      const history = await files.history(id, p);
      expect(history.map((v) => [v.version, v.source])).toEqual([[1, 'user']]);
    }
  });

  it('never imports symbolic links, nor what they point to', async () => {
    const { id, dir } = await project('Links');
    symlinkSync('/etc/passwd', path.join(dir, 'passwd'));
    symlinkSync('/etc', path.join(dir, 'etc'));
    writeFileSync(path.join(dir, 'real.txt'), 'real');
    await sentinel(id, dir);
    const listed = (await files.list(id))
      .map((f) => f.path)
      .filter((p) => !p.startsWith('sentinel'));
    expect(listed).toEqual(['real.txt']);
  });

  it('keeps polling, and deletes nothing, when a workspace vanishes', async () => {
    const gone = await project('Vanishing');
    await files.write(gone.id, 'kept.txt', 'kept', { source: 'user', userId });
    await sentinel(gone.id, gone.dir); // kept.txt is in its snapshot
    const other = await project('Still polled');
    renameSync(gone.dir, `${gone.dir}-moved`);
    try {
      // Two sentinels in a row: the second one's walk belongs to a tick that began after the rename.
      await sentinel(other.id, other.dir);
      await sentinel(other.id, other.dir);
      await files.settled(gone.id);
      expect(await read(gone.id, 'kept.txt')).toMatchObject({ content: 'kept', version: 1 });
    } finally {
      renameSync(`${gone.dir}-moved`, gone.dir);
    }
  });
  it('walks only the workspaces of running projects at every poll; the others wait their turn', async () => {
    const running = new Set<string>();
    const dir = mkdtempSync(path.join(tmpdir(), 'vf-poll-tiered-'));
    const { db } = createDb(t.databaseUrl, 2);
    const tiered = pollingFiles(db, dir, (id) => running.has(id));
    try {
      const make = async (name: string) => {
        const res = await call(t.app, 'POST', '/api/projects', { token, body: { name } });
        const id: string = res.body.project.id;
        await tiered.resync(id);
        return { id, dir: tiered.workspacePath(id) };
      };
      const live = await make('Running');
      const still = await make('Stopped');
      running.add(live.id);
      writeFileSync(path.join(still.dir, 'late.txt'), 'written while stopped');
      writeFileSync(path.join(live.dir, 'now.txt'), 'written while running');
      const readIn = (id: string, p: string) => tiered.read(id, p).catch(() => undefined);
      await until(() => readIn(live.id, 'now.txt'), 10_000, 'the running project’s file');
      // Ten more polls: the stopped project's workspace is not walked (it would be in one).
      await new Promise((r) => setTimeout(r, 1_500));
      expect(await readIn(still.id, 'late.txt')).toBeUndefined();
      running.add(still.id); // started: walked at the next poll
      const late = await until(() => readIn(still.id, 'late.txt'), 10_000, 'late.txt');
      expect(late).toMatchObject({ content: 'written while stopped', source: 'container' });
    } finally {
      await tiered.close();
      await db.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
