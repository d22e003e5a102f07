// The edit → see it → terminal → crash loop on a real Docker engine (the test dockerd:
// test/docker.ts), as a person lives it. Serial: one engine, two cores.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { execIn, removeInstallation, useTestDocker } from '../../../test/docker.ts';
import {
  createProject,
  devServerSource,
  eventually,
  rawRequest,
  writeDevServer,
  type Session,
} from '../../../test/docker-projects.ts';
import { workspaceDir } from '../files/index.ts';
import { ContainersStore } from './index.ts';

let t: TestApp;
let docker: Docker;
let installationId: string;
let alice: Session;

beforeAll(async () => {
  let dockerHost: string;
  ({ docker, dockerHost } = await useTestDocker());
  t = await createTestApp({
    VAPORFORM_RUNTIME: 'docker',
    DOCKER_HOST: dockerHost,
    VAPORFORM_RECONCILE_SECONDS: '0',
    VAPORFORM_STATS_SECONDS: '0',
    VAPORFORM_PIDS_LIMIT: '128',
  });
  installationId = await new ContainersStore(t.services.db).installationId();
  alice = await registerAndLogin(t.app);
}, 900_000);

afterAll(async () => {
  await t?.close();
  if (docker && installationId) await removeInstallation(docker, installationId);
}, 120_000);

