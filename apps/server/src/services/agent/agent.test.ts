/**
 * The machine agent against real machines: three `local` machines (containers from the real
 * terraform CLI and our provider) each running the real bundled agent, which enrolls with its
 * one-use token through the local gateway socket. One apply, reused by every test here.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import type Docker from 'dockerode';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, listen, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { removeDeployment, useTestDocker } from '../../../test/docker.ts';
import { startRedis, type TestRedis } from '../../../test/redis.ts';

type Session = Awaited<ReturnType<typeof registerAndLogin>>;

let t: TestApp;
/** A second instance: same database and Redis, no agent connected to it. */
let t2: TestApp | undefined;
let redis: TestRedis;
let env: Record<string, string>;
let docker: Docker;
let admin: Session;
let editor: Session;
let projectId: string;
let deploymentId: string;
let machines: string[] = [];
let readyAt = 0;
let onlineAt = 0;
let deployMs = 0;

beforeAll(async () => {
  execFileSync('terraform', ['version']);
  const engine = await useTestDocker();
  docker = engine.docker;
  redis = await startRedis();
  // One deployment of several instances: the same keys, the same Redis.
  env = {
    DOCKER_HOST: engine.dockerHost,
    VAPORFORM_RUNTIME: 'process',
    REDIS_URL: redis.url,
    JWT_SECRET: randomBytes(32).toString('hex'),
    VAPORFORM_MASTER_KEY: randomBytes(32).toString('hex'),
  };
  t = await createTestApp(env);
  [admin, editor] = await Promise.all([registerAndLogin(t.app), registerAndLogin(t.app)]);
  const created = await call(t.app, 'POST', '/api/projects', {
    token: admin.token,
    body: { name: 'Agents', templateId: 'node-http' },
  });
  expect(created.status).toBe(201);
  projectId = created.body.project.id;
  const added = await call(t.app, 'POST', `/api/projects/${projectId}/members`, {
    token: admin.token,
    body: { email: editor.user.email, role: 'editor' },
  });
  expect(added.status).toBe(201);
  const provisioned = await call(t.app, 'POST', '/api/provision', {
    token: admin.token,
    body: { projectId, provider: 'local', machines: 3 },
  });
  expect(provisioned.status).toBe(202);
  deploymentId = provisioned.body.deployment.id;
  const ready = await waitForDeployment((d) => d.status === 'ready', 300_000);
  readyAt = Date.now();
  machines = ready.machines.map((m: { name: string }) => m.name);
  expect(machines).toHaveLength(3);
  await waitForDeployment((d) => d.machines.every((m: any) => m.agent === 'online'), 60_000);
  onlineAt = Date.now();
}, 420_000);

afterAll(async () => {
  if (deploymentId) await removeDeployment(docker, deploymentId);
  await t2?.close();
  await t?.close();
  await redis?.stop();
}, 120_000);

async function waitForDeployment(
  until: (deployment: any) => boolean,
  timeoutMs: number,
): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await call(t.app, 'GET', `/api/infrastructure/${deploymentId}`, {
      token: admin.token,
    });
    expect(res.status).toBe(200);
    const { deployment } = res.body;
    if (until(deployment)) return deployment;
    if (deployment.status === 'failed') {
      throw new Error(`deployment failed: ${JSON.stringify(deployment.lastRun)}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out; deployment: ${JSON.stringify(deployment.machines)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

function command(body: Record<string, unknown>, token = admin.token) {
  return call(t.app, 'POST', `/api/infrastructure/${deploymentId}/command`, { token, body });
}

/** Opens the agent socket on the local gateway with a bearer; resolves with the outcome. */
function dialGateway(bearer: string): Promise<{ status: number; welcome?: any }> {
  const socket = path.join(t.services.agent.gatewayDir, 'agent.sock');
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws+unix://${socket}:/api/agent`, {
      headers: { authorization: `Bearer ${bearer}` },
    });
    ws.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.on('message', (data) => {
      resolve({ status: 101, welcome: JSON.parse(String(data)) });
      ws.close();
    });
    ws.on('error', () => resolve({ status: 0 }));
  });
}

