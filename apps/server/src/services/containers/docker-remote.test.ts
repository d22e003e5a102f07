// The Kubernetes shape on one machine (infra/k8s): two servers sharing one database and one data
// dir (the ReadWriteMany volume), and a Docker engine they reach only over TLS with a client
// certificate, whose dev ports are published on every interface and reached at another address
// (VAPORFORM_DOCKER_PORTS_HOST: 127.0.0.2 stands for the engine pod), workspaces polled.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, listen, registerAndLogin, type TestApp } from '../../../test/app.ts';
import {
  copyImage,
  execIn,
  removeInstallation,
  startTestDockerd,
  stopTestDockerd,
  TEST_DOCKER_DIR,
  useTestDocker,
} from '../../../test/docker.ts';
import {
  createProject,
  eventually,
  openSocket,
  previewCookie,
  previewHost,
  rawRequest,
  writeDevServer,
  type Session,
} from '../../../test/docker-projects.ts';
import {
  ContainersStore,
  DEFAULT_RUNTIME_IMAGE,
  dockerAnswers,
  dockerClient,
  freePort,
} from './index.ts';

const engineDir = `${TEST_DOCKER_DIR}-remote`;
const repoRoot = path.resolve(import.meta.dirname, '../../../../..');
let certDir: string;
let engineHost: string;
let engine: Docker;
let a: TestApp;
let b: TestApp;
let serverB: { url: string; port: number; close(): Promise<void> };
let installationId: string | undefined;
let alice: Session;
let projectId: string;

beforeAll(async () => {
  const { docker: local } = await useTestDocker();
  certDir = mkdtempSync(path.join(tmpdir(), 'vf-engine-tls-'));
  execFileSync('bash', [path.join(repoRoot, 'infra/k8s/engine-certs.sh'), certDir, 'IP:127.0.0.1']);
  const port = await freePort();
  await startTestDockerd({
    dir: engineDir,
    addressPool: '172.25.0.0/16',
    iptables: false,
    tls: { port, certDir },
  });
  engineHost = `tcp://127.0.0.1:${port}`;
  engine = dockerClient(engineHost, { certPath: `${certDir}/client` });
  await copyImage(local, engine, DEFAULT_RUNTIME_IMAGE);
  const env = {
    VAPORFORM_RUNTIME: 'docker',
    DOCKER_HOST: engineHost,
    DOCKER_TLS_VERIFY: '1',
    DOCKER_CERT_PATH: `${certDir}/client`,
    VAPORFORM_DOCKER_PORTS_HOST: '127.0.0.2',
    VAPORFORM_WORKSPACE_WATCH: 'poll',
    VAPORFORM_RECONCILE_SECONDS: '0',
    VAPORFORM_STATS_SECONDS: '0',
  };
  a = await createTestApp(env);
  b = await createTestApp(env, { databaseUrl: a.databaseUrl, dataDir: a.config.dataDir });
  serverB = await listen(b);
  installationId = await new ContainersStore(a.services.db).installationId();
  alice = await registerAndLogin(a.app);
  projectId = await createProject(a, alice, 'On the remote engine');
  writeDevServer(a, projectId, '<h1>remote v1</h1>');
}, 900_000);

afterAll(async () => {
  await b?.close();
  await serverB?.close();
  await a?.close();
  if (engine && installationId) await removeInstallation(engine, installationId).catch(() => {});
  await stopTestDockerd(engineDir);
}, 120_000);

