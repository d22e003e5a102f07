/**
 * Infrastructure against the real terraform CLI, our provider and a real Docker engine: provision
 * two local machines, progress streamed, a concurrent run refused, a container removed by hand
 * found as drift, 2 → 3 changing only what changed, destroy leaving nothing, clouds failing fast.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, listen, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { useTestDocker } from '../../../test/docker.ts';
import { projectChannel } from '../../common/project-events.ts';
import { stateSchema } from './index.ts';

type Session = Awaited<ReturnType<typeof registerAndLogin>>;

let t: TestApp;
let docker: Docker;
let server: { url: string; close(): Promise<void> };
let admin: Session;
let viewer: Session;
let stranger: Session;
let projectId: string;
let deploymentId: string;
const projectEvents: { type: string; data?: any }[] = [];

function terraformVersion(): string {
  try {
    return execFileSync('terraform', ['version'], { encoding: 'utf8' }).split('\n')[0]!;
  } catch (error) {
    throw new Error(`the terraform CLI is needed on the PATH: ${String(error)}`);
  }
}

beforeAll(async () => {
  terraformVersion();
  const engine = await useTestDocker();
  docker = engine.docker;
  t = await createTestApp({ DOCKER_HOST: engine.dockerHost, VAPORFORM_RUNTIME: 'process' });
  server = await listen(t);
  [admin, viewer, stranger] = await Promise.all([
    registerAndLogin(t.app),
    registerAndLogin(t.app),
    registerAndLogin(t.app),
  ]);
  const created = await call(t.app, 'POST', '/api/projects', {
    token: admin.token,
    body: { name: 'Infra' },
  });
  expect(created.status).toBe(201);
  projectId = created.body.project.id;
  const added = await call(t.app, 'POST', `/api/projects/${projectId}/members`, {
    token: admin.token,
    body: { email: viewer.user.email, role: 'viewer' },
  });
  expect(added.status).toBe(201);
  await t.services.bus.subscribe(projectChannel(projectId), (m) => projectEvents.push(m as any));
}, 300_000);

afterAll(async () => {
  // Whatever a failed test left behind.
  if (deploymentId) {
    for (const c of await containersOf(deploymentId)) {
      await docker.getContainer(c.Id).remove({ force: true });
    }
    for (const n of await docker.listNetworks({
      filters: JSON.stringify({ label: [`vaporform.deployment=${deploymentId}`] }),
    })) {
      await docker.getNetwork(n.Id).remove();
    }
  }
  await server?.close();
  await t?.close();
}, 120_000);

function containersOf(id: string) {
  return docker.listContainers({
    all: true,
    filters: JSON.stringify({ label: [`vaporform.deployment=${id}`] }),
  });
}

async function waitFor(id: string, wanted: string[], timeoutMs = 240_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await call(t.app, 'GET', `/api/infrastructure/${id}`, { token: viewer.token });
    expect(res.status).toBe(200);
    const { deployment } = res.body;
    if (wanted.includes(deployment.status)) return deployment;
    if (['failed', 'canceled'].includes(deployment.status) && !wanted.includes('failed')) {
      throw new Error(`deployment ${deployment.status}: ${JSON.stringify(deployment.lastRun)}`);
    }
    if (Date.now() > deadline) throw new Error(`still ${deployment.status}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Reads the SSE log stream to its end: the events in order. */
async function readLogs(id: string, query = ''): Promise<{ seq: number; event: any }[]> {
  const res = await fetch(`${server.url}/api/infrastructure/${id}/logs${query}`, {
    headers: { Authorization: `Bearer ${viewer.token}` },
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const text = await res.text();
  const events: { seq: number; event: any }[] = [];
  for (const block of text.split('\n\n')) {
    const data = block
      .split('\n')
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).trim())
      .join('\n');
    if (block.includes('event: event') && data) events.push(JSON.parse(data));
  }
  expect(text).toContain('event: end');
  return events;
}

