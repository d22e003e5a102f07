// A container start racing the project's deletion (issue 11): whatever the order in which the
// start and the delete reach the engine, nothing of the project stays behind — no container, no
// network. Runs on the test Docker engine.
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { removeInstallation, useTestDocker } from '../../../test/docker.ts';
import { createProject, eventually, type Session } from '../../../test/docker-projects.ts';
import { ContainersStore } from './index.ts';

let t: TestApp;
let docker: Docker;
let installationId: string;
let alice: Session;

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
  alice = await registerAndLogin(t.app);
}, 900_000);

afterAll(async () => {
  await t?.close();
  if (docker && installationId) await removeInstallation(docker, installationId);
}, 120_000);

/** What the engine still holds for the project: containers and networks named after it. */
async function leftovers(projectId: string): Promise<string[]> {
  const [containers, networks] = await Promise.all([
    docker.listContainers({ all: true, filters: { name: [`vf-${projectId}`] } }),
    docker.listNetworks({ filters: { name: [`vf-${projectId}`] } }),
  ]);
  return [
    ...containers.map((c) => `container ${c.Names.join(',')}`),
    ...networks.map((n) => `network ${n.Name}`),
  ];
}

describe('a start racing the project deletion', () => {
  // The delete lands at different moments of the start: before the engine is asked, while the
  // network is being made, while the container is created, after it runs.
  it.each([0, 30, 120, 400])(
    'leaves nothing behind when the delete comes %i ms in',
    async (delayMs) => {
      const projectId = await createProject(t, alice, `race-${delayMs}`);
      const start = call(t.app, 'POST', `/api/containers/${projectId}/start`, {
        token: alice.token,
      });
      await new Promise((r) => setTimeout(r, delayMs));
      const removed = await call(t.app, 'DELETE', `/api/projects/${projectId}`, {
        token: alice.token,
      });
      expect(removed.status).toBe(204);
      const started = await start;
      // Either the start won (200, then the delete cleaned up) or it saw the project gone (404).
      expect([200, 202, 404, 503]).toContain(started.status);
      await eventually(async () => (await leftovers(projectId)).length === 0, 20_000).catch(
        () => undefined,
      );
      expect(await leftovers(projectId)).toEqual([]);
    },
    120_000,
  );
});
