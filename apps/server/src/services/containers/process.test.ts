// The same lifecycle on the process runtime (no Docker engine): what `npm start` uses on a
// machine without Docker. Sandboxed with bubblewrap when it is installed.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, listen, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { createLogger } from '../../common/logger.ts';
import {
  addMember,
  createProject,
  devServerSource,
  eventually,
  openSocket,
  previewCookie,
  previewHost,
  rawRequest,
  writeDevServer,
  type Session,
} from '../../../test/docker-projects.ts';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { findBwrap, ProcessRuntime, type RuntimeSpec } from './index.ts';
import { egressForbidden } from './process-egress.ts';

/** A runtime spec for the test dev server in `workspace`. */
function fallbackSpec(workspace: string): RuntimeSpec {
  return {
    projectId: 'fallback',
    image: 'process',
    workspace,
    port: 3000,
    install: null,
    dev: 'node server.js',
    env: {},
    memoryMb: 256,
    cpuPercent: 100,
    pidsLimit: 64,
  };
}

/** The test dev server plus `/probe?host=&port=`: what the project's code reaches over TCP. */
const probingServerSource = (() => {
  const marker = "  if (req.url === '/headers') {";
  if (!devServerSource.includes(marker)) throw new Error('devServerSource changed: update probe');
  return (
    "import net from 'node:net';\nimport http from 'node:http';\n" +
    devServerSource.replace(
      marker,
      `  if (req.url.startsWith('/probe?')) {
    const q = new URL(req.url, 'http://probe').searchParams;
    const s = net.connect({ host: q.get('host'), port: Number(q.get('port')) });
    let answered = false;
    const done = (r) => { if (answered) return; answered = true; s.destroy(); res.end(r); };
    s.once('connect', () => done('open'));
    s.once('error', (e) => done(e.code ?? 'error'));
    s.setTimeout(3000, () => done('timeout'));
    return;
  }
  if (req.url.startsWith('/egress?')) {
    // Through the egress proxy the sandbox is given (HTTPS_PROXY): CONNECT, then one GET.
    const target = new URL(req.url, 'http://probe').searchParams.get('target');
    const proxy = new URL(process.env.HTTPS_PROXY ?? 'http://127.0.0.1:1');
    const r = http.request({ host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: target });
    r.on('connect', (answer, socket) => {
      if (answer.statusCode !== 200) { socket.destroy(); res.end('status ' + answer.statusCode); return; }
      let data = '';
      socket.on('data', (d) => (data += d));
      socket.on('end', () => res.end(data));
      socket.on('error', (e) => res.end('error ' + e.code));
      socket.write('GET / HTTP/1.0\\r\\nHost: egress\\r\\n\\r\\n');
    });
    r.on('error', (e) => res.end('error ' + e.code));
    r.end();
    return;
  }
${marker}`,
    )
  );
})();

let t: TestApp;
let server: { url: string; port: number; close(): Promise<void> };
let alice: Session;
let bob: Session;
let carol: Session;
let projectId: string;

beforeAll(async () => {
  t = await createTestApp({
    VAPORFORM_RUNTIME: 'process',
    VAPORFORM_RECONCILE_SECONDS: '0',
    VAPORFORM_STATS_SECONDS: '0',
  });
  server = await listen(t);
  [alice, bob, carol] = await Promise.all([
    registerAndLogin(t.app),
    registerAndLogin(t.app),
    registerAndLogin(t.app),
  ]);
  projectId = await createProject(t, alice, 'Local');
  writeDevServer(t, projectId, '<h1>local v1</h1>');
  await addMember(t, alice, projectId, bob, 'viewer');
});

afterAll(async () => {
  // Services first: they end the WebSockets (terminals, proxied HMR) the server would wait for.
  await t?.close();
  await server?.close();
});