async function start(projectId: string): Promise<any> {
  const res = await call(t.app, 'POST', `/api/containers/${projectId}/start?wait=true`, {
    token: alice.token,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.container;
}

/** Saves a file the way the IDE does (the files API: a `file_changed` event follows). */
async function save(projectId: string, file: string, content: string): Promise<void> {
  const res = await call(t.app, 'PUT', `/api/projects/${projectId}/files/${file}`, {
    token: alice.token,
    body: { content },
  });
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
}

async function container(projectId: string): Promise<any> {
  const res = await call(t.app, 'GET', `/api/containers/${projectId}`, { token: alice.token });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.container;
}

/** Runs a shell command in the container as its user (like the terminal); output and code. */
async function sh(projectId: string, script: string): Promise<{ output: string; code: number }> {
  const { output, exitCode } = await execIn(
    docker,
    `vf-${projectId}`,
    ['/bin/bash', '-c', script],
    {
      user: '1000:1000',
      workingDir: '/app',
      env: ['HOME=/home/vaporform', 'TERM=xterm-256color'],
      timeoutMs: 60_000,
    },
  );
  return { output, code: exitCode ?? -1 };
}

/** Container status events of a project, as its members' sockets receive them. */
async function statusEvents(projectId: string) {
  const events: any[] = [];
  const off = await t.services.bus.subscribe(`project:${projectId}`, (m: any) => {
    if (m?.type === 'container_status') events.push(m.data);
  });
  return { events, off };
}

const brokenServer = `import { createServer } from 'node:http';\nconst port = ;\n`;

describe('the terminal', () => {
  let projectId: string;

  beforeAll(async () => {
    projectId = await createProject(t, alice, 'Terminal tools');
    writeDevServer(t, projectId);
    await start(projectId);
  }, 300_000);

  it('has what people type first: git, curl, which, unzip, python3, an editor', async () => {
    const { output, code } = await sh(
      projectId,
      'set -e; for c in git curl which unzip python3 nano vi node npm; do which $c; done; ' +
        'git --version; curl --version | head -n1; unzip -v | head -n1; ' +
        'python3 -c "import json, ssl, sqlite3; print(\'python ok\')"; ' +
        'vi --version | head -n1; nano --version | head -n1; ' +
        'cd /tmp && git init -q repo && cd repo && git -c user.name=a -c user.email=a@b.c ' +
        'commit -q --allow-empty -m first && git log --format=%s',
    );
    expect(output, output).toMatch(/git version 2\./);
    expect(output).toMatch(/^curl \d/m);
    expect(output).toMatch(/UnZip \d/);
    expect(output).toContain('python ok');
    expect(output).toMatch(/VIM - Vi IMproved|GNU nano/);
    expect(output).toMatch(/^first$/m);
    expect(code, output).toBe(0);
  }, 60_000);

  it('/tmp and $HOME are writable as on any Linux box, and npm writes package.json and its cache', async () => {
    const { output, code } = await sh(
      projectId,
      'set -e; stat -c "%a %U" /tmp; echo "HOME=$HOME"; stat -c "%U" "$HOME"; ' +
        'touch /tmp/scratch "$HOME/.profile_test"; mkdir -p "$HOME/.config/x"; ' +
        'npm pkg set description="set from the terminal"; ' +
        'npm cache verify >/dev/null; ls -d "${npm_config_cache:-$HOME/.npm}/_cacache"; echo done',
    );
    expect(code, output).toBe(0);
    expect(output).toMatch(/^1777 root$/m);
    expect(output).toMatch(/^HOME=\/home\/vaporform$/m);
    expect(output).toMatch(/^vaporform$/m);
    expect(output).toMatch(/_cacache/);
    // The terminal's change is the project's file (the IDE shows it through the files API).
    const pkg = JSON.parse(
      readFileSync(path.join(workspaceDir(t.config.dataDir, projectId), 'package.json'), 'utf8'),
    );
    expect(pkg.description).toBe('set from the terminal');
  }, 60_000);
});

describe('watch mode and crashes', () => {
  let projectId: string;
  let port: number;

  beforeAll(async () => {
    projectId = await createProject(t, alice, 'Watch mode');
    writeDevServer(t, projectId, '<h1>v1</h1>');
    const started = await start(projectId);
    expect(started.health).toBe('healthy');
    port = started.ports['3000'];
  }, 300_000);

  it('restarts the dev server in place when server.js is saved', async () => {
    const before = await container(projectId);
    const saved = performance.now();
    await save(
      projectId,
      'server.js',
      devServerSource.replace(
        "'content-type': 'text/html'",
        "'content-type': 'text/html', 'x-v': '2'",
      ),
    );
    await eventually(
      async () => (await rawRequest(port, 'GET', '/', {}).catch(() => undefined))?.headers['x-v'],
      15_000,
      'the saved server.js to answer',
    );
    const ms = Math.round(performance.now() - saved);
    console.log(`save server.js → the new server answers: ${ms} ms`);
    expect((await container(projectId)).id).toBe(before.id); // same container, restarted in place
  }, 60_000);

  it('shows a syntax error as crashed with its last lines, and comes back when it is fixed', async () => {
    const { events, off } = await statusEvents(projectId);
    try {
      await save(projectId, 'server.js', brokenServer);
      const crashed = await eventually(
        async () => events.find((e) => e.status === 'crashed'),
        15_000,
        'a crashed status event',
      );
      expect(crashed.crash.reason).toMatch(/SyntaxError/);
      expect(crashed.crash.lines.join('\n')).toMatch(/SyntaxError: Unexpected token/);
      expect(crashed.health).toBe('unhealthy');
      const shown = await container(projectId);
      expect(shown).toMatchObject({ status: 'crashed', health: 'unhealthy' });
      expect(shown.crash.lines.join('\n')).toContain('server.js');

      // The reconciler leaves it alone: no "gave up after 3 restarts", no kill.
      for (let i = 0; i < 4; i++) await t.services.containers.reconcile();
      expect((await docker.getContainer(`vf-${projectId}`).inspect()).State.Running).toBe(true);
      expect(await t.services.projects.findById(projectId)).toMatchObject({ status: 'running' });

      // The next save brings it back, and it stays up.
      events.length = 0;
      await save(projectId, 'server.js', devServerSource);
      await eventually(
        async () => events.find((e) => e.status === 'running' && e.health === 'healthy'),
        15_000,
        'a healthy status event',
      );
      const back = await container(projectId);
      expect(back.id).toBe(shown.id); // its watcher restarted it in place
      expect((await rawRequest(back.ports['3000'], 'GET', '/', {})).status).toBe(200);
      for (let i = 0; i < 2; i++) await t.services.containers.reconcile();
      expect(await container(projectId)).toMatchObject({
        status: 'running',
        health: 'healthy',
        crash: null,
        reason: null,
      });
      expect((await rawRequest(back.ports['3000'], 'GET', '/', {})).status).toBe(200);
    } finally {
      await off();
    }
  }, 90_000);

  it('shows a stop someone asked for as stopped, not as a failure', async () => {
    const { events, off } = await statusEvents(projectId);
    try {
      const res = await call(t.app, 'POST', `/api/containers/${projectId}/stop`, {
        token: alice.token,
      });
      expect(res.body.container).toMatchObject({ status: 'stopped', reason: null, crash: null });
      await t.services.containers.reconcile();
      expect(await container(projectId)).toMatchObject({ status: 'stopped', reason: null });
      expect(events.at(-1)).toMatchObject({ status: 'stopped', reason: null });
      expect(events.some((e) => e.status === 'crashed' || /code 143/.test(e.reason ?? ''))).toBe(
        false,
      );
    } finally {
      await off();
    }
  }, 60_000);
});

describe('a dev server that exits', () => {
  it('is shown as crashed with its exit and last lines, restarted with back-off, and again on the next save', async () => {
    // No template: the project's own `npm run dev`, not a watcher, so the container exits.
    const created = await call(t.app, 'POST', '/api/projects', {
      token: alice.token,
      body: { name: 'Exits', description: 'crashes at start' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const projectId = created.body.project.id as string;
    await save(
      projectId,
      'package.json',
      JSON.stringify({
        name: 'exits',
        private: true,
        type: 'module',
        scripts: { dev: 'node app.js' },
      }),
    );
    await save(projectId, 'app.js', "console.log('booting');\nthrow new Error('boom at start');\n");
    const { events, off } = await statusEvents(projectId);
    try {
      const res = await call(t.app, 'POST', `/api/containers/${projectId}/start?wait=true`, {
        token: alice.token,
      });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const crashed = await eventually(
        async () => {
          const c = await container(projectId);
          return c.status === 'crashed' && c.crash.lines.some((l: string) => /boom/.test(l))
            ? c
            : undefined;
        },
        20_000,
        'the crash to be shown',
      );
      expect(crashed.crash.reason).toMatch(/exited with code 1.*Error: boom at start/);
      expect(crashed.crash.lines.join('\n')).toContain('booting');
      expect(events.some((e) => e.status === 'crashed' && e.crash?.lines.length > 0)).toBe(true);
      // It keeps being restarted (never given up) while it crashes.
      const first = (await docker.getContainer(`vf-${projectId}`).inspect()).RestartCount;
      await eventually(
        async () => (await docker.getContainer(`vf-${projectId}`).inspect()).RestartCount > first,
        20_000,
        'another restart',
      );
      for (let i = 0; i < 4; i++) await t.services.containers.reconcile();
      expect(await t.services.projects.findById(projectId)).toMatchObject({ status: 'running' });

      const saved = Date.now();
      await save(projectId, 'app.js', devServerSource);
      const up = await eventually(
        async () => {
          const c = await container(projectId);
          return c.status === 'running' && c.health === 'healthy' ? c : undefined;
        },
        20_000,
        'the fixed server to run',
      );
      console.log(`save the fix → healthy: ${Date.now() - saved} ms`);
      expect((await rawRequest(up.ports['3000'], 'GET', '/whoami', {})).status).toBe(200);
      expect(up.crash).toBeNull();
    } finally {
      await off();
    }
  }, 120_000);
});
