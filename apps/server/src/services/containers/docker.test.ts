// Project containers on a real Docker engine (the test dockerd: test/docker.ts). Serial: one
// engine, two cores.
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, listen, registerAndLogin, type TestApp } from '../../../test/app.ts';
import {
  copyImage,
  execIn as execInContainer,
  removeInstallation,
  startTestDockerd,
  stopTestDockerd,
  TEST_DOCKER_DIR,
  useTestDocker,
} from '../../../test/docker.ts';
import {
  addMember,
  createProject,
  eventually,
  openSocket,
  previewCookie,
  previewHost,
  rawRequest,
  writeDevServer,
  type Session,
} from '../../../test/docker-projects.ts';
import { ContainersStore, DEFAULT_RUNTIME_IMAGE, dockerClient } from './index.ts';

let t: TestApp;
let docker: Docker;
let dockerHost: string;
let server: { url: string; port: number; close(): Promise<void> };
let installationId: string;
let alice: Session;
let bob: Session;
let carol: Session;
let events: { type: string; data: any }[] = [];

beforeAll(async () => {
  ({ docker, dockerHost } = await useTestDocker());
  t = await createTestApp({
    VAPORFORM_RUNTIME: 'docker',
    DOCKER_HOST: dockerHost,
    VAPORFORM_RECONCILE_SECONDS: '0',
    VAPORFORM_STATS_SECONDS: '0',
    VAPORFORM_PIDS_LIMIT: '64',
  });
  server = await listen(t);
  installationId = await new ContainersStore(t.services.db).installationId();
  [alice, bob, carol] = await Promise.all([
    registerAndLogin(t.app),
    registerAndLogin(t.app),
    registerAndLogin(t.app),
  ]);
}, 900_000);

afterAll(async () => {
  // Services first: they end the WebSockets (terminals, proxied HMR) the server would wait for.
  await t?.close();
  await server?.close();
  if (docker && installationId) await removeInstallation(docker, installationId);
}, 120_000);

