/**
 * Benchmarks, each compared with a baseline measured in the same invocation (absolute numbers
 * drift on shared machines; ratios do not as much).
 *
 *   npm run bench                 # all
 *   npm run bench -- projects     # just one
 *
 * Only loopback is targeted; every load run is bounded in time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { agentBench } from './agent.ts';
import { infrastructureBench } from './infrastructure.ts';
import { aiChangesetBench, aiTtftBench } from './ai.ts';
import { checkpointsBench } from './checkpoints.ts';
import { collabBench } from './collab.ts';
import { collabSocketBench } from './collab-socket.ts';
import { containersBench, densityBench } from './containers.ts';
import { topologyBench } from './topology.ts';
import { webFirstScreenBench } from './web.ts';
import type { Result } from './results.ts';
import { freePort } from '../apps/server/src/db/index.ts';

const root = path.resolve(import.meta.dirname, '..');
const DURATION_S = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 100);

/** Starts a Node child and resolves once `readyUrl` answers 200 (bounded: 120 s). */
async function startProcess(
  args: string[],
  env: Record<string, string>,
  readyUrl: string,
): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}:\n${stderr}`);
    try {
      if ((await fetch(readyUrl)).ok) return child;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  child.kill('SIGKILL');
  throw new Error(`not ready in 120 s:\n${stderr}`);
}

/**
 * `npm start` as an operator runs it, on a fresh data dir (embedded PostgreSQL unless
 * BENCH_DATABASE_URL is set), quiet logs.
 */
async function startVaporform(
  env: Record<string, string> = {},
): Promise<{ server: ChildProcess; port: number; dataDir: string }> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'vf-bench-'));
  const port = await freePort();
  const server = await startProcess(
    ['--import', 'tsx', 'apps/server/src/main.ts'],
    {
      PORT: String(port),
      VAPORFORM_DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      ...env,
      ...(process.env.BENCH_DATABASE_URL ? { DATABASE_URL: process.env.BENCH_DATABASE_URL } : {}),
    },
    `http://127.0.0.1:${port}/healthz`,
  );
  return { server, port, dataDir };
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.removeAllListeners('exit');
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 20_000).unref();
  });
}

async function load(
  name: string,
  url: string,
  headers: Record<string, string> = {},
): Promise<Result> {
  // Warm-up, then the measured run.
  await autocannon({ url, connections: 10, duration: 2, headers });
  const r = await autocannon({ url, connections: CONNECTIONS, duration: DURATION_S, headers });
  return {
    name,
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  };
}

async function json(url: string, init: RequestInit): Promise<any> {
  const res = await fetch(url, {
    ...init,
    headers: { 'content-type': 'application/json', ...init.headers },
  });
  if (!res.ok) throw new Error(`${init.method} ${url}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? undefined : res.json();
}

/** Authenticated GET /api/projects (10 projects) against bare Hono. */
async function projectsBench(): Promise<Result[]> {
  const barePort = await freePort();
  const bare = await startProcess(
    ['--import', 'tsx', 'bench/bare-hono.ts'],
    { PORT: String(barePort) },
    `http://127.0.0.1:${barePort}/`,
  );
  const baseline = await load('bare Hono hello-world', `http://127.0.0.1:${barePort}/`);
  await stop(bare);

  const { server, port, dataDir } = await startVaporform();
  try {
    const base = `http://127.0.0.1:${port}`;
    const { token } = await signIn(base);
    for (let i = 0; i < 10; i++) {
      await json(`${base}/api/projects`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body: JSON.stringify({
          name: `bench-${i}`,
          description: 'benchmark project',
          templateId: 'node-http',
        }),
      });
    }
    const measured = await load(
      'GET /api/projects (authenticated, 10 projects)',
      `${base}/api/projects`,
      {
        authorization: `Bearer ${token}`,
      },
    );
    return [baseline, measured];
  } finally {
    await stop(server);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * Seal + open of a 64-byte secret, in process: plain AES-256-GCM with one fixed key (baseline)
 * against the secrets service's sealed values (HKDF per-row key, AAD, text encoding).
 */
async function secretsBench(): Promise<Result[]> {
  const { createCipheriv, createDecipheriv, randomBytes } = await import('node:crypto');
  const { generateMasterKey, openValue, sealValue } =
    await import('../apps/server/src/services/secrets/index.ts');
  const seconds = Math.min(DURATION_S, 5);
  const plaintext = 'x'.repeat(64);
  const measure = (name: string, op: (i: number) => void): Result => {
    for (let i = 0; i < 2_000; i++) op(i); // warm-up
    const samples: number[] = [];
    const end = performance.now() + seconds * 1000;
    let ops = 0;
    while (performance.now() < end && ops < 50_000_000) {
      const t0 = performance.now();
      for (let i = 0; i < 100; i++) op(ops + i);
      samples.push((performance.now() - t0) / 100);
      ops += 100;
    }
    samples.sort((a, b) => a - b);
    const at = (q: number) => Number(samples[Math.floor(q * (samples.length - 1))]!.toFixed(4));
    return { name, rps: ops / seconds, p50: at(0.5), p99: at(0.99), errors: 0, non2xx: 0 };
  };
  const key = randomBytes(32);
  const baseline = measure('AES-256-GCM seal+open, one fixed key', () => {
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, nonce);
    const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
    const d = createDecipheriv('aes-256-gcm', key, nonce);
    d.setAuthTag(c.getAuthTag());
    Buffer.concat([d.update(ct), d.final()]).toString('utf8');
  });
  const master = generateMasterKey();
  const lookup = () => master;
  const sealed = measure('sealValue+openValue (HKDF per-row key, AAD, vf1 text)', (i) => {
    const context = `project_env_vars.value_encrypted:bench:VAR_${i % 1000}`;
    openValue(lookup, sealValue(master, plaintext, context), context);
  });
  return [baseline, sealed];
}