describe('process runtime', () => {
  it('is the runtime in use, sandboxed when bubblewrap is installed', () => {
    const runtime = t.services.containers.runtime as ProcessRuntime;
    expect(runtime.kind).toBe('process');
    expect(runtime.sandboxed).toBe(findBwrap() !== undefined);
    if (process.env.CI === 'true') expect(runtime.sandboxed).toBe(true);
  });

  it('starts the project as a local process, with health and the project columns', async () => {
    // The project's environment (secrets service) reaches the dev server.
    const env = await call(t.app, 'PUT', `/api/projects/${projectId}/env`, {
      token: alice.token,
      body: { vars: { VF_TEST_VALUE: 'from-the-env-route' } },
    });
    expect(env.status, JSON.stringify(env.body)).toBe(200);
    const res = await call(t.app, 'POST', `/api/containers/${projectId}/start?wait=true`, {
      token: alice.token,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const container = res.body.container;
    expect(container).toMatchObject({ status: 'running', health: 'healthy', runtime: 'process' });
    expect(container.id).toMatch(/^process-\d+$/);
    const port = Object.values(container.ports)[0] as number;
    expect(container.serviceUrl).toBe(`http://127.0.0.1:${port}`);
    const who = JSON.parse((await rawRequest(port, 'GET', '/whoami', {})).body);
    expect(who.env).toBe('from-the-env-route');
    // In the sandbox the workspace is /app, as in a container.
    if ((t.services.containers.runtime as ProcessRuntime).sandboxed) expect(who.cwd).toBe('/app');
    expect((await t.services.projects.findById(projectId))?.status).toBe('running');
  }, 30_000);

  it('serves the preview to members (saved files at once, hot-reload socket) and refuses others', async () => {
    const cookie = await previewCookie(t, server.port, projectId, bob);
    const host = previewHost(projectId, server.port);
    expect((await rawRequest(server.port, 'GET', '/', { host, cookie })).body).toBe(
      '<h1>local v1</h1>',
    );
    writeFileSync(
      path.join(t.config.dataDir, 'workspaces', projectId, 'index.html'),
      '<h1>local v2</h1>',
    );
    expect((await rawRequest(server.port, 'GET', '/', { host, cookie })).body).toBe(
      '<h1>local v2</h1>',
    );
    const hmr = await openSocket(`ws://127.0.0.1:${server.port}/_hmr`, { host, cookie });
    await hmr.waitFor(/hmr:connected/);
    hmr.ws.terminate();
    expect((await rawRequest(server.port, 'GET', '/', { host })).status).toBe(401);
    const token = await call(t.app, 'POST', `/api/projects/${projectId}/preview-token`, {
      token: carol.token,
    });
    expect(token.status).toBe(404);
  }, 30_000);

  it('keeps project code off the host network: no API, database or other dev server; its own preview works', async () => {
    // Another person's project whose code probes the host's ports.
    const attacker = await createProject(t, carol, 'Prober');
    const dir = writeDevServer(t, attacker, '<h1>prober</h1>');
    writeFileSync(path.join(dir, 'server.js'), probingServerSource);
    const started = await call(t.app, 'POST', `/api/containers/${attacker}/start?wait=true`, {
      token: carol.token,
    });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    const hostPort = Object.values(started.body.container.ports)[0] as number;
    const victim = await t.services.containers.get(projectId);
    const victimPort = Object.values(victim.ports)[0] as number;
    const probe = async (host: string, port: number) =>
      (await rawRequest(hostPort, 'GET', `/probe?host=${host}&port=${port}`, {})).body;

    // The probe works: the dev server reaches itself on its own port.
    const ownPort = Number(Object.keys(started.body.container.ports)[0]);
    expect(await probe('127.0.0.1', ownPort)).toBe('open');
    const targets = {
      api: server.port,
      database: Number(new URL(t.databaseUrl).port || 5432),
      otherProject: victimPort,
    };
    for (const [what, port] of Object.entries(targets)) {
      for (const host of ['127.0.0.1', '::1', 'localhost']) {
        expect(`${what} via ${host}: ${await probe(host, port)}`).not.toMatch(/: open$/);
      }
    }
    // Nor through the egress proxy it is given for package registries.
    const hostAddresses = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a && !a.internal && a.family === 'IPv4')
      .map((a) => a!.address);
    for (const target of [
      `127.0.0.1:${server.port}`,
      `localhost:${targets.database}`,
      `[::1]:${server.port}`,
      `[::ffff:127.0.0.1]:${server.port}`,
      `169.254.169.254:80`,
      ...hostAddresses.map((a) => `${a}:${server.port}`),
    ]) {
      const answer = (await rawRequest(hostPort, 'GET', `/egress?target=${target}`, {})).body;
      expect(`${target}: ${answer}`).toBe(`${target}: status 403`);
    }
    // Its own preview still works for its members: HTTP and a WebSocket (HMR).
    const cookie = await previewCookie(t, server.port, attacker, carol);
    const host = previewHost(attacker, server.port);
    expect((await rawRequest(server.port, 'GET', '/', { host, cookie })).body).toBe(
      '<h1>prober</h1>',
    );
    const hmr = await openSocket(`ws://127.0.0.1:${server.port}/_hmr`, { host, cookie });
    await hmr.waitFor(/hmr:connected/);
    hmr.ws.terminate();
    await call(t.app, 'DELETE', `/api/projects/${attacker}`, { token: carol.token });
  }, 60_000);

  it('gives editors a terminal (node-pty) in the workspace: echo and resize', async () => {
    const url = `ws://127.0.0.1:${server.port}/api/projects/${projectId}/terminal?token=${alice.token}`;
    const term = await openSocket(url, { origin: 'http://localhost:4000' });
    term.ws.send('echo "sum=$((40+2))"; ls\r');
    await term.waitFor(/sum=42/);
    await term.waitFor(/index\.html/);
    // The project's environment, as the dev server has it.
    term.ws.send('echo "env=$VF_TEST_VALUE"\r');
    await term.waitFor(/env=from-the-env-route/);
    // Same sandbox as the dev server: it answers on $PORT; the server's API does not.
    const script =
      `const n=require('net');const t=(w,p)=>n.connect(p,'127.0.0.1')` +
      `.on('connect',function(){console.log(w+'='+'open');this.destroy()})` +
      `.on('error',e=>console.log(w+'='+e.code));t('own',process.env.PORT);t('api',${server.port})`;
    term.ws.send(`node -e "${script}"\r`);
    expect(await term.waitFor(/own=\w+/)).toBe('own=open');
    expect(await term.waitFor(/api=\w+/)).not.toBe('api=open');
    term.ws.send(JSON.stringify({ type: 'resize', cols: 101, rows: 33 }));
    await new Promise((r) => setTimeout(r, 200));
    term.ws.send('stty size\r');
    await term.waitFor(/33 101/);
    term.ws.send('exit\r');
    expect((await term.closed).code).toBe(1000);
    const viewer = `ws://127.0.0.1:${server.port}/api/projects/${projectId}/terminal?token=${bob.token}`;
    await expect(openSocket(viewer, { origin: 'http://localhost:4000' })).rejects.toMatchObject({
      status: 403,
    });
  }, 30_000);

  it('lets sandboxed code out through the egress proxy (package registries) where the policy allows', async () => {
    // The policy: public addresses yes; this host, loopback, link-local (metadata) no.
    for (const address of ['203.0.113.80', '2001:db8::1', '8.8.8.8']) {
      expect(egressForbidden(address), address).toBe(false);
    }
    const own = Object.values(networkInterfaces())
      .flat()
      .map((a) => a!.address);
    for (const address of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1', '0.0.0.0']) {
      expect(egressForbidden(address), address).toBe(true);
    }
    for (const address of ['169.254.169.254', 'fe80::1', '224.0.0.1', 'not-an-ip', ...own]) {
      expect(egressForbidden(address), address).toBe(true);
    }

    const outside = createServer((_req, res) => res.end('egress-ok'));
    await new Promise<void>((resolve) => outside.listen(0, '127.0.0.1', resolve));
    const outsidePort = (outside.address() as AddressInfo).port;
    const log = createLogger('silent');
    // Loopback stands in for the internet here: the real policy refuses it (test above).
    const runtime = new ProcessRuntime({ log, bwrap: findBwrap(), egressAllow: () => true });
    await runtime.init();
    const workspace = path.join(t.config.dataDir, 'egress');
    mkdirSync(workspace, { recursive: true });
    writeFileSync(path.join(workspace, 'server.js'), probingServerSource);
    writeFileSync(path.join(workspace, 'package.json'), '{"type":"module"}');
    try {
      const instance = await runtime.start(
        { ...fallbackSpec(workspace), projectId: 'egress' },
        { fresh: true },
      );
      const body = await eventually(async () => {
        const answer = await rawRequest(
          instance.hostPort!,
          'GET',
          `/egress?target=127.0.0.1:${outsidePort}`,
          {},
        );
        return answer.body;
      }, 10_000);
      expect(body).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*egress-ok$/);
    } finally {
      await runtime.close();
      outside.close();
    }
  }, 30_000);

  it('where no network namespace can be made, refuses to run projects for a second account and says so', async () => {
    const logged: string[] = [];
    const log = createLogger('info', { write: (line: string) => void logged.push(line) });
    let accounts = 2;
    const runtime = new ProcessRuntime({ log, bwrap: undefined, accounts: async () => accounts });
    await runtime.init();
    expect(runtime.support).toMatchObject({ ownNetwork: false });
    expect(logged.join('')).toMatch(/"level":50.*NO NETWORK ISOLATION/);
    const workspace = path.join(t.config.dataDir, 'fallback');
    mkdirSync(workspace, { recursive: true });
    writeFileSync(path.join(workspace, 'server.js'), devServerSource);
    writeFileSync(path.join(workspace, 'package.json'), '{"type":"module"}');
    const spec = fallbackSpec(workspace);
    // The message is what the IDE shows as the container's reason (status `error`).
    await expect(runtime.start(spec, { fresh: true })).rejects.toMatchObject({
      code: 'unavailable',
      message: expect.stringMatching(/cannot isolate .*bubblewrap.*2 accounts/),
    });
    accounts = 1;
    const single = await runtime.start(spec, { fresh: true });
    expect(single.state).toBe('running');
    await runtime.remove('fallback');
    await runtime.close();
  }, 30_000);

  it('streams logs, restarts after a crash through the reconciler, stops and deletes', async () => {
    const logs = await call(t.app, 'GET', `/api/containers/${projectId}/logs?follow=false`, {
      token: alice.token,
    });
    expect(logs.body).toMatch(/data: listening on \d+/);

    const before = await t.services.containers.get(projectId);
    process.kill(Number(before.id.replace('process-', '')), 'SIGKILL');
    await eventually(
      async () => (await t.services.containers.get(projectId)).status !== 'running',
      5_000,
    );
    // Brought back by the reconciler (which skips a project while a restart is already under
    // way for it): a new process that answers, whoever started it.
    const after = await eventually(async () => {
      await t.services.containers.reconcile();
      const info = await t.services.containers.get(projectId);
      return info.health === 'healthy' && info.id !== before.id ? info : undefined;
    }, 20_000);
    expect(after.id).not.toBe(before.id);
    expect(after.status).toBe('running');

    const stopped = await call(t.app, 'POST', `/api/containers/${projectId}/stop`, {
      token: alice.token,
    });
    expect(stopped.body.container.status).toBe('stopped');
    const port = Object.values(after.ports)[0] as number;
    await expect(rawRequest(port, 'GET', '/', {})).rejects.toThrow();

    await call(t.app, 'POST', `/api/containers/${projectId}/start?wait=true`, {
      token: alice.token,
    });
    const deleted = await call(t.app, 'DELETE', `/api/projects/${projectId}`, {
      token: alice.token,
    });
    expect(deleted.status).toBe(204);
    expect(await t.services.containers.runtime.inspect(projectId)).toBeUndefined();
  }, 60_000);
});
