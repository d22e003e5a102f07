/**
 * Containers, warm pool, preview and density on the test Docker engine (apps/server/test/docker.ts),
 * each against a baseline measured in the same run:
 *   - cold start of a project (POST start?wait=true: network, container, dev server answering)
 *     vs `docker run` of the same image, mount and command, timed the same way (target ≤ 1.3×);
 *   - a warm-pool start (target < 100 ms p50) and its time to the first answer;
 *   - save → new content served through the preview proxy (target < 300 ms p50), vs a direct
 *     request to the dev server;
 *   - idle project containers on this machine with the API still answering (seed: 100+).
 * Loopback only; every loop is bounded in count and time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { freemem, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { useTestDocker } from '../apps/server/test/docker.ts';
import { percentile, type Result } from './results.ts';
import { freePort } from '../apps/server/src/db/index.ts';

const root = path.resolve(import.meta.dirname, '..');
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 7);
const WARM_RUNS = Number(process.env.BENCH_WARM_RUNS ?? 10);
const SAVE_RUNS = Number(process.env.BENCH_SAVE_RUNS ?? 30);
const DENSITY = Number(process.env.BENCH_DENSITY ?? 100);
const DENSITY_LIMIT_MS = 15 * 60_000;

const devServer = `import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
createServer(async (req, res) => res.end(await readFile('index.html').catch(() => 'none')))
  .listen(Number(process.env.PORT ?? 3000), '0.0.0.0');
`;

function row(name: string, ms: number[], errors = 0): Result {
  const p50 = percentile(ms, 50);
  return {
    name,
    rps: 1000 / p50,
    p50: Math.round(p50 * 10) / 10,
    p99: Math.round(percentile(ms, 99) * 10) / 10,
    errors,
    non2xx: 0,
  };
}

function get(
  port: number,
  pathname: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: pathname, headers, agent: false });
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function until<T>(probe: () => Promise<T | undefined>, limitMs: number): Promise<T> {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`not within ${limitMs} ms`);
}

interface Server {
  base: string;
  port: number;
  dataDir: string;
  token: string;
  child: ChildProcess;
  api(method: string, url: string, body?: unknown): Promise<any>;
  stop(): Promise<void>;
}

/** The real server (main.ts) on the test engine, with a signed-in user. */
async function startServer(dockerHost: string, env: Record<string, string>): Promise<Server> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'vf-bench-containers-'));
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'apps/server/src/main.ts'], {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      VAPORFORM_DATA_DIR: dataDir,
      VAPORFORM_PUBLIC_URL: `http://localhost:${port}`,
      DOCKER_HOST: dockerHost,
      VAPORFORM_RUNTIME: 'docker',
      VAPORFORM_STATS_SECONDS: '0',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const base = `http://127.0.0.1:${port}`;
  await until(async () => ((await fetch(`${base}/healthz`)).ok ? true : undefined), 120_000).catch(
    (err: Error) => {
      child.kill('SIGKILL');
      throw new Error(`${err.message}\n${stderr}`);
    },
  );
  let token = '';
  const api = async (method: string, url: string, body?: unknown): Promise<any> => {
    const res = await fetch(`${base}${url}`, {
      method,
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${await res.text()}`);
    return res.status === 204 ? undefined : res.json();
  };
  const email = `bench${Date.now()}@example.test`;
  await api('POST', '/api/auth/register', { email, password: 'bench password 1', name: 'Bench' });
  token = (await api('POST', '/api/auth/login', { email, password: 'bench password 1' })).token;
  return {
    base,
    port,
    dataDir,
    token,
    child,
    api,
    async stop() {
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 20_000).unref();
      });
    },
  };
}

/** Removes what a bench server left on the engine (its containers and networks, by data dir). */
async function cleanup(docker: Docker, server: Server): Promise<void> {
  for (const c of await docker.listContainers({
    all: true,
    filters: { label: ['vaporform.managed'] },
  })) {
    if (!c.Mounts.some((m) => m.Source?.startsWith(server.dataDir))) continue;
    const info = await docker.getContainer(c.Id).inspect();
    await docker.getContainer(c.Id).remove({ force: true });
    for (const net of Object.keys(info.NetworkSettings.Networks)) {
      if (net.startsWith('vf-'))
        await docker
          .getNetwork(net)
          .remove()
          .catch(() => undefined);
    }
  }
  const { execFileSync } = await import('node:child_process');
  try {
    execFileSync('umount', ['-l', path.join(server.dataDir, 'warm-pool')], { stdio: 'ignore' });
  } catch {
    // no pool mount
  }
  rmSync(server.dataDir, { recursive: true, force: true });
}

async function newProject(server: Server, name: string): Promise<string> {
  const { project } = await server.api('POST', '/api/projects', {
    name,
    description: 'benchmark',
    templateId: 'node-http',
  });
  return project.id as string;
}

/** Cold start vs `docker run`, warm pool, save → preview. */
export async function containersBench(): Promise<Result[]> {
  const { docker, dockerHost, image } = await useTestDocker();
  const results: Result[] = [];

  // Baseline: docker run of the same image, workspace and command, until it answers.
  const baseDir = mkdtempSync(path.join(tmpdir(), 'vf-bench-docker-run-'));
  mkdirSync(path.join(baseDir, 'app'));
  writeFileSync(path.join(baseDir, 'app', 'server.mjs'), devServer);
  writeFileSync(path.join(baseDir, 'app', 'index.html'), 'hello');
  const raw: number[] = [];
  for (let i = 0; i < COLD_RUNS; i++) {
    const started = performance.now();
    // This engine has no default bridge: the baseline gets a network of its own, like a project.
    const network = await docker.createNetwork({ Name: `vf-bench-run-${i}-${Date.now()}` });
    const container = await docker.createContainer({
      Image: image,
      Cmd: ['node', 'server.mjs'],
      WorkingDir: '/app',
      Env: ['PORT=3000'],
      ExposedPorts: { '3000/tcp': {} },
      Labels: { 'vaporform.bench': 'docker-run' },
      HostConfig: {
        Binds: [`${path.join(baseDir, 'app')}:/app`],
        PortBindings: { '3000/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] },
        NetworkMode: network.id,
      },
    });
    await container.start();
    const info = await container.inspect();
    const port = Number(info.NetworkSettings.Ports['3000/tcp']![0]!.HostPort);
    await until(async () => ((await get(port, '/')).status === 200 ? true : undefined), 30_000);
    raw.push(performance.now() - started);
    await container.remove({ force: true });
    await docker.getNetwork(network.id).remove();
  }
  rmSync(baseDir, { recursive: true, force: true });
  results.push(row('docker run (create network + container, start, first answer)', raw));

  const cold = await startServer(dockerHost, { VAPORFORM_RECONCILE_SECONDS: '0' });
  try {
    const times: number[] = [];
    for (let i = 0; i < COLD_RUNS; i++) {
      const id = await newProject(cold, `cold-${i}`);
      const started = performance.now();
      const { container } = await cold.api('POST', `/api/containers/${id}/start?wait=true`);
      const port = container.ports['3000'];
      await until(async () => ((await get(port, '/')).status === 200 ? true : undefined), 30_000);
      times.push(performance.now() - started);
      await cold.api('DELETE', `/api/projects/${id}`);
    }
    results.push(row('Vaporform cold start (POST start?wait=true → answering)', times));

    // Save → preview: PUT the file through the API, poll the preview until it serves it.
    const id = await newProject(cold, 'save-preview');
    await cold.api('POST', `/api/containers/${id}/start?wait=true`);
    const { url } = await cold.api('POST', `/api/projects/${id}/preview-token`);
    const host = `${id}.preview.localhost:${cold.port}`;
    const exchange = new URL(url as string);
    const auth = await get(cold.port, exchange.pathname + exchange.search, { host });
    const cookie = String((auth.headers['set-cookie'] as string[])[0]).split(';')[0]!;
    const { container } = await cold.api('GET', `/api/containers/${id}`);
    const direct: number[] = [];
    const saved: number[] = [];
    for (let i = 0; i < SAVE_RUNS; i++) {
      const started = performance.now();
      await get(container.ports['3000'], '/');
      direct.push(performance.now() - started);
    }
    for (let i = 0; i < SAVE_RUNS; i++) {
      const content = `<h1>version ${i} ${Date.now()}</h1>`;
      const started = performance.now();
      await cold.api('PUT', `/api/projects/${id}/files/index.html`, { content });
      await until(async () => {
        const res = await get(cold.port, '/', { host, cookie });
        return res.body === content ? true : undefined;
      }, 10_000);
      saved.push(performance.now() - started);
    }
    results.push(row('GET / straight to the dev server (no proxy, no save)', direct));
    results.push(row('save (PUT file) → new content through the preview proxy', saved));
    await cold.api('DELETE', `/api/projects/${id}`);
  } finally {
    await cold.stop();
    await cleanup(docker, cold);
  }

  const warm = await startServer(dockerHost, {
    VAPORFORM_RECONCILE_SECONDS: '0',
    VAPORFORM_WARM_POOL_SIZE: '3',
  });
  try {
    const api: number[] = [];
    const firstAnswer: number[] = [];
    for (let i = 0; i < WARM_RUNS; i++) {
      const id = await newProject(warm, `warm-${i}`);
      // Wait for the pool to be full again (it refills in the background).
      await until(async () => {
        const ready = await docker.listContainers({ filters: { label: ['vaporform.pool'] } });
        const ours = ready.filter(
          (c) =>
            c.Names.some((n) => n.startsWith('/vf-pool-')) &&
            c.Mounts.some((m) => m.Source?.startsWith(warm.dataDir)),
        );
        return ours.length >= 3 ? true : undefined;
      }, 60_000);
      const started = performance.now();
      const { container } = await warm.api('POST', `/api/containers/${id}/start`);
      api.push(performance.now() - started);
      if (!container.pooled) throw new Error('the start did not use the warm pool');
      await until(
        async () => ((await get(container.ports['3000'], '/')).status === 200 ? true : undefined),
        30_000,
      );
      firstAnswer.push(performance.now() - started);
      await warm.api('DELETE', `/api/projects/${id}`);
    }
    results.push(row('warm-pool start (POST start → container running)', api));
    results.push(row('warm-pool start → dev server answering', firstAnswer));
  } finally {
    await warm.stop();
    await cleanup(docker, warm);
  }
  const ratio = results[1]!.p50 / results[0]!.p50;
  console.log(`cold start / docker run (p50): ${ratio.toFixed(2)}× (target ≤ 1.3×)`);
  return results;
}

/** Idle project containers this machine holds with the API still answering. */
export async function densityBench(): Promise<Result[]> {
  const { docker, dockerHost } = await useTestDocker();
  const server = await startServer(dockerHost, { VAPORFORM_RECONCILE_SECONDS: '0' });
  const apiLatency = async () => {
    const ms: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      await server.api('GET', '/api/projects');
      ms.push(performance.now() - started);
    }
    return ms;
  };
  try {
    const baseline = row('GET /api/projects, no project running', await apiLatency());
    const deadline = Date.now() + DENSITY_LIMIT_MS;
    const memBefore = totalmem() - freemem();
    let running = 0;
    let failures = 0;
    for (let i = 0; i < DENSITY && Date.now() < deadline; i++) {
      const id = await newProject(server, `dense-${i}`);
      try {
        await server.api('POST', `/api/containers/${id}/start?wait=true`);
        running++;
      } catch (err) {
        failures++;
        console.error(`project ${i}: ${(err as Error).message.slice(0, 200)}`);
        if (failures > 5) break;
      }
    }
    const { containers } = await server.api('GET', '/api/containers');
    const healthy = containers.filter((c: any) => c.health === 'healthy').length;
    const loaded = row(
      `GET /api/projects with ${running} idle project containers (${healthy} healthy)`,
      await apiLatency(),
      failures,
    );
    const perContainer = (totalmem() - freemem() - memBefore) / Math.max(1, running) / 2 ** 20;
    console.log(
      `density: ${running} running (${healthy} answering), ~${perContainer.toFixed(0)} MiB each`,
    );
    return [baseline, loaded];
  } finally {
    await server.stop();
    await cleanup(docker, server);
  }
}
