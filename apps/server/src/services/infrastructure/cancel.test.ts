/**
 * Cancel mid-apply against the real terraform CLI and Docker engine: the run ends `canceled`,
 * no terraform or provider process is left in the work folder, and a destroy afterwards leaves
 * no container, network or state behind.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { removeDeployment, useTestDocker } from '../../../test/docker.ts';
import { stateSchema } from './index.ts';

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

/** Processes whose working directory is `dir` (terraform and the providers it started). */
function processesIn(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/cwd`) === dir) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

async function status(token: string, id: string): Promise<any> {
  const res = await call(t.app, 'GET', `/api/infrastructure/${id}`, { token });
  expect(res.status).toBe(200);
  return res.body.deployment;
}

async function until(token: string, id: string, wanted: string[], timeoutMs = 240_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const deployment = await status(token, id);
    if (wanted.includes(deployment.status)) return deployment;
    if (Date.now() > deadline) throw new Error(`still ${deployment.status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

it('cancels an apply in progress; destroy then leaves nothing behind', async () => {
  const admin = await registerAndLogin(t.app);
  const created = await call(t.app, 'POST', '/api/projects', {
    token: admin.token,
    body: { name: 'Cancel' },
  });
  const projectId = created.body.project.id as string;
  const res = await call(t.app, 'POST', '/api/provision', {
    token: admin.token,
    body: { projectId, provider: 'local', machines: 2 },
  });
  expect(res.status).toBe(202);
  const id = res.body.deployment.id as string;
  deploymentId = id;
  const workDir = path.join(t.config.dataDir, 'infrastructure', id);

  await until(admin.token, id, ['applying']);
  const cancel = await call(t.app, 'POST', `/api/infrastructure/${id}/cancel`, {
    token: admin.token,
  });
  expect(cancel.status).toBe(202);
  const canceled = await until(admin.token, id, ['canceled', 'ready', 'failed']);
  expect(canceled.status).toBe('canceled');
  expect(canceled.lastRun).toMatchObject({ kind: 'apply', status: 'canceled' });
  expect(processesIn(workDir)).toEqual([]);
  // Nothing runs any more: cancel has nothing to cancel.
  const again = await call(t.app, 'POST', `/api/infrastructure/${id}/cancel`, {
    token: admin.token,
  });
  expect(again.status).toBe(409);

  // The database password reaches Terraform only through its environment (PG_CONN_STR):
  // never in the work folder's files, a stored event or a run's error.
  const password = decodeURIComponent(new URL(t.databaseUrl).password);
  expect(password.length).toBeGreaterThan(0);
  for (const file of readdirSync(workDir)) {
    const full = path.join(workDir, file);
    if (statSync(full).isFile()) expect(readFileSync(full, 'utf8')).not.toContain(password);
  }
  const stored = await t.services.pool.query(
    `SELECT (SELECT json_agg(event)::text FROM infra_events WHERE deployment_id = $1) AS events,
            (SELECT json_agg(error)::text FROM infra_runs WHERE deployment_id = $1) AS errors`,
    [id],
  );
  expect(stored.rows[0].events).toContain('planned_change');
  expect(JSON.stringify(stored.rows[0])).not.toContain(password);

  const destroy = await call(t.app, 'DELETE', `/api/infrastructure/${id}`, { token: admin.token });
  expect(destroy.status).toBe(202);
  await until(admin.token, id, ['destroyed']);
  const label = JSON.stringify({ label: [`vaporform.deployment=${id}`] });
  expect(await docker.listContainers({ all: true, filters: label })).toEqual([]);
  expect(await docker.listNetworks({ filters: label })).toEqual([]);
  const schema = await t.services.pool.query(
    'SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1',
    [stateSchema(id)],
  );
  expect(schema.rows[0].n).toBe(0);
}, 400_000);
