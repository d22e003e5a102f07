// Project environment reaching the project's real container (test dockerd, test/docker.ts) and
// the process runtime: visible to `env` (printenv) inside it and to the app, applied on
// restart, and absent from every response and log line on the way.
import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import {
  execIn as execInContainer,
  removeInstallation,
  useTestDocker,
} from '../../../test/docker.ts';
import {
  createProject,
  eventually,
  rawRequest,
  writeDevServer,
  type Session,
} from '../../../test/docker-projects.ts';
import { ContainersStore } from '../containers/index.ts';

function canary(kind: string): string {
  return `CANARY_${kind}_${randomBytes(8).toString('hex')}`;
}

/** Runs a command in a container (bounded); returns what it printed. */
async function execIn(docker: Docker, container: string, cmd: string[]): Promise<string> {
  return (await execInContainer(docker, container, cmd)).output;
}

/** What the running app sees: the dev server answers `/whoami` with `env: $VF_TEST_VALUE`. */
async function appSees(serviceUrl: string): Promise<string | null> {
  const port = Number(serviceUrl.split(':').at(-1));
  return eventually(
    async () => {
      const res = await rawRequest(port, 'GET', '/whoami', {});
      return res.status === 200 ? { env: JSON.parse(res.body).env as string | null } : undefined;
    },
    60_000,
    'the dev server',
  ).then((r) => r.env);
}

/** Drives one project through set env → start → change → restart, recording every response. */
function flow(getT: () => TestApp) {
  const responses: string[] = [];
  const values = {
    first: canary('FIRST'),
    second: canary('SECOND'),
    other: canary('OTHER'),
    apiKey: `sk_test_${canary('STRIPE')}`,
  };
  const req = async (session: Session, method: string, url: string, body?: unknown) => {
    const res = await call(getT().app, method, url, { token: session.token, body });
    responses.push(`${method} ${url} ${res.status} ${JSON.stringify(res.body)}`);
    return res;
  };
  /** Every response and log line so far, checked for the values. */
  const leaks = () => {
    const logs = getT().logs.join('\n');
    return Object.entries(values).flatMap(([name, v]) => [
      ...(logs.includes(v) ? [`${name} in logs`] : []),
      ...responses.filter((r) => r.includes(v)).map((r) => `${name} in ${r.slice(0, 60)}`),
    ]);
  };
  return { responses, values, req, leaks };
}

describe('docker runtime', () => {
  let t: TestApp;
  let docker: Docker;
  let installationId: string;
  let owner: Session;
  let attempt = 0;
  const f = flow(() => t);

  beforeAll(async () => {
    let dockerHost: string;
    ({ docker, dockerHost } = await useTestDocker());
    t = await createTestApp({
      VAPORFORM_RUNTIME: 'docker',
      DOCKER_HOST: dockerHost,
      VAPORFORM_RECONCILE_SECONDS: '0',
      VAPORFORM_STATS_SECONDS: '0',
    });
    installationId = await new ContainersStore(t.services.db).installationId();
    owner = await registerAndLogin(t.app);
  }, 900_000);

  afterAll(async () => {
    await t?.close();
    if (docker && installationId) await removeInstallation(docker, installationId);
  }, 120_000);

  // Retried: another file's test (containers' engine-restart case) may restart the shared test
  // engine while this one runs; each attempt uses a new project.
  it(
    'injects the environment at start, applies changes on restart, and never shows a value',
    { retry: 2, timeout: 120_000 },
    async () => {
      const projectId = await createProject(t, owner, `Env in Docker ${++attempt}`);
      writeDevServer(t, projectId);
      expect(
        (
          await f.req(owner, 'PUT', `/api/projects/${projectId}/env`, {
            vars: { VF_TEST_VALUE: f.values.first, OTHER_SECRET: f.values.other },
          })
        ).status,
      ).toBe(200);
      expect(
        (
          await f.req(owner, 'PUT', `/api/projects/${projectId}/integrations/stripe`, {
            apiKey: f.values.apiKey,
          })
        ).status,
      ).toBe(200);

      const started = await f.req(owner, 'POST', `/api/containers/${projectId}/start?wait=true`);
      expect(started.status, JSON.stringify(started.body)).toBe(200);
      const name = `vf-${projectId}`;
      // The runtime image has `env` (coreutils' printenv is not in it): the same listing.
      const printed = await execIn(docker, name, ['env']);
      expect(printed).toContain(`VF_TEST_VALUE=${f.values.first}\n`);
      expect(printed).toContain(`OTHER_SECRET=${f.values.other}\n`);
      expect(printed).toContain(`STRIPE_API_KEY=${f.values.apiKey}\n`);
      expect(await appSees(started.body.container.serviceUrl)).toBe(f.values.first);

      // A change waits for a restart.
      await f.req(owner, 'PUT', `/api/projects/${projectId}/env`, {
        vars: { VF_TEST_VALUE: f.values.second, OTHER_SECRET: null },
      });
      expect(await execIn(docker, name, ['sh', '-c', 'echo "$VF_TEST_VALUE"'])).toBe(
        `${f.values.first}\n`,
      );
      const restarted = await f.req(
        owner,
        'POST',
        `/api/containers/${projectId}/restart?wait=true`,
      );
      expect(restarted.status, JSON.stringify(restarted.body)).toBe(200);
      const after = await execIn(docker, name, ['env']);
      expect(after).toContain(`VF_TEST_VALUE=${f.values.second}\n`);
      expect(after).not.toContain('OTHER_SECRET=');
      expect(await appSees(restarted.body.container.serviceUrl)).toBe(f.values.second);

      // Everything a member can ask for about the project and its container.
      for (const url of [
        `/api/containers/${projectId}`,
        '/api/containers',
        `/api/containers/${projectId}/logs?follow=false`,
        `/api/projects/${projectId}`,
        `/api/projects/${projectId}/env`,
        `/api/projects/${projectId}/integrations`,
        `/api/projects/${projectId}/activity`,
      ]) {
        expect((await f.req(owner, 'GET', url)).status, url).toBe(200);
      }
      expect(f.leaks()).toEqual([]);
      await f.req(owner, 'POST', `/api/containers/${projectId}/stop`);
    },
  );
});

