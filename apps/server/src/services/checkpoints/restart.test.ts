// A restore restarts the project's container when the run command or the dependencies differ
// between now and the checkpoint, and only then (process runtime: no Docker engine needed).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { createProject, eventually, type Session } from '../../../test/docker-projects.ts';

let t: TestApp;
let owner: Session;
let projectId: string;

beforeAll(async () => {
  t = await createTestApp({
    VAPORFORM_RUNTIME: 'process',
    VAPORFORM_RECONCILE_SECONDS: '0',
    VAPORFORM_STATS_SECONDS: '0',
  });
  owner = await registerAndLogin(t.app);
  projectId = await createProject(t, owner, 'Restart on restore');
});

afterAll(async () => {
  await t?.close();
});

async function put(path: string, content: string) {
  const res = await call(t.app, 'PUT', `/api/projects/${projectId}/files/${path}`, {
    token: owner.token,
    body: { content },
  });
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
}

async function checkpoint(name: string): Promise<string> {
  const res = await call(t.app, 'POST', `/api/projects/${projectId}/checkpoints`, {
    token: owner.token,
    body: { name },
  });
  expect(res.status).toBe(201);
  return res.body.checkpoint.id as string;
}

async function container(): Promise<{ id: string; status: string }> {
  const res = await call(t.app, 'GET', `/api/containers/${projectId}`, { token: owner.token });
  expect(res.status).toBe(200);
  return res.body.container;
}

async function restore(id: string) {
  const preview = await call(t.app, 'GET', `/api/projects/${projectId}/checkpoints/${id}`, {
    token: owner.token,
  });
  expect(preview.status).toBe(200);
  const res = await call(t.app, 'POST', `/api/projects/${projectId}/checkpoints/${id}/restore`, {
    token: owner.token,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  // The confirmation said what the restore then did.
  expect([...res.body.restored.files, ...res.body.restored.removed].sort()).toEqual(
    [...preview.body.write, ...preview.body.remove].sort(),
  );
  // Every change has reached the workspace (and any restart has been asked for).
  await t.services.files.settled(projectId);
  return { ...res.body, previewRestart: preview.body.restart as boolean };
}

/** The running instance, once it runs again (a restart gives the process runtime a new one). */
async function running(notId?: string): Promise<string> {
  return eventually(
    async () => {
      const c = await container();
      return c.status === 'running' && c.id !== notId && c.id;
    },
    60_000,
    notId ? `a new instance instead of ${notId}` : 'the container running',
  );
}

describe('restore and the container', () => {
  it('restarts a running container only when the run command or dependencies changed', async () => {
    const started = await call(t.app, 'POST', `/api/containers/${projectId}/start?wait=true`, {
      token: owner.token,
    });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    const first = await running();
    const clean = await checkpoint('clean');

    // Only an ordinary file differs: the dev server's own watcher is enough, no restart.
    await put('notes.md', 'a note written after the checkpoint\n');
    const plain = await restore(clean);
    expect(plain.restored.removed).toEqual(['notes.md']);
    expect(plain.restart).toBe(false);
    expect(plain.previewRestart).toBe(false);
    // Still the same instance a while later (bounded wait: a restart would show within it).
    await new Promise((r) => setTimeout(r, 1500));
    expect((await container()).id).toBe(first);

    // A dependency appears in package.json: the container restarts (install, then the command).
    const pkg = await call(t.app, 'GET', `/api/projects/${projectId}/files/package.json`, {
      token: owner.token,
    });
    expect(pkg.status).toBe(200);
    const manifest = JSON.parse(pkg.body.content as string) as Record<string, unknown>;
    await put(
      'package.json',
      JSON.stringify({ ...manifest, dependencies: { 'left-pad': '1.3.0' } }, null, 2),
    );
    const withDeps = await restore(clean);
    expect(withDeps.restored.files).toEqual(['package.json']);
    expect(withDeps.previewRestart).toBe(true);
    expect(withDeps.restart).toBe(true);
    const second = await running(first);
    expect(second).not.toBe(first);

    // An entry file going away changes the command chosen: restart too.
    await put('index.js', 'console.log("another entry");\n');
    const entry = await restore(clean);
    expect(entry.restored.removed).toEqual(['index.js']);
    expect(entry.restart).toBe(true);
    await running(second);
  });

  it('leaves a stopped container stopped, even when dependencies changed', async () => {
    const stopped = await call(t.app, 'POST', `/api/containers/${projectId}/stop`, {
      token: owner.token,
    });
    expect(stopped.status, JSON.stringify(stopped.body)).toBe(200);
    const cp = await checkpoint('stopped');
    await put('requirements.txt', 'flask==3.0.0\n');
    const res = await restore(cp);
    expect(res.previewRestart).toBe(true);
    expect(res.restart).toBe(false);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await container()).status).toBe('stopped');
  });
});