describe('machine agent (real local machines, real bundled agent)', () => {
  it('the agents of a fresh apply enroll and are online within seconds', () => {
    expect(onlineAt - readyAt).toBeLessThan(30_000);
    // The credential is kept 0600 on the machine; the enrollment token file is gone.
  });

  it('keeps its credential 0600 and the server only its hash', async () => {
    const out = await command({
      command: 'stat -c %a "$HOME/.vaporform/credential"; ls "$HOME/.vaporform"',
      machines: [machines[0]],
    });
    expect(out.status).toBe(200);
    expect(out.body.results[0].status).toBe('succeeded');
    expect(out.body.results[0].stdout.split('\n')[0]).toBe('600');
    expect(out.body.results[0].stdout).not.toContain('enrollment-token');
    const stored = await t.services.pool.query('SELECT credential_hash FROM agent_machines');
    expect(stored.rows).toHaveLength(3);
    for (const row of stored.rows) expect(row.credential_hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('runs a command on 3 machines: 3 results, each from its own machine', async () => {
    const out = await command({ command: 'echo "$VAPORFORM_MACHINE"; echo oops >&2' });
    expect(out.status).toBe(200);
    expect(out.body.results).toHaveLength(3);
    for (const [i, r] of out.body.results.entries()) {
      expect(r).toMatchObject({
        machine: machines[i],
        status: 'succeeded',
        exitCode: 0,
        stdout: `${machines[i]}\n`,
        stderr: 'oops\n',
        truncated: false,
      });
      expect(r.durationMs).toBeGreaterThanOrEqual(0);
    }
  });

  it('a command sent to another instance reaches agents connected to this one (Redis)', async () => {
    t2 = await createTestApp(env, { databaseUrl: t.databaseUrl });
    for (const m of machines) expect(t2.services.agent.online(deploymentId, m)).toBe(false);
    const view = await call(t2.app, 'GET', `/api/infrastructure/${deploymentId}`, {
      token: admin.token,
    });
    expect(view.body.deployment.machines.map((m: any) => m.agent)).toEqual([
      'online',
      'online',
      'online',
    ]);
    const out = await call(t2.app, 'POST', `/api/infrastructure/${deploymentId}/command`, {
      token: admin.token,
      body: { command: `echo "$VAPORFORM_MACHINE"; test "$VAPORFORM_MACHINE" != "${machines[2]}"` },
    });
    expect(out.status).toBe(200);
    expect(out.body.results.map((r: any) => [r.machine, r.status, r.stdout])).toEqual([
      [machines[0], 'succeeded', `${machines[0]}\n`],
      [machines[1], 'succeeded', `${machines[1]}\n`],
      [machines[2], 'failed', `${machines[2]}\n`],
    ]);
    // A timeout relayed: the agent there kills it and says so.
    const started = Date.now();
    const slow = await call(t2.app, 'POST', `/api/infrastructure/${deploymentId}/command`, {
      token: admin.token,
      body: { command: 'sleep 30', timeoutMs: 1000, machines: [machines[0]] },
    });
    expect(slow.body.results[0].status).toBe('timed_out');
    expect(Date.now() - started).toBeLessThan(8_000);
  }, 120_000);

  it('a non-zero exit on one machine fails only that one', async () => {
    const out = await command({
      command: `test "$VAPORFORM_MACHINE" != "${machines[1]}" || exit 3`,
    });
    expect(out.body.results.map((r: any) => [r.status, r.exitCode])).toEqual([
      ['succeeded', 0],
      ['failed', 3],
      ['succeeded', 0],
    ]);
  });

  it('args run without a shell; output past the cap is cut and said so', async () => {
    const out = await command({
      command: 'printf',
      args: ['%s', '$HOME; x'],
      machines: [machines[0]],
    });
    expect(out.body.results[0]).toMatchObject({ status: 'succeeded', stdout: '$HOME; x' });
    const big = await command({
      command: 'head -c 100000 /dev/zero | tr "\\0" a',
      maxOutputBytes: 1000,
      machines: [machines[0]],
    });
    expect(big.body.results[0].stdout).toHaveLength(1000);
    expect(big.body.results[0].truncated).toBe(true);
  });

  it('a timeout is timed_out in about the timeout, and the whole process group dies', async () => {
    const started = Date.now();
    const out = await command({
      command: 'sleep 300 & sleep 301; echo never',
      timeoutMs: 1500,
    });
    const took = Date.now() - started;
    expect(out.body.results.map((r: any) => r.status)).toEqual([
      'timed_out',
      'timed_out',
      'timed_out',
    ]);
    expect(took).toBeGreaterThanOrEqual(1400);
    expect(took).toBeLessThan(1500 + 4000);
    const left = await command({ command: 'ps -eo args | grep -c "^sleep 30[01]" || true' });
    for (const r of left.body.results) expect(r.stdout.trim()).toBe('0');
  });

  it('maxErrors stops sending the command: the rest are skipped', async () => {
    const out = await command({ command: 'exit 1', maxConcurrency: 1, maxErrors: 0 });
    expect(out.body.results.map((r: any) => r.status)).toEqual(['failed', 'skipped', 'skipped']);
  });

  it('streams output while it runs (SSE) and a cancel sent to another instance kills it', async () => {
    const res = await t.app.request(`/api/infrastructure/${deploymentId}/command/stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'echo first; sleep 30; echo last', timeoutMs: 60_000 }),
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const deadline = Date.now() + 20_000;
    let commandId: string | undefined;
    let cancelAt = 0;
    while (Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
      commandId ??= /event: command\ndata: (\{.*\})/.exec(text)?.[1]
        ? JSON.parse(/event: command\ndata: (\{.*\})/.exec(text)![1]!).id
        : undefined;
      if (commandId && !cancelAt && (text.match(/"data":"first\\n"/g) ?? []).length === 3) {
        cancelAt = Date.now();
        // Sent to the other instance: the one running the command aborts it.
        const canceled = await call(
          (t2 ?? t).app,
          'POST',
          `/api/infrastructure/${deploymentId}/commands/${commandId}/cancel`,
          { token: admin.token },
        );
        expect(canceled.status).toBe(202);
      }
      if (text.includes('event: end')) break;
    }
    expect(cancelAt).toBeGreaterThan(0);
    expect(Date.now() - cancelAt).toBeLessThan(8_000);
    const end = JSON.parse(/event: end\ndata: (.*)/.exec(text)![1]!);
    expect(end.results.map((r: any) => r.status)).toEqual(['canceled', 'canceled', 'canceled']);
    expect(end.results[0].stdout).toBe('first\n');
  });

  it('a replayed or expired command id is refused by the agent, and said so', async () => {
    const id = randomUUID();
    const request = {
      type: 'exec' as const,
      id,
      command: 'echo once',
      timeoutMs: 5_000,
      maxOutputBytes: 1000,
      expiresAt: Date.now() + 30_000,
    };
    const first = await t.services.agent.execRaw(deploymentId, machines[0]!, request);
    expect(first).toMatchObject({ type: 'exit', exitCode: 0 });
    const replay = await t.services.agent.execRaw(deploymentId, machines[0]!, request);
    expect(replay).toMatchObject({ type: 'rejected', reason: 'replay' });
    const expired = await t.services.agent.execRaw(deploymentId, machines[0]!, {
      ...request,
      id: randomUUID(),
      expiresAt: Date.now() - 1,
    });
    expect(expired).toMatchObject({ type: 'rejected', reason: 'expired' });
  });

  it('refuses forged, reused and expired enrollment tokens before the upgrade (401)', async () => {
    expect((await dialGateway('vfe_forged')).status).toBe(401);
    expect((await dialGateway('vfm_forged')).status).toBe(401);
    expect((await dialGateway('')).status).toBe(401);
    const token = await t.services.agent.issueToken(deploymentId, 'vf-extra');
    const first = await dialGateway(token);
    expect(first.status).toBe(101);
    expect(first.welcome.credential).toMatch(/^vfm_/);
    expect((await dialGateway(token)).status).toBe(401);
    const expired = await t.services.agent.issueToken(deploymentId, 'vf-late', -1000);
    expect((await dialGateway(expired)).status).toBe(401);
    // The credential works, and a reconnect replaces the older connection.
    expect((await dialGateway(first.welcome.credential)).status).toBe(101);
  });

  it('refuses non-admins: an editor 403, a stranger 404; commands are in the activity log', async () => {
    expect((await command({ command: 'true' }, editor.token)).status).toBe(403);
    const stranger = await registerAndLogin(t.app);
    expect((await command({ command: 'true' }, stranger.token)).status).toBe(404);
    const unknown = await command({ command: 'true', machines: ['nope'] });
    expect(unknown.status).toBe(404);
    const activity = await call(t.app, 'GET', `/api/projects/${projectId}/activity`, {
      token: admin.token,
    });
    const entries = (activity.body.activity ?? []).filter(
      (a: any) => a.type === 'infrastructure_command',
    );
    expect(entries.length).toBeGreaterThan(3);
    const history = await call(t.app, 'GET', `/api/infrastructure/${deploymentId}/commands`, {
      token: editor.token,
    });
    expect(history.status).toBe(200);
    expect(history.body.commands[0].results).toHaveLength(3);
  });

  it('deploys the project: its page answers from every machine; history and counters true', async () => {
    const marker = `<h1>Deployed ${randomUUID()}</h1>`;
    const wrote = await call(t.app, 'PUT', `/api/projects/${projectId}/files/index.html`, {
      token: admin.token,
      body: { content: marker },
    });
    expect(wrote.status).toBe(200);
    const started = Date.now();
    const res = await call(t.app, 'POST', `/api/infrastructure/${deploymentId}/deploy`, {
      token: admin.token,
    });
    expect(res.status).toBe(202);
    expect(res.body.deploy.status).toBe('running');
    expect(res.body.deploy.sha256).toMatch(/^[0-9a-f]{64}$/);
    await t.services.agent.settled(deploymentId);
    deployMs = Date.now() - started;
    expect(deployMs).toBeLessThan(120_000);
    const history = await call(t.app, 'GET', `/api/infrastructure/${deploymentId}/deploys`, {
      token: editor.token,
    });
    const [deploy] = history.body.deploys;
    expect(deploy.status).toBe('succeeded');
    expect(deploy.results.map((r: any) => r.status)).toEqual([
      'succeeded',
      'succeeded',
      'succeeded',
    ]);
    for (const result of deploy.results) {
      const page = await fetch(result.url);
      expect(await page.text()).toBe(marker);
    }
    // Each machine of the deployment shows its app: running, where, which release.
    const view = await waitForDeployment(() => true, 1000);
    expect(view.machines.map((m: any) => m.app)).toEqual(
      deploy.results.map((r: any) => ({
        status: 'running',
        url: r.url,
        release: deploy.release,
        deployedAt: expect.any(String),
      })),
    );
    const counters = await t.services.pool.query(
      'SELECT deployment_count, deployed_at FROM projects WHERE id = $1',
      [projectId],
    );
    expect(counters.rows[0].deployment_count).toBe(1);
    expect(counters.rows[0].deployed_at).not.toBeNull();
    // A member may read the history; only an admin deploys.
    const refused = await call(t.app, 'POST', `/api/infrastructure/${deploymentId}/deploy`, {
      token: editor.token,
    });
    expect(refused.status).toBe(403);
  }, 180_000);

  it('a broken deploy rolls back: the previous release keeps answering', async () => {
    const wrote = await call(t.app, 'PUT', `/api/projects/${projectId}/files/server.js`, {
      token: admin.token,
      body: { content: 'process.exit(1);\n' },
    });
    expect(wrote.status).toBe(200);
    const res = await call(t.app, 'POST', `/api/infrastructure/${deploymentId}/deploy`, {
      token: admin.token,
    });
    expect(res.status).toBe(202);
    await t.services.agent.settled(deploymentId);
    const history = await call(t.app, 'GET', `/api/infrastructure/${deploymentId}/deploys`, {
      token: admin.token,
    });
    const [broken, previous] = history.body.deploys;
    expect(broken.status).toBe('failed');
    expect(broken.results.map((r: any) => r.status)).toEqual([
      'rolled_back',
      'rolled_back',
      'rolled_back',
    ]);
    for (const [i, result] of broken.results.entries()) {
      const page = await fetch(result.url);
      expect(page.status).toBe(200);
      expect(result.url).toBe(previous.results[i].url);
    }
    const counters = await t.services.pool.query(
      'SELECT deployment_count FROM projects WHERE id = $1',
      [projectId],
    );
    expect(counters.rows[0].deployment_count).toBe(1);
  }, 180_000);

  it('the public entrance has the same gate; a machine terminal runs a shell there', async () => {
    const server = await listen(t);
    try {
      const refused = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/agent`, {
          headers: { authorization: 'Bearer vfm_forged' },
        });
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => resolve(101));
        ws.on('error', () => resolve(0));
      });
      expect(refused).toBe(401);
      const url = `${server.url.replace('http', 'ws')}/api/infrastructure/${deploymentId}/machines/${machines[0]}/terminal`;
      const output = await new Promise<string>((resolve, reject) => {
        const ws = new WebSocket(`${url}?token=${admin.token}`);
        let text = '';
        const timer = setTimeout(() => reject(new Error(`no echo: ${text}`)), 20_000);
        ws.on('open', () => ws.send('echo "term-$((6*7))"\n'));
        ws.on('message', (data) => {
          text += String(data);
          if (text.includes('term-42')) {
            clearTimeout(timer);
            ws.close();
            resolve(text);
          }
        });
        ws.on('error', reject);
      });
      expect(output).toContain('term-42');

      // Resize frames reach the machine's pty; the shell sees the new size.
      const sized = await new Promise<string>((resolve, reject) => {
        const ws = new WebSocket(`${url}?token=${admin.token}&cols=80&rows=24`);
        let text = '';
        const timer = setTimeout(() => reject(new Error(`no size: ${text}`)), 20_000);
        ws.on('open', () => {
          ws.send(JSON.stringify({ type: 'resize', cols: 123, rows: 45 }));
          setTimeout(() => ws.send('stty size\n'), 300);
        });
        ws.on('message', (data) => {
          text += String(data);
          if (/45 123/.test(text)) {
            clearTimeout(timer);
            ws.close();
            resolve(text);
          }
        });
        ws.on('error', reject);
      });
      expect(sized).toMatch(/45 123/);

      // A second admin's terminal closes when they are made editor (4403), and another's when
      // their session ends (4401).
      const openAs = (token: string) =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(`${url}?token=${token}`);
          ws.on('open', () => resolve(ws));
          ws.on('error', reject);
        });
      const closed = (ws: WebSocket) =>
        new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
      const [second, third] = await Promise.all([registerAndLogin(t.app), registerAndLogin(t.app)]);
      for (const s of [second, third]) {
        const added = await call(t.app, 'POST', `/api/projects/${projectId}/members`, {
          token: admin.token,
          body: { email: s.user.email, role: 'admin' },
        });
        expect(added.status).toBe(201);
      }
      const demoted = await openAs(second.token);
      const demotedClose = closed(demoted);
      const changed = await call(
        t.app,
        'PATCH',
        `/api/projects/${projectId}/members/${second.user.id}`,
        { token: admin.token, body: { role: 'editor' } },
      );
      expect(changed.status).toBe(200);
      expect(await demotedClose).toBe(4403);
      const signedOut = await openAs(third.token);
      const signedOutClose = closed(signedOut);
      const logout = await call(t.app, 'POST', '/api/auth/logout', { token: third.token });
      expect(logout.status).toBe(204);
      expect(await signedOutClose).toBe(4401);

      const editorTry = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`${url}?token=${editor.token}`);
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => resolve(101));
        ws.on('error', () => resolve(0));
      });
      expect(editorTry).toBe(403);
    } finally {
      await server.close();
    }
  }, 90_000);

  it('a paused machine goes offline within seconds, and comes back', async () => {
    const container = docker.getContainer(machines[2]!);
    await container.pause();
    const paused = Date.now();
    try {
      await waitForDeployment(
        (d) => d.machines.find((m: any) => m.name === machines[2]).agent === 'offline',
        15_000,
      );
      expect(Date.now() - paused).toBeLessThan(10_000);
      const out = await command({ command: 'true', machines: [machines[2]] });
      expect(out.body.results[0].status).toBe('agent_lost');
    } finally {
      await container.unpause();
    }
    await waitForDeployment((d) => d.machines.every((m: any) => m.agent === 'online'), 30_000);
  });

  it('a machine killed mid-command is agent_lost within seconds; the others succeed', async () => {
    const pending = command({ command: 'sleep 3; echo done', timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 1000));
    const killedAt = Date.now();
    await docker.getContainer(machines[1]!).kill();
    const out = await pending;
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    expect(out.body.results.map((r: any) => r.status)).toEqual([
      'succeeded',
      'agent_lost',
      'succeeded',
    ]);
    // Back up, the machine reconnects with the credential it kept.
    await docker.getContainer(machines[1]!).start();
    await waitForDeployment((d) => d.machines.every((m: any) => m.agent === 'online'), 60_000);
  });
});