describe('a Docker engine on another machine (the Kubernetes shape)', () => {
  it('answers only a client that presents the certificate its CA signed', async () => {
    expect(await dockerAnswers(engine)).toBe(true);
    // Plain HTTP on the TLS port, and TLS with the CA but no client certificate: refused.
    expect(await dockerAnswers(dockerClient(engineHost))).toBe(false);
    const stranger = mkdtempSync(path.join(tmpdir(), 'vf-engine-other-'));
    execFileSync('bash', [
      path.join(repoRoot, 'infra/k8s/engine-certs.sh'),
      stranger,
      'IP:127.0.0.1',
    ]);
    // A client certificate from another CA: refused by the engine.
    const other = dockerClient(engineHost, { certPath: `${stranger}/client` });
    expect(await dockerAnswers(other)).toBe(false);
    // A missing certificate is a clear start-up error, not a silent plain connection.
    expect(() => dockerClient(engineHost, { certPath: `${stranger}/nowhere` })).toThrow(
      /DOCKER_TLS_VERIFY: cannot read .*nowhere\/ca\.pem/,
    );
  }, 60_000);

  it('runs a project started on one server, previewed and opened in a terminal on the other', async () => {
    const started = await call(a.app, 'POST', `/api/containers/${projectId}/start?wait=true`, {
      token: alice.token,
    });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    expect(started.body.container.health).toBe('healthy');
    // Published on every interface of the engine, reached at its address (not 127.0.0.1).
    const info = await engine.getContainer(`vf-${projectId}`).inspect();
    const bindings = Object.values(info.HostConfig.PortBindings ?? {}).flat() as {
      HostIp: string;
    }[];
    expect(bindings.map((x) => x.HostIp)).toEqual(['0.0.0.0']);
    const seen = await call(b.app, 'GET', `/api/containers/${projectId}`, { token: alice.token });
    expect(seen.body.container.serviceUrl).toMatch(/^http:\/\/127\.0\.0\.2:\d+$/);

    // The preview, through the other server.
    const cookie = await previewCookie(b, serverB.port, projectId, alice);
    const host = previewHost(projectId, serverB.port);
    const page = await rawRequest(serverB.port, 'GET', '/', { host, cookie });
    expect(page.status).toBe(200);
    expect(page.body).toBe('<h1>remote v1</h1>');

    // A terminal, through the other server: a real TTY in the container, over the engine's TLS.
    const term = await openSocket(
      `ws://127.0.0.1:${serverB.port}/api/projects/${projectId}/terminal?token=${alice.token}&cols=80&rows=24`,
      { origin: 'http://localhost:4000' },
    );
    term.ws.send('echo "remote=$((40+2))"; pwd\r');
    await term.waitFor(/remote=42/);
    await term.waitFor(/\/app/);
    term.ws.send('exit\r');
    expect((await term.closed).code).toBe(1000);
  }, 180_000);

  it('shows a save made on one server in the preview, and imports what the project writes on the engine', async () => {
    const saved = await call(b.app, 'PUT', `/api/projects/${projectId}/files/index.html`, {
      token: alice.token,
      body: { content: '<h1>remote v2</h1>' },
    });
    expect(saved.status, JSON.stringify(saved.body)).toBeLessThan(300);
    const cookie = await previewCookie(b, serverB.port, projectId, alice);
    const host = previewHost(projectId, serverB.port);
    await eventually(async () => {
      const page = await rawRequest(serverB.port, 'GET', '/', { host, cookie });
      return page.body === '<h1>remote v2</h1>';
    }, 20_000);

    // Written inside the container (on the engine's machine): the servers poll the workspace.
    await execIn(
      engine,
      `vf-${projectId}`,
      ['/bin/bash', '-c', 'echo "made in the container" > notes.txt'],
      {
        user: '1000:1000',
        workingDir: '/app',
      },
    );
    const file = await eventually(async () => {
      const res = await call(a.app, 'GET', `/api/projects/${projectId}/files/notes.txt`, {
        token: alice.token,
      });
      return res.status === 200 ? res.body : undefined;
    }, 20_000);
    expect(file.content).toBe('made in the container\n');
  }, 120_000);
});

describe('two servers, one engine', () => {
  it('both asked to start (restart, rebuild) one project at the same moment: both answer it running, one container', async () => {
    const id = await createProject(a, alice, 'Started twice');
    writeDevServer(a, id, '<h1>once</h1>');
    const answers = await Promise.all(
      [a, b].map((app) =>
        call(app.app, 'POST', `/api/containers/${id}/start?wait=true`, { token: alice.token }),
      ),
    );
    for (const res of answers) expect(res.status, JSON.stringify(res.body)).toBe(200);
    const containers = await engine.listContainers({
      all: true,
      filters: { name: [`vf-${id}`] },
    });
    expect(containers).toHaveLength(1);
    const shown = await eventually(async () => {
      const res = await call(b.app, 'GET', `/api/containers/${id}`, { token: alice.token });
      return res.body.container.health === 'healthy' ? res.body.container : undefined;
    }, 30_000);
    expect(shown.status).toBe('running');
    expect(shown.id).toBe(containers[0]!.Id);

    // Restarted, then rebuilt, on both at once (two people, or two reconcilers): both answer,
    // and the engine has one container, running (a rebuild's is a new one).
    for (const verb of ['restart', 'rebuild']) {
      const before = await engine.listContainers({ all: true, filters: { name: [`vf-${id}`] } });
      const answered = await Promise.all(
        [a, b].map((app) =>
          call(app.app, 'POST', `/api/containers/${id}/${verb}?wait=true`, {
            token: alice.token,
          }),
        ),
      );
      for (const res of answered) expect(res.status, JSON.stringify(res.body)).toBe(200);
      const after = await engine.listContainers({ all: true, filters: { name: [`vf-${id}`] } });
      expect(after, verb).toHaveLength(1);
      expect(after[0]!.State, verb).toBe('running');
      if (verb === 'rebuild') expect(after[0]!.Id).not.toBe(before[0]!.Id);
      await eventually(async () => {
        const res = await call(a.app, 'GET', `/api/containers/${id}`, { token: alice.token });
        return res.body.container.health === 'healthy' && res.body.container.id === after[0]!.Id;
      }, 30_000);
    }
  }, 120_000);
});
