/**
 * The real server (src/main.ts, a child process) SIGKILLed in the middle of an apply of local
 * machines: its terraform dies after it, and containers may exist that Terraform's state never
 * recorded. The restarted server marks the run failed, removes every container labelled with
 * the deployment that the state does not hold, keeps (re-adopts) those it does, and a destroy
 * then leaves no container, network, process or state behind.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type Docker from 'dockerode';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { removeDeployment, useTestDocker } from '../../../test/docker.ts';
import { startServer, type ServerProc } from '../../../test/topology/processes.ts';
import { processesIn } from './recovery.ts';
import { stateSchema } from './index.ts';

let docker: Docker;
let database: TestDatabase;
let env: Record<string, string>;
let server: ServerProc | undefined;
let deploymentId: string | undefined;

beforeAll(async () => {
  execFileSync('terraform', ['version']); // under CI a missing CLI fails here, never skips
  const engine = await useTestDocker();
  docker = engine.docker;
  database = await createTestDatabase();
  env = {
    DATABASE_URL: database.url,
    DOCKER_HOST: engine.dockerHost,
    JWT_SECRET: randomBytes(32).toString('hex'),
    VAPORFORM_MASTER_KEY: randomBytes(32).toString('hex'),
  };
}, 300_000);

afterAll(async () => {
  await server?.stop();
  if (deploymentId) await removeDeployment(docker, deploymentId);
  await database?.drop();
}, 120_000);

async function api(method: string, url: string, token?: string, body?: unknown): Promise<any> {
  const res = await fetch(`${server!.url}${url}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json().catch(() => undefined) };
}

function labelled(id: string) {
  const filters = JSON.stringify({ label: [`vaporform.deployment=${id}`] });
  return Promise.all([
    docker.listContainers({ all: true, filters }),
    docker.listNetworks({ filters }),
  ]);
}

it('recovers an apply whose server was SIGKILLed: no orphan container or network, run failed with its reason', async () => {
  server = await startServer(env);
  const dataDir = server.dataDir;
  const email = `crash${Date.now()}@example.test`;
  const password = 'correct horse battery staple';
  expect(
    (await api('POST', '/api/auth/register', undefined, { email, password, name: 'C' })).status,
  ).toBe(201);
  const token = (await api('POST', '/api/auth/login', undefined, { email, password })).body
    .token as string;
  const project = await api('POST', '/api/projects', token, { name: 'Crash' });
  const projectId = project.body.project.id as string;
  const res = await api('POST', '/api/provision', token, {
    projectId,
    provider: 'local',
    machines: 3,
  });
  expect(res.status).toBe(202);
  const id = res.body.deployment.id as string;
  deploymentId = id;

  // The first container is up: Terraform saves its state at the end of the apply, so killing
  // the server now leaves machines the state does not hold.
  const deadline = Date.now() + 240_000;
  while ((await labelled(id))[0].length === 0) {
    if (Date.now() > deadline) throw new Error(`no container after 240 s: ${server.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  server.child.kill('SIGKILL');
  await new Promise((resolve) => server!.child.once('exit', resolve));
  const [orphaned] = await labelled(id);
  expect(orphaned.length).toBeGreaterThan(0);

  server = await startServer(env, { dataDir });
  const deployment = (await api('GET', `/api/infrastructure/${id}`, token)).body.deployment;
  expect(deployment.status).toBe('failed');
  expect(deployment.lastRun.status).toBe('failed');
  expect(deployment.lastRun.error).toMatch(/^The server stopped during this run/);
  expect(deployment.lastRun.finishedAt).not.toBeNull();

  // Nothing of the dead run still runs, and every container left is one Terraform's state
  // holds and the deployment shows (re-adopted); none is orphaned.
  expect(processesIn(path.join(dataDir, 'infrastructure', id))).toEqual([]);
  const [containers, networks] = await labelled(id);
  const pool = new pg.Pool({ connectionString: database.url });
  try {
    const schema = stateSchema(id);
    const saved = await pool
      .query(`SELECT data FROM ${schema}.states WHERE name = 'default'`)
      .catch(() => ({ rows: [] as { data: string }[] }));
    const stateIds = new Set<string>(
      saved.rows.flatMap((r) =>
        (JSON.parse(r.data).resources ?? []).flatMap((res: any) =>
          res.type === 'vaporform_machine' ? res.instances.map((i: any) => i.attributes.id) : [],
        ),
      ),
    );
    for (const c of containers) expect(stateIds.has(c.Id)).toBe(true);
  } finally {
    await pool.end();
  }
  expect(containers.map((c) => c.Id).sort()).toEqual(
    deployment.machines.map((m: { id: string }) => m.id).sort(),
  );
  if (containers.length === 0) {
    expect(networks).toEqual([]);
    expect(deployment.lastRun.error).toMatch(/machine\(s\) not in Terraform's state were removed/);
  }

  // The deployment is usable again: destroy leaves nothing behind.
  const destroyed = await api('DELETE', `/api/infrastructure/${id}`, token);
  expect(destroyed.status).toBe(202);
  for (const end = Date.now() + 240_000; ;) {
    const status = (await api('GET', `/api/infrastructure/${id}`, token)).body.deployment.status;
    if (status === 'destroyed') break;
    if (status === 'failed' || Date.now() > end) throw new Error(`destroy ended ${status}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const [after, afterNetworks] = await labelled(id);
  expect(after).toEqual([]);
  expect(afterNetworks).toEqual([]);
}, 600_000);