describe('infrastructure (terraform CLI + provider-local + Docker)', () => {
  it('refuses strangers (404) and viewers (403) a provision; cloud targets fail fast, creating nothing', async () => {
    const body = { projectId, provider: 'local', machines: 1 };
    const byStranger = await call(t.app, 'POST', '/api/provision', {
      token: stranger.token,
      body,
    });
    expect(byStranger.status).toBe(404);
    const byViewer = await call(t.app, 'POST', '/api/provision', { token: viewer.token, body });
    expect(byViewer.status).toBe(403);
    for (const provider of ['aws', 'gcp', 'azure']) {
      const started = Date.now();
      const res = await call(t.app, 'POST', '/api/provision', {
        token: admin.token,
        body: { projectId, provider, machines: 2 },
      });
      expect(res.status).toBe(503);
      expect(res.body.error.message).toMatch(/cannot be downloaded/);
      expect(Date.now() - started).toBeLessThan(5_000);
    }
    const list = await call(t.app, 'GET', `/api/infrastructure?projectId=${projectId}`, {
      token: viewer.token,
    });
    expect(list.body.deployments).toEqual([]);
  });

  it('provisions 2 local machines: progress streamed while it runs, a second run is 409, outputs stored', async () => {
    const res = await call(t.app, 'POST', '/api/provision', {
      token: admin.token,
      body: { projectId, provider: 'local', machines: 2 },
    });
    expect(res.status).toBe(202);
    deploymentId = res.body.deployment.id;
    expect(['queued', 'planning']).toContain(res.body.deployment.status);

    const logs = readLogs(deploymentId);
    const second = await call(t.app, 'POST', `/api/infrastructure/${deploymentId}/apply`, {
      token: admin.token,
      body: { machines: 3 },
    });
    expect(second.status).toBe(409);
    expect(second.body.error.code).toBe('conflict');
    const refresh = await call(t.app, 'POST', `/api/infrastructure/${deploymentId}/refresh`, {
      token: admin.token,
    });
    expect(refresh.status).toBe(409);

    const deployment = await waitFor(deploymentId, ['ready']);
    const events = await logs;
    const seqs = events.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    const types = events.map((e) => e.event.type);
    expect(types).toContain('planned_change');
    const applied = events.filter((e) => e.event.type === 'apply_complete');
    expect(applied.map((e) => e.event.hook.resource.addr).sort()).toEqual([
      'vaporform_machine.machine[0]',
      'vaporform_machine.machine[1]',
    ]);
    // The same events reached the project socket's channel.
    expect(
      projectEvents.filter(
        (e) => e.type === 'infrastructure_event' && e.data.event.type === 'apply_complete',
      ),
    ).toHaveLength(2);
    expect(projectEvents.some((e) => e.type === 'infrastructure_status')).toBe(true);

    expect(deployment.machines).toHaveLength(2);
    for (const m of deployment.machines) expect(m.address).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(deployment.lastRun).toMatchObject({ kind: 'apply', status: 'ready' });
    expect(deployment.lastRun.summary.plan).toMatchObject({ add: 2, change: 0, remove: 0 });

    const containers = await containersOf(deploymentId);
    expect(containers.map((c) => c.Names[0]).sort()).toEqual(
      deployment.machines.map((m: any) => `/${m.name}`).sort(),
    );
    const info = await docker.getContainer(containers[0]!.Id).inspect();
    expect(info.State.Running).toBe(true);
    expect(info.HostConfig.CapDrop).toEqual(['ALL']);
    expect(info.HostConfig.ReadonlyRootfs).toBe(true);
    expect(Object.keys(info.NetworkSettings.Networks)).toEqual([`vf-${deploymentId}`]);
    // State lives in PostgreSQL, in the deployment's own schema.
    const state = await t.services.pool.query(
      `SELECT count(*)::int AS n FROM ${stateSchema(deploymentId)}.states`,
    );
    expect(state.rows[0].n).toBe(1);
    // A snapshot stream (follow=false) from an offset holds only what follows it.
    const later = await readLogs(deploymentId, `?follow=false&after=${seqs[seqs.length - 2]}`);
    expect(later.map((e) => e.seq)).toEqual([seqs[seqs.length - 1]]);
  }, 300_000);

  it('finds a machine removed by hand as drift; members read, strangers get 404', async () => {
    const byStranger = await call(t.app, 'GET', `/api/infrastructure/${deploymentId}`, {
      token: stranger.token,
    });
    expect(byStranger.status).toBe(404);
    const clean = await call(t.app, 'POST', `/api/infrastructure/${deploymentId}/refresh`, {
      token: admin.token,
    });
    expect(clean.status).toBe(200);
    expect(clean.body).toEqual({ drift: false, changes: [] });

    await docker.getContainer(`vf-${deploymentId}-1`).remove({ force: true });
    const res = await call(t.app, 'POST', `/api/infrastructure/${deploymentId}/refresh`, {
      token: admin.token,
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      drift: true,
      changes: [{ address: 'vaporform_machine.machine[1]', action: 'delete' }],
    });
    const { body } = await call(t.app, 'GET', `/api/infrastructure/${deploymentId}`, {
      token: viewer.token,
    });
    expect(body.deployment.drift).toMatchObject({ drift: true });
  }, 300_000);

  it('re-applies 2 → 3: the untouched machine stays, the removed one and the new one are created', async () => {
    const before = await docker.getContainer(`vf-${deploymentId}-0`).inspect();
    const res = await call(t.app, 'POST', `/api/infrastructure/${deploymentId}/apply`, {
      token: admin.token,
      body: { machines: 3 },
    });
    expect(res.status).toBe(202);
    const deployment = await waitFor(deploymentId, ['ready']);
    expect(deployment.machines).toHaveLength(3);
    expect(deployment.lastRun.summary.plan).toMatchObject({ add: 2, change: 0, remove: 0 });
    const after = await docker.getContainer(`vf-${deploymentId}-0`).inspect();
    expect(after.Id).toBe(before.Id);
    expect(after.State.StartedAt).toBe(before.State.StartedAt);
    expect(await containersOf(deploymentId)).toHaveLength(3);
  }, 300_000);

  it('destroys: no container, network, state or work folder left', async () => {
    const byViewer = await call(t.app, 'DELETE', `/api/infrastructure/${deploymentId}`, {
      token: viewer.token,
    });
    expect(byViewer.status).toBe(403);
    const res = await call(t.app, 'DELETE', `/api/infrastructure/${deploymentId}`, {
      token: admin.token,
    });
    expect(res.status).toBe(202);
    const deployment = await waitFor(deploymentId, ['destroyed']);
    expect(deployment.machines).toEqual([]);
    expect(await containersOf(deploymentId)).toEqual([]);
    const networks = await docker.listNetworks({
      filters: JSON.stringify({ name: [`vf-${deploymentId}`] }),
    });
    expect(networks).toEqual([]);
    const schema = await t.services.pool.query(
      'SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1',
      [stateSchema(deploymentId)],
    );
    expect(schema.rows[0].n).toBe(0);
    expect(existsSync(path.join(t.config.dataDir, 'infrastructure', deploymentId))).toBe(false);
  }, 300_000);
});