async function start(projectId: string, session = alice): Promise<any> {
  const res = await call(t.app, 'POST', `/api/containers/${projectId}/start?wait=true`, {
    token: session.token,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.container;
}

async function containerOf(projectId: string) {
  return docker.getContainer(`vf-${projectId}`).inspect();
}

/** Runs a command in the container; returns its output and exit code. */
function execIn(containerId: string, cmd: string[], timeoutMs = 30_000) {
  return execInContainer(docker, containerId, cmd, { timeoutMs });
}

/** Asks from inside `containerId` whether host:port accepts a TCP connection. */
async function canConnect(containerId: string, host: string, port: number): Promise<string> {
  const script =
    `const s=require('net').connect({host:${JSON.stringify(host)},port:${port}});` +
    `s.setTimeout(2500);s.on('connect',()=>{console.log('CONNECTED');process.exit(0)});` +
    `s.on('timeout',()=>{console.log('FAILED timeout');process.exit(0)});` +
    `s.on('error',e=>{console.log('FAILED '+e.code);process.exit(0)});`;
  return (await execIn(containerId, ['node', '-e', script])).output.trim();
}

describe('docker runtime: lifecycle', () => {
  let projectId: string;
  let unsubscribe: () => Promise<void>;

  beforeAll(async () => {
    projectId = await createProject(t, alice, 'Lifecycle');
    writeDevServer(t, projectId);
    unsubscribe = await t.services.bus.subscribe(`project:${projectId}`, (m) =>
      events.push(m as never),
    );
  });
  afterAll(async () => unsubscribe?.());

  it('starts the project in a container, keeps the project columns true and announces it', async () => {
    events = [];
    const env = await call(t.app, 'PUT', `/api/projects/${projectId}/env`, {
      token: alice.token,
      body: { vars: { VF_TEST_VALUE: 'sealed-then-injected' } },
    });
    expect(env.status, JSON.stringify(env.body)).toBe(200);
    const container = await start(projectId);
    expect(container).toMatchObject({
      projectId,
      status: 'running',
      health: 'healthy',
      runtime: 'docker',
      pooled: false,
      previewUrl: `http://${projectId}.preview.localhost:4000/`,
    });
    const hostPort = container.ports['3000'];
    expect(hostPort).toBeGreaterThan(1000);
    expect(container.serviceUrl).toBe(`http://127.0.0.1:${hostPort}`);
    const project = await call(t.app, 'GET', `/api/projects/${projectId}`, { token: alice.token });
    expect(project.body.project).toMatchObject({
      status: 'running',
      health: 'healthy',
      containerId: container.id,
      serviceUrl: container.serviceUrl,
      previewUrl: container.previewUrl,
    });
    // The dev server answers on the published port, as the unprivileged user, in /app.
    const who = JSON.parse((await rawRequest(hostPort, 'GET', '/whoami', {})).body);
    expect(who).toMatchObject({ uid: 1000, cwd: '/app', env: 'sealed-then-injected' });
    const statuses = () => events.filter((e) => e.type === 'container_status').map((e) => e.data);
    await eventually(async () => statuses().some((d) => d.health === 'healthy'), 5_000);
    expect(statuses().map((d) => d.status)).toContain('starting');
    expect(statuses().at(-1)).toMatchObject({
      projectId,
      status: 'running',
      containerId: container.id,
    });

    const list = await call(t.app, 'GET', '/api/containers', { token: alice.token });
    expect(list.body.containers.map((c: any) => c.projectId)).toContain(projectId);
    const strangers = await call(t.app, 'GET', '/api/containers', { token: carol.token });
    expect(strangers.body.containers).toEqual([]);
  });

  it('stops, restarts the same container and rebuilds a new one on the same files', async () => {
    const first = (await call(t.app, 'GET', `/api/containers/${projectId}`, { token: alice.token }))
      .body.container;
    const stopped = await call(t.app, 'POST', `/api/containers/${projectId}/stop`, {
      token: alice.token,
    });
    expect(stopped.body.container).toMatchObject({ status: 'stopped', serviceUrl: null });
    expect((await containerOf(projectId)).State.Running).toBe(false);
    const project = await t.services.projects.findById(projectId);
    expect(project).toMatchObject({ status: 'stopped', health: 'unknown' });
    expect(project?.serviceUrl).toBeUndefined();

    const restarted = await start(projectId);
    expect(restarted.id).toBe(first.id);
    expect(restarted.health).toBe('healthy');

    writeFileSync(path.join(t.config.dataDir, 'workspaces', projectId, 'index.html'), 'kept');
    const rebuilt = await call(t.app, 'POST', `/api/containers/${projectId}/rebuild?wait=true`, {
      token: alice.token,
    });
    expect(rebuilt.status).toBe(200);
    expect(rebuilt.body.container.id).not.toBe(first.id);
    expect(rebuilt.body.container.health).toBe('healthy');
    const page = await rawRequest(rebuilt.body.container.ports['3000'], 'GET', '/', {});
    expect(page.body).toBe('kept');
    await expect(docker.getContainer(first.id).inspect()).rejects.toMatchObject({
      statusCode: 404,
    });
  }, 120_000);

  it('streams logs (snapshot and follow) to editors only', async () => {
    const snapshot = await call(t.app, 'GET', `/api/containers/${projectId}/logs?follow=false`, {
      token: alice.token,
    });
    expect(snapshot.status).toBe(200);
    expect(snapshot.headers.get('content-type')).toMatch(/text\/event-stream/);
    expect(snapshot.body).toMatch(/event: log\ndata: listening on 3000/);

    const res = await fetch(`${server.url}/api/containers/${projectId}/logs?tail=0`, {
      headers: { authorization: `Bearer ${alice.token}` },
    });
    const reader = res.body!.getReader();
    const port = (await t.services.containers.get(projectId)).ports['3000']!;
    await rawRequest(port, 'GET', '/followed-line', {});
    let text = '';
    const deadline = Date.now() + 10_000;
    while (!text.includes('request GET /followed-line') && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    await reader.cancel();
    expect(text).toContain('data: request GET /followed-line');

    await addMember(t, alice, projectId, bob, 'viewer');
    const viewer = await call(t.app, 'GET', `/api/containers/${projectId}/logs?follow=false`, {
      token: bob.token,
    });
    expect(viewer.status).toBe(403);
    const stranger = await call(t.app, 'GET', `/api/containers/${projectId}`, {
      token: carol.token,
    });
    expect(stranger.status).toBe(404);
    const viewerStart = await call(t.app, 'POST', `/api/containers/${projectId}/start`, {
      token: bob.token,
    });
    expect(viewerStart.status).toBe(403);
    expect(
      (await call(t.app, 'GET', `/api/containers/${projectId}`, { token: bob.token })).status,
    ).toBe(200);
  }, 60_000);

  it('samples CPU and memory into infrastructure_resources and the metric', async () => {
    expect(await t.services.containers.sampleStats()).toBeGreaterThanOrEqual(1);
    const container = (
      await call(t.app, 'GET', `/api/containers/${projectId}`, {
        token: alice.token,
      })
    ).body.container;
    expect(container.resources.memoryMb).toBeGreaterThan(1);
    expect(container.resources.sampledAt).not.toBeNull();
    const metrics = await call(t.app, 'GET', '/metrics');
    expect(metrics.body).toMatch(
      /vaporform_container_resource_usage_count\{resource="memory_gib"\} [1-9]/,
    );
  }, 30_000);
});

describe('docker runtime: hardening', () => {
  let a: string;
  let b: string;

  beforeAll(async () => {
    [a, b] = [
      await createProject(t, alice, 'Hardened A'),
      await createProject(t, alice, 'Hardened B'),
    ];
    writeDevServer(t, a);
    writeDevServer(t, b);
    await start(a);
    await start(b);
  }, 120_000);

  it('runs with limits, no capabilities, no-new-privileges, seccomp, a non-root user, /app and 127.0.0.1 ports', async () => {
    const info = await containerOf(a);
    const record = (await t.services.projects.findById(a))!;
    expect(info.HostConfig).toMatchObject({
      Memory: record.memoryLimitMb * 2 ** 20,
      MemorySwap: record.memoryLimitMb * 2 ** 20,
      NanoCpus: (record.cpuLimitPercent / 100) * 1e9,
      PidsLimit: 64,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges:true'],
      RestartPolicy: { Name: 'unless-stopped' },
      NetworkMode: `vf-${a}`,
    });
    expect(info.HostConfig.CapAdd ?? []).toEqual([]);
    expect(info.HostConfig.Privileged).toBe(false);
    expect(info.Config.User).toBe('1000:1000');
    expect(info.Mounts).toEqual([
      expect.objectContaining({
        Type: 'bind',
        Source: path.join(t.config.dataDir, 'workspaces', a),
        Destination: '/app',
        RW: true,
      }),
    ]);
    expect(info.HostConfig.PortBindings).toEqual({
      '3000/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }],
    });
    expect(info.NetworkSettings.Ports['3000/tcp']!.every((p) => p.HostIp === '127.0.0.1')).toBe(
      true,
    );
    expect(info.Config.Labels).toMatchObject({
      'vaporform.project': a,
      'vaporform.installation': installationId,
      [`traefik.http.routers.vf-${a}.rule`]: `Host(\`${a}.preview.localhost\`)`,
    });
    // From inside: seccomp filter on, no effective capabilities, no privilege gain, uid 1000.
    const status = (await execIn(info.Id, ['cat', '/proc/1/status'])).output;
    expect(status).toMatch(/^Seccomp:\s+2$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(status).toMatch(/^CapEff:\s+0+$/m);
    expect((await execIn(info.Id, ['id', '-u'])).output.trim()).toBe('1000');
  });

  it('has no route to another project’s container or to the host', async () => {
    const infoA = await containerOf(a);
    const infoB = await containerOf(b);
    const netA = infoA.NetworkSettings.Networks[`vf-${a}`]!;
    const netB = infoB.NetworkSettings.Networks[`vf-${b}`]!;
    expect(netA.IPAddress).not.toBe('');
    // Within B itself the dev server answers (so the probe works)…
    expect(await canConnect(infoB.Id, netB.IPAddress, 3000)).toBe('CONNECTED');
    // …but not from A.
    expect(await canConnect(infoA.Id, netB.IPAddress, 3000)).toMatch(/^FAILED/);
    // The host, through A's gateway: a port listening on all interfaces, and PostgreSQL's.
    const listener: Server = createServer((s) => {
      s.on('error', () => undefined);
      s.end('hello');
    }).listen(0, '0.0.0.0');
    await new Promise((r) => listener.once('listening', r));
    const port = (listener.address() as { port: number }).port;
    try {
      expect(await canConnect(infoA.Id, netA.Gateway, port)).toMatch(/^FAILED/);
      const pgPort = Number(new URL(t.databaseUrl).port);
      expect(await canConnect(infoA.Id, netA.Gateway, pgPort)).toMatch(/^FAILED/);
      // The published dev port of B on the host is not reachable either.
      const hostPortB = Number(infoB.NetworkSettings.Ports['3000/tcp']![0]!.HostPort);
      expect(await canConnect(infoA.Id, netA.Gateway, hostPortB)).toMatch(/^FAILED/);
    } finally {
      listener.close();
    }
  }, 60_000);

  it('contains a fork bomb: the pids limit holds and the API keeps answering', async () => {
    const id = (await containerOf(a)).Id;
    const bomb = execIn(id, ['/bin/sh', '-c', 'f() { f | f & }; f; sleep 3'], 15_000);
    await new Promise((r) => setTimeout(r, 1_500));
    const started = Date.now();
    const health = await call(t.app, 'GET', '/healthz');
    expect(health.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(2_000);
    const stats = (await docker.getContainer(id).stats({ stream: false })) as any;
    expect(stats.pids_stats.current).toBeLessThanOrEqual(64);
    await bomb;
    // A rebuild clears it; the project runs again.
    const rebuilt = await call(t.app, 'POST', `/api/containers/${a}/rebuild?wait=true`, {
      token: alice.token,
    });
    expect(rebuilt.body.container.health).toBe('healthy');
  }, 90_000);

  it('contains a memory hog: the kernel kills it at the project’s memory limit', async () => {
    // The project's memory column drives the container's limit.
    const { sql } = await import('kysely');
    await sql`UPDATE projects SET memory_limit_mb = 64 WHERE id = ${a}`.execute(t.services.db);
    const restarted = await start(a);
    const info = await containerOf(a);
    expect(info.Id).toBe(restarted.id);
    expect(info.HostConfig.Memory).toBe(64 * 2 ** 20);
    const hog = await execIn(info.Id, [
      'node',
      '-e',
      'const a=[];for(;;)a.push(Buffer.alloc(1<<20,1))',
    ]);
    expect(hog.exitCode).toBe(137);
    // The dev server survived, and the server is fine.
    expect((await rawRequest(restarted.ports['3000'], 'GET', '/', {})).status).toBe(200);
    expect((await call(t.app, 'GET', '/healthz')).status).toBe(200);
  }, 90_000);

  it('deletes the container and its network with the project', async () => {
    const res = await call(t.app, 'DELETE', `/api/projects/${b}`, { token: alice.token });
    expect(res.status).toBe(204);
    await expect(containerOf(b)).rejects.toMatchObject({ statusCode: 404 });
    await expect(docker.getNetwork(`vf-${b}`).inspect()).rejects.toMatchObject({ statusCode: 404 });
  }, 60_000);
});

describe('preview proxy', () => {
  let projectId: string;
  let other: string;

  beforeAll(async () => {
    projectId = await createProject(t, alice, 'Previewed');
    other = await createProject(t, carol, 'Carols own');
    writeDevServer(t, projectId, '<h1>preview v1</h1>');
    writeDevServer(t, other, '<h1>carol</h1>');
    await start(projectId);
    await start(other, carol);
    await addMember(t, alice, projectId, bob, 'viewer');
  }, 120_000);

  it('serves the dev server to a member on its own origin, with hot-reload WebSockets', async () => {
    const cookie = await previewCookie(t, server.port, projectId, bob);
    const host = previewHost(projectId, server.port);
    const page = await rawRequest(server.port, 'GET', '/', { host, cookie });
    expect(page.status).toBe(200);
    expect(page.body).toBe('<h1>preview v1</h1>');
    expect(page.headers['set-cookie']).toEqual(['app_session=kept; Path=/']);

    // Our cookie and the Authorization header never reach the dev server; the app's own do.
    const echoed = await rawRequest(server.port, 'GET', '/headers', {
      host,
      cookie: `${cookie}; app_session=kept; vf_other=x`,
      authorization: `Bearer ${bob.token}`,
    });
    const headers = JSON.parse(echoed.body);
    expect(headers.cookie).toBe('app_session=kept');
    expect(headers.authorization).toBeUndefined();
    expect(echoed.body).not.toContain(bob.token);
    expect(echoed.body).not.toContain(cookie.split('=')[1]);

    const hmr = await openSocket(`ws://127.0.0.1:${server.port}/__hmr`, { host, cookie });
    expect(await hmr.waitFor(/hmr:connected/)).toBe('hmr:connected');
    hmr.ws.terminate();
  }, 30_000);

  it('shows a saved file at once', async () => {
    const cookie = await previewCookie(t, server.port, projectId, alice);
    const host = previewHost(projectId, server.port);
    writeFileSync(
      path.join(t.config.dataDir, 'workspaces', projectId, 'index.html'),
      '<h1>preview v2</h1>',
    );
    const page = await rawRequest(server.port, 'GET', '/', { host, cookie });
    expect(page.body).toBe('<h1>preview v2</h1>');
  });

  it('refuses anonymous requests, strangers, other projects’ cookies and forged hosts', async () => {
    const host = previewHost(projectId, server.port);
    expect((await rawRequest(server.port, 'GET', '/', { host })).status).toBe(401);
    // Carol is a member of her own project only: her cookie is for her preview origin.
    const carolCookie = await previewCookie(t, server.port, other, carol);
    const forged = await rawRequest(server.port, 'GET', '/', { host, cookie: carolCookie });
    expect(forged.status).toBe(401);
    expect(forged.body).not.toContain('preview v');
    // She cannot get a token for Alice's project either.
    const token = await call(t.app, 'POST', `/api/projects/${projectId}/preview-token`, {
      token: carol.token,
    });
    expect(token.status).toBe(404);
    // A WebSocket without the cookie is refused too.
    await expect(openSocket(`ws://127.0.0.1:${server.port}/__hmr`, { host })).rejects.toMatchObject(
      {
        status: 401,
      },
    );
    // X-Forwarded-Host from an untrusted peer is ignored: the request stays with the API.
    const aliceCookie = await previewCookie(t, server.port, projectId, alice);
    const xfh = await rawRequest(server.port, 'GET', '/', {
      host: `127.0.0.1:${server.port}`,
      'x-forwarded-host': host,
      cookie: aliceCookie,
    });
    expect(xfh.body).not.toContain('preview v');
    // Look-alike hosts are not previews of anything.
    for (const bad of [`${projectId}.preview.evil.test`, `x.preview.localhost:${server.port}`]) {
      const res = await rawRequest(server.port, 'GET', '/', { host: bad, cookie: aliceCookie });
      expect(res.body).not.toContain('preview v');
    }
    // A token works once.
    const issued = await call(t.app, 'POST', `/api/projects/${projectId}/preview-token`, {
      token: alice.token,
    });
    const url = new URL(issued.body.url);
    const first = await rawRequest(server.port, 'GET', url.pathname + url.search, { host });
    expect(first.status).toBe(302);
    const again = await rawRequest(server.port, 'GET', url.pathname + url.search, { host });
    expect(again.status).toBe(401);
  }, 30_000);

  it('stops serving a member who is removed', async () => {
    const cookie = await previewCookie(t, server.port, projectId, bob);
    const host = previewHost(projectId, server.port);
    const removed = await call(
      t.app,
      'DELETE',
      `/api/projects/${projectId}/members/${bob.user.id}`,
      {
        token: alice.token,
      },
    );
    expect(removed.status).toBe(204);
    await eventually(
      async () => (await rawRequest(server.port, 'GET', '/', { host, cookie })).status === 404,
      10_000,
      'the removed member to be refused',
    );
  }, 20_000);
});

describe('terminal', () => {
  let projectId: string;

  beforeAll(async () => {
    projectId = await createProject(t, alice, 'Terminal');
    writeDevServer(t, projectId);
    await start(projectId);
    await addMember(t, alice, projectId, bob, 'viewer');
  }, 120_000);

  const url = (token: string) =>
    `ws://127.0.0.1:${server.port}/api/projects/${projectId}/terminal?token=${token}&cols=80&rows=24`;
  const origin = { origin: 'http://localhost:4000' };

  it('gives an editor a real TTY in the container: echo and resize', async () => {
    const term = await openSocket(url(alice.token), origin);
    term.ws.send('echo "sum=$((40+2))"; id -u; pwd\r');
    await term.waitFor(/sum=42/);
    await term.waitFor(/\r?\n1000\r?\n/);
    await term.waitFor(/\/app/);
    term.ws.send(JSON.stringify({ type: 'resize', cols: 132, rows: 40 }));
    await new Promise((r) => setTimeout(r, 200));
    term.ws.send('stty size\r');
    await term.waitFor(/40 132/);
    term.ws.send('exit\r');
    expect((await term.closed).code).toBe(1000);
  }, 30_000);

  it('refuses viewers, strangers, foreign origins and anonymous callers', async () => {
    await expect(openSocket(url(bob.token), origin)).rejects.toMatchObject({ status: 403 });
    await expect(openSocket(url(carol.token), origin)).rejects.toMatchObject({ status: 404 });
    await expect(openSocket(url('nope'), origin)).rejects.toMatchObject({ status: 401 });
    await expect(
      openSocket(url(alice.token), { origin: 'http://evil.test' }),
    ).rejects.toMatchObject({ status: 403 });
    // A plain GET is documented and refused.
    const plain = await call(t.app, 'GET', `/api/projects/${projectId}/terminal`, {
      token: alice.token,
    });
    expect(plain.status).toBe(400);
  });

  it('closes when the session is revoked', async () => {
    const login = await call(t.app, 'POST', '/api/auth/login', {
      body: { email: alice.user.email, password: alice.password },
    });
    const session = login.body as { token: string };
    const term = await openSocket(url(session.token), origin);
    term.ws.send('echo ready\r');
    await term.waitFor(/ready/);
    const logout = await call(t.app, 'POST', '/api/auth/logout', {
      token: session.token,
      body: {},
    });
    expect(logout.status).toBe(204);
    expect((await term.closed).code).toBe(4401);
  }, 30_000);
});

describe('warm pool', () => {
  let pooled: TestApp;
  let pooledInstallation: string;

  afterAll(async () => {
    const runtime = pooled?.services.containers.runtime as import('./index.ts').DockerRuntime;
    await runtime?.drainPool();
    if (pooledInstallation) await removeInstallation(docker, pooledInstallation);
    await pooled?.close();
  }, 60_000);

  it('hands a ready container to a project in well under a second, with its files mounted', async () => {
    pooled = await createTestApp({
      VAPORFORM_RUNTIME: 'docker',
      DOCKER_HOST: dockerHost,
      VAPORFORM_RECONCILE_SECONDS: '0',
      VAPORFORM_STATS_SECONDS: '0',
      VAPORFORM_WARM_POOL_SIZE: '1',
    });
    pooledInstallation = await new ContainersStore(pooled.services.db).installationId();
    const runtime = pooled.services.containers.runtime as import('./index.ts').DockerRuntime;
    expect(await runtime.poolReady()).toBe(1);
    const owner = await registerAndLogin(pooled.app);
    const projectId = await createProject(pooled, owner, 'Warm');
    writeDevServer(pooled, projectId, '<h1>warm</h1>');
    const started = performance.now();
    const res = await call(pooled.app, 'POST', `/api/containers/${projectId}/start`, {
      token: owner.token,
    });
    const ms = performance.now() - started;
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.container.pooled).toBe(true);
    expect(ms).toBeLessThan(1_000);
    const port = res.body.container.ports['3000'];
    const page = await eventually(async () => {
      const r = await rawRequest(port, 'GET', '/', {}).catch(() => undefined);
      return r?.status === 200 ? r : undefined;
    }, 10_000);
    expect(page.body).toBe('<h1>warm</h1>');
    // Limits follow the project; the container runs as the unprivileged user in /app.
    const info = await containerOf(projectId);
    expect(info.HostConfig.PidsLimit).toBe(512);
    expect(info.HostConfig.CapDrop).toEqual(['ALL']);
    const who = JSON.parse((await rawRequest(port, 'GET', '/whoami', {})).body);
    expect(who).toMatchObject({ uid: 1000, cwd: '/app' });
    // Deleting the project removes it and its mount; the pool refills.
    expect(
      (await call(pooled.app, 'DELETE', `/api/projects/${projectId}`, { token: owner.token }))
        .status,
    ).toBe(204);
    await expect(containerOf(projectId)).rejects.toMatchObject({ statusCode: 404 });
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(
      path.join(pooled.config.dataDir, 'workspaces', projectId),
    );
    expect(await runtime.poolReady()).toBe(1);
  }, 300_000);
});

describe('reconciler', () => {
  let projectId: string;

  beforeAll(async () => {
    projectId = await createProject(t, alice, 'Reconciled');
    writeDevServer(t, projectId, '<h1>back</h1>');
    await start(projectId);
  }, 120_000);

  it('brings back a container removed behind its back', async () => {
    const before = await containerOf(projectId);
    await docker.getContainer(before.Id).remove({ force: true });
    const report = await t.services.containers.reconcile();
    expect(report.restarted).toContain(projectId);
    const after = await containerOf(projectId);
    expect(after.Id).not.toBe(before.Id);
    const project = await t.services.projects.findById(projectId);
    expect(project).toMatchObject({ status: 'running', containerId: after.Id });
    // Back means answering (which also ends the reconciler's restart back-off for it).
    await eventually(async () => (await t.services.containers.get(projectId)).health === 'healthy');
  }, 60_000);

  it('stops a container whose project is stopped and removes containers of deleted projects', async () => {
    const { sql } = await import('kysely');
    await sql`UPDATE projects SET status = 'stopped' WHERE id = ${projectId}`.execute(
      t.services.db,
    );
    const report = await t.services.containers.reconcile();
    expect(report.stopped).toContain(projectId);
    expect((await containerOf(projectId)).State.Running).toBe(false);
    await sql`UPDATE projects SET status = 'running' WHERE id = ${projectId}`.execute(
      t.services.db,
    );
    await t.services.containers.reconcile();
    await eventually(async () => (await t.services.containers.get(projectId)).health === 'healthy');
  }, 60_000);

  it('puts state right after the engine restarts', async () => {
    // An engine of its own: restarting the shared one would pull the floor from under other
    // test files running at the same time.
    const dir = `${TEST_DOCKER_DIR}-restart`;
    const host = await startTestDockerd({ dir, addressPool: '172.24.0.0/16', iptables: false });
    const engine = dockerClient(host);
    const app = await createTestApp({
      VAPORFORM_RUNTIME: 'docker',
      DOCKER_HOST: host,
      VAPORFORM_RECONCILE_SECONDS: '0',
      VAPORFORM_STATS_SECONDS: '0',
    });
    try {
      await copyImage(docker, engine, DEFAULT_RUNTIME_IMAGE);
      const owner = await registerAndLogin(app.app);
      const id = await createProject(app, owner, 'Survives restarts');
      writeDevServer(app, id, '<h1>back</h1>');
      const started = await call(app.app, 'POST', `/api/containers/${id}/start?wait=true`, {
        token: owner.token,
      });
      expect(started.status, JSON.stringify(started.body)).toBe(200);
      expect(started.body.container.health).toBe('healthy');
      await stopTestDockerd(dir);
      await startTestDockerd({ dir, addressPool: '172.24.0.0/16', iptables: false });
      // The engine restarts the container (unless-stopped) on a new port: the database is stale.
      await eventually(
        async () => (await engine.getContainer(`vf-${id}`).inspect()).State.Running,
        60_000,
      );
      await app.services.containers.reconcile();
      const project = await eventually(async () => {
        const p = await app.services.projects.findById(id);
        return p?.health === 'healthy' ? p : undefined;
      }, 30_000);
      const port = Number(project.serviceUrl!.split(':').at(-1));
      expect(port).toBe((await app.services.containers.get(id)).ports['3000']);
      expect((await rawRequest(port, 'GET', '/', {})).body).toBe('<h1>back</h1>');
    } finally {
      const installation = await new ContainersStore(app.services.db).installationId();
      await removeInstallation(engine, installation).catch(() => undefined);
      await app.close();
      await stopTestDockerd(dir);
    }
  }, 240_000);
});

describe('images', () => {
  it('says clearly when a template’s image is missing', async () => {
    const odd = await createTestApp({
      VAPORFORM_RUNTIME: 'docker',
      DOCKER_HOST: dockerHost,
      VAPORFORM_RECONCILE_SECONDS: '0',
      VAPORFORM_STATS_SECONDS: '0',
      VAPORFORM_RUNTIME_IMAGES: 'python=vaporform/not-here:1',
    });
    try {
      const owner = await registerAndLogin(odd.app);
      const created = await call(odd.app, 'POST', '/api/projects', {
        token: owner.token,
        body: { name: 'Py', templateId: 'python-fastapi' },
      });
      const res = await call(odd.app, 'POST', `/api/containers/${created.body.project.id}/start`, {
        token: owner.token,
      });
      expect(res.status).toBe(503);
      expect(res.body.error.message).toContain('vaporform/not-here:1');
      expect(res.body.error.message).toMatch(/VAPORFORM_RUNTIME_IMAGES/);
      const project = await odd.services.projects.findById(created.body.project.id);
      expect(project).toMatchObject({ status: 'error' });
      expect(project?.statusReason).toContain('vaporform/not-here:1');
    } finally {
      await odd.close();
    }
  }, 120_000);
});
