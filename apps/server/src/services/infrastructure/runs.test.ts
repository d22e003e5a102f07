/**
 * The run history of a deployment (`GET /api/infrastructure/:id/runs`) against the real terraform
 * CLI and Docker engine: provision one machine, a drift check by another admin, destroy → three
 * runs, newest first, each with its kind, outcome, who started it, plan, exit code and duration;
 * a viewer reads it, a stranger gets 404, and no credential or environment is in it.
 */
import { execFileSync } from 'node:child_process';
import type Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { removeDeployment, useTestDocker } from '../../../test/docker.ts';

type Session = Awaited<ReturnType<typeof registerAndLogin>>;

let t: TestApp;
let docker: Docker;
let deploymentId: string | undefined;

beforeAll(async () => {
  execFileSync('terraform', ['version']); // under CI a missing CLI fails here, never skips
  const engine = await useTestDocker();
  docker = engine.docker;
  t = await createTestApp({ DOCKER_HOST: engine.dockerHost, VAPORFORM_RUNTIME: 'process' });
}, 300_000);

afterAll(async () => {
  if (deploymentId) await removeDeployment(docker, deploymentId);
  await t?.close();
}, 120_000);

async function until(token: string, id: string, wanted: string) {
  const deadline = Date.now() + 240_000;
  for (;;) {
    const res = await call(t.app, 'GET', `/api/infrastructure/${id}`, { token });
    expect(res.status).toBe(200);
    const { deployment } = res.body;
    if (deployment.status === wanted) return deployment;
    if (['failed', 'canceled'].includes(deployment.status) || Date.now() > deadline) {
      throw new Error(`deployment ${deployment.status}: ${JSON.stringify(deployment.lastRun)}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function runsOf(session: Session, id: string, query = '') {
  return call(t.app, 'GET', `/api/infrastructure/${id}/runs${query}`, { token: session.token });
}

it('provision, refresh, destroy: three runs, newest first, for members only', async () => {
  const [owner, admin, viewer, stranger] = await Promise.all([
    registerAndLogin(t.app, { name: 'Olga Owner' }),
    registerAndLogin(t.app, { name: 'Adam Admin' }),
    registerAndLogin(t.app, { name: 'Vera Viewer' }),
    registerAndLogin(t.app),
  ]);
  const created = await call(t.app, 'POST', '/api/projects', {
    token: owner.token,
    body: { name: 'Runs' },
  });
  const projectId = created.body.project.id as string;
  for (const [who, role] of [
    [admin, 'admin'],
    [viewer, 'viewer'],
  ] as const) {
    const added = await call(t.app, 'POST', `/api/projects/${projectId}/members`, {
      token: owner.token,
      body: { email: who.user.email, role },
    });
    expect(added.status).toBe(201);
  }

  const provisioned = await call(t.app, 'POST', '/api/provision', {
    token: owner.token,
    body: { projectId, provider: 'local', machines: 1 },
  });
  expect(provisioned.status).toBe(202);
  const id = provisioned.body.deployment.id as string;
  deploymentId = id;
  // While it runs: one run, not finished.
  const early = await runsOf(viewer, id);
  expect(early.status).toBe(200);
  expect(early.body.runs).toHaveLength(1);
  expect(early.body.runs[0]).toMatchObject({ kind: 'apply', finishedAt: null, durationMs: null });
  await until(owner.token, id, 'ready');

  const refreshed = await call(t.app, 'POST', `/api/infrastructure/${id}/refresh`, {
    token: admin.token,
  });
  expect(refreshed.status).toBe(200);
  const destroyed = await call(t.app, 'DELETE', `/api/infrastructure/${id}`, {
    token: owner.token,
  });
  expect(destroyed.status).toBe(202);
  await until(owner.token, id, 'destroyed');

  const res = await runsOf(viewer, id);
  expect(res.status).toBe(200);
  const runs = res.body.runs as any[];
  expect(runs.map((r) => [r.kind, r.status, r.startedBy?.name])).toEqual([
    ['destroy', 'destroyed', 'Olga Owner'],
    ['refresh', 'ready', 'Adam Admin'],
    ['apply', 'ready', 'Olga Owner'],
  ]);
  expect(runs[0].startedBy.id).toBe(owner.user.id);
  expect(runs[1].startedBy.id).toBe(admin.user.id);
  const [destroy, refresh, apply] = runs;
  expect(apply.planSummary).toEqual({ add: 1, change: 0, destroy: 0 });
  expect(destroy.planSummary).toEqual({ add: 0, change: 0, destroy: 1 });
  expect(refresh.planSummary).toBeNull();
  // Terraform 1.11's refresh-only plan exits 2 (see CONTEXT.md); apply and destroy 0.
  expect(runs.map((r) => r.exitCode)).toEqual([0, 2, 0]);
  for (const r of runs) {
    expect(r.error).toBeNull();
    expect(r.durationMs).toBe(Date.parse(r.finishedAt) - Date.parse(r.startedAt));
    expect(r.durationMs).toBeGreaterThan(0);
  }
  // Newest first by start time.
  const starts = runs.map((r) => Date.parse(r.startedAt));
  expect(starts).toEqual([...starts].sort((a, b) => b - a));
  // Nothing of the run's environment: no connection string, Docker host or token.
  const text = JSON.stringify(res.body);
  expect(text).not.toMatch(/postgres(ql)?:\/\/|PG_CONN_STR|DOCKER_HOST|TF_VAR|unix:\/\//);
  expect(Object.keys(apply).sort()).toEqual(
    [
      'id',
      'kind',
      'status',
      'startedBy',
      'startedAt',
      'finishedAt',
      'durationMs',
      'planSummary',
      'exitCode',
      'error',
    ].sort(),
  );

  const limited = await runsOf(owner, id, '?limit=1');
  expect(limited.body.runs.map((r: any) => r.kind)).toEqual(['destroy']);
  const badLimit = await runsOf(owner, id, '?limit=0');
  expect(badLimit.status).toBe(400);
  expect(badLimit.body.error.code).toBeTruthy();

  const byStranger = await runsOf(stranger, id);
  expect(byStranger.status).toBe(404);
  const unknown = await runsOf(owner, '00000000-0000-4000-8000-000000000000');
  expect(unknown.status).toBe(404);
  const malformed = await runsOf(owner, 'not-a-uuid');
  expect(malformed.status).toBe(404);
}, 420_000);
