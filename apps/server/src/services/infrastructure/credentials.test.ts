/**
 * Cloud credentials come from the project's integrations and reach Terraform only through its
 * environment. Canary values are stored as the `aws` and `gcp` keys; a cloud provision (which
 * runs `terraform init` with them and fails fast here: no provider, no registry) and a local
 * provision run; then the canaries are looked for in every API response, the server's logs,
 * the project's events, the deployment's run log (SSE), every table of the database (the
 * Terraform state schema included) and every file of the data folder: found nowhere.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { removeDeployment, useTestDocker } from '../../../test/docker.ts';
import { projectChannel } from '../../common/project-events.ts';

let t: TestApp;
let docker: Docker;
let deploymentId: string | undefined;
const seen: string[] = [];
const canaries = {
  aws: `CANARY_AWS_${randomBytes(12).toString('hex')}`,
  gcp: JSON.stringify({
    type: 'service_account',
    private_key: `CANARY_GCP_${randomBytes(12).toString('hex')}`,
  }),
};
const needles = [canaries.aws, `CANARY_GCP_${canaries.gcp.split('CANARY_GCP_')[1]!.slice(0, 24)}`];

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

async function api(method: string, url: string, token: string, body?: unknown) {
  const res = await call(t.app, method, url, { token, body });
  seen.push(`${method} ${url} ${res.status} ${JSON.stringify(res.body)}`);
  return res;
}

/** Every file under `dir` (symbolic links not followed), as text. */
function filesUnder(dir: string): { file: string; text: string }[] {
  const out: { file: string; text: string }[] = [];
  for (const entry of readdirSync(dir, { recursive: true }) as string[]) {
    const file = path.join(dir, entry);
    const stat = lstatSync(file);
    if (stat.isFile() && stat.size < 50 * 1024 * 1024) {
      out.push({ file, text: readFileSync(file).toString('latin1') });
    }
  }
  return out;
}

it('lists the targets with their credentials; canary credentials are found nowhere after a cloud and a local provision', async () => {
  const admin = await registerAndLogin(t.app);
  const member = await registerAndLogin(t.app);
  const created = await api('POST', '/api/projects', admin.token, { name: 'Clouds' });
  const projectId = created.body.project.id as string;
  await api('POST', `/api/projects/${projectId}/members`, admin.token, {
    email: member.user.email,
    role: 'editor',
  });
  const events: unknown[] = [];
  await t.services.bus.subscribe(projectChannel(projectId), (m) => events.push(m));

  const before = await api(
    'GET',
    `/api/infrastructure/targets?projectId=${projectId}`,
    admin.token,
  );
  expect(before.status).toBe(200);
  expect(before.body.targets).toEqual([
    { target: 'local', credentials: 'not_needed', available: true },
    { target: 'aws', credentials: 'missing', available: false },
    { target: 'gcp', credentials: 'missing', available: false },
    { target: 'azure', credentials: 'missing', available: false },
  ]);
  const byEditor = await api(
    'GET',
    `/api/infrastructure/targets?projectId=${projectId}`,
    member.token,
  );
  expect(byEditor.status).toBe(403);
  const malformed = await api('GET', '/api/infrastructure/targets?projectId=nope', admin.token);
  expect(malformed.status).toBe(400);
  expect(malformed.body.error.code).toBe('invalid_request');

  expect(
    (
      await api('PUT', `/api/projects/${projectId}/integrations/aws`, admin.token, {
        apiKey: canaries.aws,
        configuration: { accessKeyId: 'AKIAEXAMPLEKEYID0000', region: 'eu-west-1' },
      })
    ).status,
  ).toBe(200);
  expect(
    (
      await api('PUT', `/api/projects/${projectId}/integrations/gcp`, admin.token, {
        apiKey: canaries.gcp,
        configuration: { project: 'vaporform-test' },
      })
    ).status,
  ).toBe(200);
  // Azure's integration lacks its account ids: not usable.
  await api('PUT', `/api/projects/${projectId}/integrations/azure`, admin.token, {
    apiKey: 'an azure client secret',
    configuration: { clientId: 'c' },
  });
  const after = await api('GET', `/api/infrastructure/targets?projectId=${projectId}`, admin.token);
  expect(after.body.targets.map((x: { credentials: string }) => x.credentials)).toEqual([
    'not_needed',
    'configured',
    'configured',
    'missing',
  ]);

  // Clouds: terraform init runs with the credentials and fails fast (no provider here).
  for (const provider of ['aws', 'gcp', 'azure']) {
    const started = Date.now();
    const res = await api('POST', '/api/provision', admin.token, {
      projectId,
      provider,
      machines: 1,
    });
    expect(res.status).toBe(503);
    expect(res.body.error.message).toMatch(/cannot be downloaded/);
    expect(res.body.error.message).toContain(
      provider === 'azure' ? 'Credentials: missing' : 'Credentials: configured',
    );
    expect(Date.now() - started).toBeLessThan(30_000);
  }
  expect(
    (await api('GET', `/api/infrastructure?projectId=${projectId}`, admin.token)).body,
  ).toEqual({ deployments: [] });

  // A local provision, to the end.
  const res = await api('POST', '/api/provision', admin.token, {
    projectId,
    provider: 'local',
    machines: 1,
  });
  expect(res.status).toBe(202);
  deploymentId = res.body.deployment.id as string;
  for (const end = Date.now() + 240_000; ;) {
    const d = await api('GET', `/api/infrastructure/${deploymentId}`, admin.token);
    if (d.body.deployment.status === 'ready') break;
    if (d.body.deployment.status === 'failed' || Date.now() > end) {
      throw new Error(`provision ended ${JSON.stringify(d.body.deployment.lastRun)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const logs = await t.app.request(`/api/infrastructure/${deploymentId}/logs?follow=false`, {
    headers: { authorization: `Bearer ${admin.token}` },
  });
  const sse = await logs.text();
  expect(sse).toContain('apply_complete');

  // Everywhere: responses, logs, events, the run log, every table, every file.
  const tables = await t.services.pool.query<{ s: string; n: string }>(
    `SELECT table_schema AS s, table_name AS n FROM information_schema.tables
     WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`,
  );
  expect(tables.rows.some((r) => r.s.startsWith('tfstate_'))).toBe(true);
  const rows: string[] = [];
  for (const { s, n } of tables.rows) {
    const r = await t.services.pool.query(`SELECT x::text AS row FROM "${s}"."${n}" x`);
    rows.push(...r.rows.map((row: { row: string }) => `${s}.${n} ${row.row}`));
  }
  const files = filesUnder(t.config.dataDir);
  expect(files.some((f) => f.file.includes(deploymentId!))).toBe(true);
  const places: Record<string, string[]> = {
    responses: seen,
    logs: t.logs,
    events: events.map((e) => JSON.stringify(e)),
    runLog: [sse],
    database: rows,
    files: files.map((f) => `${f.file} ${f.text}`),
  };
  for (const [place, texts] of Object.entries(places)) {
    for (const needle of needles) {
      const found = texts.filter((text) => text.includes(needle)).map((x) => x.slice(0, 200));
      expect({ place, found }).toEqual({ place, found: [] });
    }
  }
}, 600_000);
