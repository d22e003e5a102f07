/**
 * Provisioning `local` machines through the API (issue 14) against a baseline measured in the
 * same run: `docker network create` + `docker run -d` of the same number of containers (the
 * same image, in parallel), and `docker rm -f` + `docker network rm` beside destroy. Per machine
 * count (1, 3, 10) and run: POST /api/provision → `ready` and → every agent online, then
 * DELETE → `destroyed`. `BENCH_INFRA_RUNS` runs each (default 3; p50 of them), counts from
 * `BENCH_INFRA_MACHINES` (default `1,3,10`). Needs terraform and DOCKER_HOST (default: the test
 * engine). Loopback only; every wait is bounded.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../apps/server/src/db/index.ts';
import { api, startServer, timed, until } from './agent.ts';
import { summarise, type Result } from './results.ts';

const RUNS = Number(process.env.BENCH_INFRA_RUNS ?? 3);
const COUNTS = (process.env.BENCH_INFRA_MACHINES ?? '1,3,10').split(',').map(Number);
const DOCKER_HOST = process.env.DOCKER_HOST ?? 'unix:///tmp/vf-docker/docker.sock';
const IMAGE = 'vaporform/runtime:node';
const exec = promisify(execFile);

function docker(...args: string[]): Promise<unknown> {
  return exec('docker', args, { env: { ...process.env, DOCKER_HOST } });
}

/** What the baseline does for `n` machines: a network and `n` containers started. */
async function dockerRun(n: number, tag: string): Promise<string[]> {
  const network = `vf-bench-${tag}`;
  await docker('network', 'create', network);
  const names = Array.from({ length: n }, (_, i) => `vf-bench-${tag}-${i}`);
  await Promise.all(
    names.map((name) =>
      docker(
        'run',
        '-d',
        '--name',
        name,
        '--network',
        network,
        '--init',
        IMAGE,
        'sleep',
        'infinity',
      ),
    ),
  );
  return names;
}

async function dockerRemove(names: string[], tag: string): Promise<void> {
  await docker('rm', '-f', ...names);
  await docker('network', 'rm', `vf-bench-${tag}`);
}

/** Provision → ready → agents online, and destroy, per machine count; docker run/rm beside. */
export async function infrastructureBench(): Promise<Result[]> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'vf-bench-infra-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = await startServer(dataDir, port);
  const samples = new Map<string, number[]>();
  const add = (name: string, ms: number) => samples.set(name, [...(samples.get(name) ?? []), ms]);
  let current: string | undefined;
  let token = '';
  try {
    const email = `bench-infra-${Date.now()}@example.test`;
    const password = 'correct horse battery staple';
    await api(base, 'POST', '/api/auth/register', undefined, { email, password, name: 'Bench' });
    token = (await api(base, 'POST', '/api/auth/login', undefined, { email, password })).token;
    const { project } = await api(base, 'POST', '/api/projects', token, { name: 'Infra bench' });
    const get = async (id: string) =>
      (await api(base, 'GET', `/api/infrastructure/${id}`, token)).deployment;
    for (let run = 0; run < RUNS; run++) {
      for (const n of COUNTS) {
        const tag = `${run}-${n}-${Date.now()}`;
        let names: string[] = [];
        add(`docker run ×${n}`, await timed(async () => (names = await dockerRun(n, tag))));
        add(`docker rm ×${n}`, await timed(() => dockerRemove(names, tag)));

        const started = performance.now();
        const { deployment } = await api(base, 'POST', '/api/provision', token, {
          projectId: project.id,
          provider: 'local',
          machines: n,
        });
        current = deployment.id as string;
        const id = current;
        await until('ready', 900_000, async () => {
          const d = await get(id);
          if (d.status === 'failed') throw new Error(JSON.stringify(d.lastRun));
          return d.status === 'ready' ? d : undefined;
        });
        add(`provision ${n} → ready`, performance.now() - started);
        await until('agents online', 180_000, async () => {
          const d = await get(id);
          return d.machines.every((m: { agent: string }) => m.agent === 'online') ? d : undefined;
        });
        add(`provision ${n} → agents online`, performance.now() - started);
        add(
          `destroy ${n}`,
          await timed(async () => {
            await api(base, 'DELETE', `/api/infrastructure/${id}`, token);
            await until('destroyed', 600_000, async () => {
              const d = await get(id);
              if (d.status === 'failed') throw new Error(JSON.stringify(d.lastRun));
              return d.status === 'destroyed' ? d : undefined;
            });
          }),
        );
        current = undefined;
      }
    }
    const rows: Result[] = [];
    for (const n of COUNTS) {
      rows.push(
        summarise(`docker run ×${n} (+ network)`, samples.get(`docker run ×${n}`)!, 0, 0),
        summarise(`provision ${n} → ready`, samples.get(`provision ${n} → ready`)!, 0, 0),
        summarise(
          `provision ${n} → agents online`,
          samples.get(`provision ${n} → agents online`)!,
          0,
          0,
        ),
        summarise(`docker rm -f ×${n} (+ network)`, samples.get(`docker rm ×${n}`)!, 0, 0),
        summarise(`destroy ${n} → destroyed`, samples.get(`destroy ${n}`)!, 0, 0),
      );
    }
    return rows;
  } finally {
    if (current) {
      const id = current;
      await api(base, 'DELETE', `/api/infrastructure/${id}`, token).catch(() => undefined);
      await until('destroyed', 600_000, async () => {
        const d = (await api(base, 'GET', `/api/infrastructure/${id}`, token)).deployment;
        return ['destroyed', 'failed'].includes(d.status) ? d : undefined;
      }).catch(() => undefined);
    }
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
  }
}