/**
 * Files: sequential PUT+GET round trips (100 B as the baseline, then 100 KB), listing and
 * searching a project of 10,000 files, and how long a change takes to reach a project WebSocket
 * as `file_changed`: through the API, and made inside the workspace (watcher → import → event).
 * One client, one request at a time: these are latencies, not throughput.
 */
async function filesBench(): Promise<Result[]> {
  const { writeFileSync } = await import('node:fs');
  const { WebSocket } = await import('ws');
  const { makeZip } = await import('../apps/server/test/zip-writer.ts');
  const seconds = Math.min(DURATION_S, 10);
  const { server, port, dataDir } = await startVaporform();
  const sockets: InstanceType<typeof WebSocket>[] = [];
  const servers = [{ server, dataDir }];
  try {
    const base = `http://127.0.0.1:${port}`;
    const { token, auth, newProject } = await signIn(base);

    /** Runs `op` one at a time for `seconds` (at most `max` times); latency percentiles. */
    const sequential = async (
      name: string,
      op: (i: number) => Promise<unknown>,
      max: number,
    ): Promise<Result> => {
      for (let i = 0; i < 10; i++) await op(-1 - i); // warm-up
      const samples: number[] = [];
      let errors = 0;
      const end = performance.now() + seconds * 1000;
      while (performance.now() < end && samples.length < max && errors < 20) {
        const t0 = performance.now();
        try {
          await op(samples.length);
          samples.push(performance.now() - t0);
        } catch {
          errors++;
        }
      }
      samples.sort((a, b) => a - b);
      const at = (q: number) => Number(samples[Math.floor(q * (samples.length - 1))]!.toFixed(2));
      const busy = samples.reduce((s, x) => s + x, 0) / 1000;
      return {
        name: `${name} (n=${samples.length}, p95 ${at(0.95)} ms)`,
        rps: samples.length / busy,
        p50: at(0.5),
        p99: at(0.99),
        errors,
        non2xx: 0,
      };
    };

    // ── PUT+GET ──
    const io = await newProject('bench-io');
    const line = 'export const value = computeSomething(input, options); // padding\n';
    const hundredKb = line.repeat(Math.ceil(100_000 / line.length)).slice(0, 100_000 - 16);
    const putGet = (content: string) => async (i: number) => {
      const url = `${base}/api/projects/${io}/files/src/file-${content.length}.ts`;
      await json(url, {
        method: 'PUT',
        headers: auth,
        body: JSON.stringify({ content: `// ${String(i).padStart(12)}\n${content}` }),
      });
      const res = await fetch(url, { headers: auth });
      if (!res.ok) throw new Error(`GET ${res.status}`);
      await res.json();
    };
    const baseline = await sequential('PUT+GET of a 100 B file', putGet('x'.repeat(84)), 3000);
    const big = await sequential('PUT+GET of a 100 KB file', putGet(hundredKb), 1500);

    // ── a project of 10,000 files ──
    const large = await newProject('bench-10k');
    const words = ['useState', 'fetchUser', 'render', 'config', 'items', 'result', 'handler'];
    const entries = Array.from({ length: 10_000 }, (_, i) => ({
      name: `src/module${Math.floor(i / 100)}/file${i}.ts`,
      data: Array.from(
        { length: 30 },
        (_, l) =>
          `export function ${words[(i + l) % words.length]}${i}_${l}(value: number) { return value * ${l}; }`,
      ).join('\n'),
    }));
    const imported = await fetch(`${base}/api/projects/${large}/import`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/zip' },
      body: new Uint8Array(makeZip(entries)),
    });
    if (!imported.ok) throw new Error(`import: ${imported.status} ${await imported.text()}`);
    const list = await sequential(
      'GET /files of 10,000 files',
      async () => {
        const res = await fetch(`${base}/api/projects/${large}/files`, { headers: auth });
        if (((await res.json()) as { files: unknown[] }).files.length !== 10_000)
          throw new Error('short list');
      },
      500,
    );
    const queries = ['fetchUser4242_7', 'handler77', 'useState', 'file9999.ts', 'module42', 'rend'];
    const search = await sequential(
      'GET /search in 10,000 files (identifier, prefix, common word, path)',
      async (i) => {
        const q = queries[Math.abs(i) % queries.length]!;
        const res = await fetch(`${base}/api/projects/${large}/search?q=${encodeURIComponent(q)}`, {
          headers: auth,
        });
        if (!res.ok) throw new Error(`search ${res.status}`);
        await res.json();
      },
      3000,
    );

    // ── change → file_changed on the project WebSocket ──
    const live = await newProject('bench-live');
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api/projects/${live}/ws?token=${token}`);
    sockets.push(ws);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const waiting = new Map<string, () => void>();
    ws.on('message', (raw) => {
      const m = JSON.parse(raw.toString()) as { type: string; data: { path: string } };
      if (m.type === 'file_changed') waiting.get(m.data.path)?.();
    });
    const eventAfter = (filePath: string, act: () => unknown) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no event in 10 s')), 10_000);
        waiting.set(filePath, () => {
          clearTimeout(timer);
          waiting.delete(filePath);
          resolve();
        });
        Promise.resolve()
          .then(act)
          .catch((err: unknown) => reject(err));
      });
    const viaApi = await sequential(
      'API PUT → file_changed on the WebSocket',
      (i) =>
        eventAfter(`api/${i}.txt`, () =>
          json(`${base}/api/projects/${live}/files/api/${i}.txt`, {
            method: 'PUT',
            headers: auth,
            body: JSON.stringify({ content: `change ${i}` }),
          }),
        ),
      300,
    );
    const workspace = path.join(dataDir, 'workspaces', live);
    const viaDisk = await sequential(
      'workspace write → file_changed on the WebSocket',
      (i) =>
        eventAfter(`disk-${i}.txt`, () =>
          writeFileSync(path.join(workspace, `disk-${i}.txt`), `change ${i}`),
        ),
      200,
    );

    // ── the same with VAPORFORM_WORKSPACE_WATCH=poll (a data dir on a network volume) ──
    // A second server polling workspaces: a running project's every 2 s, the stopped
    // 10,000-file project's once a minute. How long a write inside the running project's
    // workspace takes to be noticed, and what the polling costs over a minute.
    await stop(server);
    const polling = await startVaporform({ VAPORFORM_WORKSPACE_WATCH: 'poll' });
    servers.push(polling);
    const pollBase = `http://127.0.0.1:${polling.port}`;
    const other = await signIn(pollBase);
    const polled = await other.newProject('bench-10k-polled');
    const importedAgain = await fetch(`${pollBase}/api/projects/${polled}/import`, {
      method: 'POST',
      headers: { ...other.auth, 'content-type': 'application/zip' },
      body: new Uint8Array(makeZip(entries)),
    });
    if (!importedAgain.ok) throw new Error(`import: ${importedAgain.status}`);
    const pollLive = await other.newProject('bench-live-polled', 'node-http');
    await json(`${pollBase}/api/containers/${pollLive}/start?wait=true`, {
      method: 'POST',
      headers: other.auth,
    });
    const pollWs = new WebSocket(
      `ws://127.0.0.1:${polling.port}/api/projects/${pollLive}/ws?token=${other.token}`,
    );
    sockets.push(pollWs);
    await new Promise((resolve, reject) => pollWs.once('open', resolve).once('error', reject));
    pollWs.on('message', (raw) => {
      const m = JSON.parse(raw.toString()) as { type: string; data: { path: string } };
      if (m.type === 'file_changed') waiting.get(m.data.path)?.();
    });
    // Idle: only the polling runs (the small project's 30 times, the 10,000 files once), 60 s.
    await new Promise((r) => setTimeout(r, 5_000));
    const cpuBefore = processCpuSeconds(polling.server.pid!);
    await new Promise((r) => setTimeout(r, 60_000));
    const idleCpu = (processCpuSeconds(polling.server.pid!) - cpuBefore) / 60;
    const pollWorkspace = path.join(polling.dataDir, 'workspaces', pollLive);
    const viaPoll = await sequential(
      `workspace write → file_changed, polled (running project every 2 s, a stopped 10,000-file one every 60 s: ${(idleCpu * 100).toFixed(1)} % of a core)`,
      (i) =>
        eventAfter(`disk-${i}.txt`, () =>
          writeFileSync(path.join(pollWorkspace, `disk-${i}.txt`), `change ${i}`),
        ),
      12,
    );
    return [baseline, big, list, search, viaApi, viaDisk, viaPoll];
  } finally {
    for (const ws of sockets) ws.terminate();
    for (const s of servers) {
      await stop(s.server);
      rmSync(s.dataDir, { recursive: true, force: true });
    }
  }
}

