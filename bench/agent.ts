/**
 * The machine agent (issue 15) on `local` machines of the test Docker engine, against a baseline
 * measured in the same run: `docker exec` of the same command in the same containers (one
 * `docker exec` per machine, in parallel). Rows:
 *   - baseline: `docker exec <machine> sh -c 'echo hi'` on 1 machine;
 *   - command ×1, ×3, ×10: POST …/command `echo hi` on 1, 3 and 10 machines (request → all
 *     results), beside docker exec ×3 and ×10;
 *   - the same sent to a second instance (same PostgreSQL and Redis) that relays them to the
 *     first, where the agents are connected;
 *   - provision → agents online: POST /api/provision of 10 machines → every agent online (one
 *     sample), and apply ready → online;
 *   - deploy: POST …/deploy of the node-http template → every machine answers (one sample ×2).
 * Needs terraform and DOCKER_HOST (default: the test engine). Loopback only; loops bounded.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createLogger } from '../apps/server/src/common/logger.ts';
import { freePort, startEmbeddedPostgres } from '../apps/server/src/db/index.ts';
import { startRedis } from '../apps/server/test/redis.ts';
import { summarise, type Result } from './results.ts';

const root = path.resolve(import.meta.dirname, '..');
const RUNS = Number(process.env.BENCH_AGENT_RUNS ?? 30);
const MACHINES = Number(process.env.BENCH_AGENT_MACHINES ?? 10);
const DOCKER_HOST = process.env.DOCKER_HOST ?? 'unix:///tmp/vf-docker/docker.sock';
const run = promisify(execFile);

/** The real server (`src/main.ts`) on `dataDir`, with the test Docker engine. */
export async function startServer(
  dataDir: string,
  port: number,
  env: Record<string, string> = {},
): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'apps/server/src/main.ts'], {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      VAPORFORM_DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      VAPORFORM_RUNTIME: 'process',
      DOCKER_HOST,
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited: ${stderr}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) return child;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  child.kill('SIGKILL');
  throw new Error(`server not ready in 180 s: ${stderr}`);
}

/** A JSON API call; throws on a non-2xx answer. */
export async function api(
  base: string,
  method: string,
  url: string,
  token?: string,
  body?: unknown,
) {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : undefined;
}

/** Polls `probe` until it returns a value (bounded by `timeoutMs`). */
export async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

function dockerExec(names: string[]): Promise<unknown> {
  return Promise.all(
    names.map((name) =>
      run('docker', ['exec', name, 'sh', '-c', 'echo hi'], {
        env: { ...process.env, DOCKER_HOST },
      }),
    ),
  );
}