describe('process runtime', () => {
  let t: TestApp;
  let owner: Session;
  const f = flow(() => t);

  beforeAll(async () => {
    t = await createTestApp({
      VAPORFORM_RUNTIME: 'process',
      VAPORFORM_RECONCILE_SECONDS: '0',
      VAPORFORM_STATS_SECONDS: '0',
    });
    owner = await registerAndLogin(t.app);
  });

  afterAll(async () => {
    await t?.close();
  });

  it('gives the process the environment, and the new one after a restart', async () => {
    const projectId = await createProject(t, owner, 'Env in a process');
    writeDevServer(t, projectId);
    const before = await f.req(owner, 'PUT', `/api/projects/${projectId}/env`, {
      vars: { VF_TEST_VALUE: f.values.first },
    });
    // Nothing runs yet: the next start takes it, no restart to ask for.
    expect(before.body).toEqual({ names: ['VF_TEST_VALUE'], restartRequired: false });
    const started = await f.req(owner, 'POST', `/api/containers/${projectId}/start?wait=true`);
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    expect(await appSees(started.body.container.serviceUrl)).toBe(f.values.first);

    // A change while it runs: the answer and the members' socket say "restart to apply", and
    // the running dev server still has the old value until then.
    const events: unknown[] = [];
    const unsubscribe = await t.services.bus.subscribe(`project:${projectId}`, (m) => {
      if ((m as { type?: string }).type === 'environment_changed') events.push(m);
    });
    const changed = await f.req(owner, 'PUT', `/api/projects/${projectId}/env`, {
      vars: { VF_TEST_VALUE: f.values.second, EXTRA_FLAG: 'on' },
    });
    expect(changed.status).toBe(200);
    expect(changed.body).toEqual({
      names: ['EXTRA_FLAG', 'VF_TEST_VALUE'],
      restartRequired: true,
    });
    expect((await f.req(owner, 'DELETE', `/api/projects/${projectId}/env/EXTRA_FLAG`)).status).toBe(
      204,
    );
    await eventually(
      async () => (events.length >= 2 ? true : undefined),
      5_000,
      'the environment events',
    );
    await unsubscribe();
    expect(events).toEqual([
      {
        type: 'environment_changed',
        data: { names: ['EXTRA_FLAG', 'VF_TEST_VALUE'], restartRequired: true },
      },
      { type: 'environment_changed', data: { names: ['VF_TEST_VALUE'], restartRequired: true } },
    ]);
    expect(await appSees(started.body.container.serviceUrl)).toBe(f.values.first);

    const restarted = await f.req(owner, 'POST', `/api/containers/${projectId}/restart?wait=true`);
    expect(restarted.status, JSON.stringify(restarted.body)).toBe(200);
    expect(await appSees(restarted.body.container.serviceUrl)).toBe(f.values.second);
    await f.req(owner, 'GET', `/api/containers/${projectId}/logs?follow=false`);
    expect(f.leaks()).toEqual([]);
    await f.req(owner, 'POST', `/api/containers/${projectId}/stop`);
  });
});