/** A new account on `base`, signed in; `newProject(name)` makes one of its projects. */
async function signIn(base: string) {
  const email = `bench${Date.now()}@example.test`;
  await json(`${base}/api/auth/register`, {
    method: 'POST',
    body: JSON.stringify({ email, password: 'bench password 1', name: 'Bench' }),
  });
  const { token } = (await json(`${base}/api/auth/login`, {
    method: 'POST',
    body: JSON.stringify({ email, password: 'bench password 1' }),
  })) as { token: string };
  const auth = { authorization: `Bearer ${token}` };
  const newProject = async (name: string, templateId?: string): Promise<string> =>
    (
      await json(`${base}/api/projects`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ name, ...(templateId ? { templateId } : {}) }),
      })
    ).project.id;
  return { token, auth, newProject };
}

/** CPU seconds (user + system) a process has used so far (Linux: /proc/<pid>/stat). */
function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the line (11 and 12 after the name), in ticks.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const benches: Record<string, () => Promise<Result[]>> = {
  projects: projectsBench,
  'ai-ttft': aiTtftBench,
  'ai-changeset': aiChangesetBench,
  checkpoints: checkpointsBench,
  agent: agentBench,
  infrastructure: infrastructureBench,
  collab: collabBench,
  'collab-socket': collabSocketBench,
  containers: containersBench,
  density: densityBench,
  secrets: secretsBench,
  files: filesBench,
  web: webFirstScreenBench,
  topology: topologyBench,
};

const only = process.argv.slice(2);
console.log(`# Vaporform benchmarks — ${new Date().toISOString()}`);
console.log(
  `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
);
console.log(`load: autocannon, ${CONNECTIONS} connections, ${DURATION_S} s after a 2 s warm-up\n`);
for (const [name, bench] of Object.entries(benches)) {
  if (only.length && !only.includes(name)) continue;
  const [baseline, ...rest] = await bench();
  if (!baseline) continue; // a bench that printed its own tables (e.g. collab-socket's memory part)
  console.log(`## ${name}\n`);
  console.log('| run | req/s | p50 ms | p99 ms | errors | non-2xx | ratio to baseline |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of [baseline!, ...rest]) {
    console.log(
      `| ${r.name} | ${Math.round(r.rps)} | ${r.p50} | ${r.p99} | ${r.errors} | ${r.non2xx} | ${((r.rps / baseline!.rps) * 100).toFixed(1)} % |`,
    );
  }
  console.log();
}