/** How long `fn` takes, in ms. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

/** Fan-out latency of the agent vs docker exec, provisioning and deploy time. */
export async function agentBench(): Promise<Result[]> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'vf-bench-agent-'));
  const otherDir = mkdtempSync(path.join(tmpdir(), 'vf-bench-agent-b-'));
  // Two instances of one deployment (one PostgreSQL, one Redis, the same keys): the agents
  // connect to the first (its gateway); `relayed` rows send the commands to the second.
  const pgDir = mkdtempSync(path.join(tmpdir(), 'vf-bench-agent-pg-'));
  chmodSync(pgDir, 0o755); // as root, PostgreSQL runs as the postgres user
  const database = await startEmbeddedPostgres(path.join(pgDir, 'pg'), createLogger('silent'));
  const redis = await startRedis();
  const shared = {
    DATABASE_URL: database.url,
    REDIS_URL: redis.url,
    JWT_SECRET: randomBytes(32).toString('hex'),
    VAPORFORM_MASTER_KEY: randomBytes(32).toString('hex'),
  };
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = await startServer(dataDir, port, shared);
  const otherPort = await freePort();
  const other = `http://127.0.0.1:${otherPort}`;
  const second = await startServer(otherDir, otherPort, shared);
  let deploymentId: string | undefined;
  let token = '';
  try {
    const email = `bench-${Date.now()}@example.test`;
    const password = 'correct horse battery staple';
    await api(base, 'POST', '/api/auth/register', undefined, { email, password, name: 'Bench' });
    token = (await api(base, 'POST', '/api/auth/login', undefined, { email, password })).token;
    const { project } = await api(base, 'POST', '/api/projects', token, {
      name: 'Agent bench',
      templateId: 'node-http',
    });
    const provisionStarted = performance.now();
    const { deployment } = await api(base, 'POST', '/api/provision', token, {
      projectId: project.id,
      provider: 'local',
      machines: MACHINES,
    });
    deploymentId = deployment.id as string;
    const get = async () =>
      (await api(base, 'GET', `/api/infrastructure/${deploymentId}`, token)).deployment;
    const ready = await until('ready', 900_000, async () => {
      const d = await get();
      if (d.status === 'failed') throw new Error(JSON.stringify(d.lastRun));
      return d.status === 'ready' ? d : undefined;
    });
    const readyMs = performance.now() - provisionStarted;
    await until('agents online', 120_000, async () => {
      const d = await get();
      return d.machines.every((m: any) => m.agent === 'online') ? d : undefined;
    });
    const onlineMs = performance.now() - provisionStarted;
    const names: string[] = ready.machines.map((m: any) => m.name);

    const samples = new Map<string, number[]>();
    const add = (name: string, ms: number) => samples.set(name, [...(samples.get(name) ?? []), ms]);
    for (let i = 0; i < RUNS; i++) {
      for (const n of [1, 3, MACHINES]) {
        const subset = names.slice(0, n);
        add(`docker exec ×${n}`, await timed(() => dockerExec(subset)));
        for (const [label, via] of [
          [`command ×${n}`, base],
          [`relayed ×${n}`, other],
        ] as const) {
          add(
            label,
            await timed(async () => {
              const out = await api(
                via,
                'POST',
                `/api/infrastructure/${deploymentId}/command`,
                token,
                { command: 'echo hi', machines: subset },
              );
              if (out.results.some((r: any) => r.status !== 'succeeded')) {
                throw new Error(JSON.stringify(out.results));
              }
            }),
          );
        }
      }
    }

    const deploys: number[] = [];
    for (let i = 0; i < 2; i++) {
      deploys.push(
        await timed(async () => {
          const { deploy } = await api(
            base,
            'POST',
            `/api/infrastructure/${deploymentId}/deploy`,
            token,
          );
          await until('deploy', 300_000, async () => {
            const { deploys: list } = await api(
              base,
              'GET',
              `/api/infrastructure/${deploymentId}/deploys`,
              token,
            );
            const d = list.find((x: any) => x.id === deploy.id);
            if (d.status === 'running') return undefined;
            if (d.status !== 'succeeded') throw new Error(JSON.stringify(d.results));
            return d;
          });
        }),
      );
    }
    const baseline = summarise(
      'baseline: docker exec ×1 (echo hi)',
      samples.get('docker exec ×1')!,
    );
    return [
      baseline,
      summarise('command ×1 (agent)', samples.get('command ×1')!),
      summarise('docker exec ×3', samples.get('docker exec ×3')!),
      summarise('command ×3 (agent)', samples.get('command ×3')!),
      summarise(`docker exec ×${MACHINES}`, samples.get(`docker exec ×${MACHINES}`)!),
      summarise(`command ×${MACHINES} (agent)`, samples.get(`command ×${MACHINES}`)!),
      ...[1, 3, MACHINES].map((n) =>
        summarise(
          `command ×${n} via another instance (Redis relay)`,
          samples.get(`relayed ×${n}`)!,
        ),
      ),
      summarise(`provision ${MACHINES} → ready`, [readyMs], 0, 0),
      summarise(`provision ${MACHINES} → all agents online`, [onlineMs], 0, 0),
      summarise(`deploy node-http → ${MACHINES} machines answer`, deploys, 0, 0),
    ];
  } finally {
    if (deploymentId) {
      await api(base, 'DELETE', `/api/infrastructure/${deploymentId}`, token).catch(
        () => undefined,
      );
      await until('destroyed', 600_000, async () => {
        const d = (await api(base, 'GET', `/api/infrastructure/${deploymentId}`, token)).deployment;
        return ['destroyed', 'failed'].includes(d.status) ? d : undefined;
      }).catch(() => undefined);
    }
    for (const child of [second, server]) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    await redis.stop();
    await database.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(otherDir, { recursive: true, force: true });
    rmSync(pgDir, { recursive: true, force: true });
  }
}
