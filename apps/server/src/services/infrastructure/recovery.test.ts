/**
 * A server stopped mid-run (SIGKILL: its terraform died with it) leaves runs marked active; the
 * next start marks them failed, so the deployment is not shown as busy forever and a new run
 * can take it.
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { InfrastructureService } from './index.ts';

let t: TestApp;

beforeAll(async () => {
  t = await createTestApp({ DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
});

afterAll(async () => {
  await t?.close();
});

it('marks runs left active by a stopped server as failed on start', async () => {
  const owner = await registerAndLogin(t.app);
  const created = await call(t.app, 'POST', '/api/projects', {
    token: owner.token,
    body: { name: 'Recovery' },
  });
  const projectId = created.body.project.id as string;
  const { rows } = await t.services.pool.query(
    `INSERT INTO infra_deployments (project_id, provider, status, created_by)
     VALUES ($1, 'local', 'applying', $2) RETURNING id`,
    [projectId, owner.user.id],
  );
  const deploymentId = rows[0].id as string;
  await t.services.pool.query(
    `INSERT INTO infra_runs (deployment_id, kind, status) VALUES ($1, 'apply', 'applying')`,
    [deploymentId],
  );
  const before = await call(t.app, 'GET', `/api/infrastructure/${deploymentId}`, {
    token: owner.token,
  });
  expect(before.body.deployment.status).toBe('applying');

  const restarted = new InfrastructureService({
    db: t.services.db,
    projects: t.services.projects,
    users: t.services.auth,
    bus: t.services.bus,
    log: t.services.log,
    dataDir: t.config.dataDir,
    databaseUrl: t.databaseUrl,
  });
  // While another instance holds the run (its advisory lock), the run is left alone.
  const holder = new pg.Client({ connectionString: t.databaseUrl });
  await holder.connect();
  await holder.query('SELECT pg_advisory_lock(74610014, hashtext($1))', [deploymentId]);
  await restarted.start();
  const held = await call(t.app, 'GET', `/api/infrastructure/${deploymentId}`, {
    token: owner.token,
  });
  expect(held.body.deployment.status).toBe('applying');
  await holder.end();

  await restarted.start();

  const after = await call(t.app, 'GET', `/api/infrastructure/${deploymentId}`, {
    token: owner.token,
  });
  expect(after.body.deployment.status).toBe('failed');
  expect(after.body.deployment.lastRun).toMatchObject({
    status: 'failed',
    error: 'The server stopped during this run',
  });
  expect(after.body.deployment.lastRun.finishedAt).not.toBeNull();
});

it('answers 503 at once for local machines when no Docker engine answers, creating nothing', async () => {
  const owner = await registerAndLogin(t.app);
  const created = await call(t.app, 'POST', '/api/projects', {
    token: owner.token,
    body: { name: 'No engine' },
  });
  const projectId = created.body.project.id as string;
  const res = await call(t.app, 'POST', '/api/provision', {
    token: owner.token,
    body: { projectId, provider: 'local', machines: 1 },
  });
  expect(res.status).toBe(503);
  expect(res.body.error.message).toMatch(/Docker engine/);
  const list = await call(t.app, 'GET', `/api/infrastructure?projectId=${projectId}`, {
    token: owner.token,
  });
  expect(list.body.deployments).toEqual([]);
});
