/**
 * Checkpoints and forks of a 1,000-file project (issue 16), against a baseline measured in the
 * same run: creating an empty project (the floor of a fork). Rows:
 *   - checkpoint: POST …/checkpoints (1,000 files recorded by version);
 *   - restore: POST …/checkpoints/:id/restore where all 1,000 files differ (1,000 new versions
 *     in one transaction, plus the checkpoint made before it), until its answer, and until the
 *     workspace on disk holds every restored file (written after the answer, in the project's
 *     lane; the next run starts once it is there), and until a member's project socket hears
 *     of it: one `files_changed` event for all 1,000 files (its size in the row's name; the
 *     run fails if any per-file `file_changed` of the restore arrives);
 *   - fork: POST …/fork (1,000 files copied inside the database).
 * Loopback only; every loop is bounded in count.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import { makeZip } from '../apps/server/test/zip-writer.ts';
import { freePort } from '../apps/server/src/db/index.ts';
import { summarise, type Result } from './results.ts';

const root = path.resolve(import.meta.dirname, '..');
const FILES = 1000;
const RUNS = Number(process.env.BENCH_CHECKPOINT_RUNS ?? 10);

async function startServer(dataDir: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'apps/server/src/main.ts'], {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      VAPORFORM_DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      VAPORFORM_RUNTIME: 'process',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 120_000;
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
  throw new Error(`server not ready in 120 s: ${stderr}`);
}

async function api(
  base: string,
  method: string,
  url: string,
  token?: string,
  body?: unknown,
): Promise<any> {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body instanceof Buffer
        ? { 'content-type': 'application/zip' }
        : body !== undefined
          ? { 'content-type': 'application/json' }
          : {}),
    },
    body:
      body instanceof Buffer
        ? new Uint8Array(body)
        : body === undefined
          ? undefined
          : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : undefined;
}

function project(tag: string): Buffer {
  return makeZip(
    Array.from({ length: FILES }, (_, i) => ({
      name: `src/module${Math.floor(i / 50)}/file${i}.ts`,
      data: `// ${tag} ${i}\nexport const value${i} = ${JSON.stringify(tag)};\n${'// padding\n'.repeat(40)}`,
    })),
  );
}

/** Resolves once every file of the workspace on disk is the `tag` version (bounded: 120 s). */
async function onDisk(dataDir: string, projectId: string, tag: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  let next = 0;
  while (Date.now() < deadline) {
    for (; next < FILES; next++) {
      const file = path.join(
        dataDir,
        'workspaces',
        projectId,
        `src/module${Math.floor(next / 50)}/file${next}.ts`,
      );
      let text = '';
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        // not there yet
      }
      if (!text.startsWith(`// ${tag} ${next}\n`)) break;
    }
    if (next === FILES) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`the workspace did not reach ${tag} in 120 s`);
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

/** Checkpoint, restore and fork of a 1,000-file project. */
export async function checkpointsBench(): Promise<Result[]> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'vf-bench-cp-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = await startServer(dataDir, port);
  try {
    const email = `bench-${Date.now()}@example.test`;
    await api(base, 'POST', '/api/auth/register', undefined, {
      email,
      password: 'correct horse battery staple',
      name: 'Bench',
    });
    const { token } = await api(base, 'POST', '/api/auth/login', undefined, {
      email,
      password: 'correct horse battery staple',
    });
    const { project: p } = await api(base, 'POST', '/api/projects', token, {
      name: 'Thousand files',
      description: 'bench',
    });
    await api(base, 'POST', `/api/projects/${p.id}/import`, token, project('a'));
    const a = (await api(base, 'POST', `/api/projects/${p.id}/checkpoints`, token, { name: 'a' }))
      .checkpoint.id as string;
    await api(base, 'POST', `/api/projects/${p.id}/import`, token, project('b'));
    const b = (await api(base, 'POST', `/api/projects/${p.id}/checkpoints`, token, { name: 'b' }))
      .checkpoint.id as string;
    await onDisk(dataDir, p.id, 'b');

    // A member's project socket: what a restore tells the IDE.
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api/projects/${p.id}/ws?token=${token}`);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    let heard: (() => void) | undefined;
    const told = { perFile: 0, summaries: 0, bytes: 0 };
    ws.on('message', (raw: Buffer) => {
      const m = JSON.parse(raw.toString()) as { type: string; data: { source?: string } };
      // The restore writes as `user`; the watcher's echoes of the disk writes are not its own.
      if (m.type === 'file_changed' && m.data.source === 'user') told.perFile++;
      if (m.type === 'files_changed' && m.data.source === 'user') {
        told.summaries++;
        told.bytes = raw.length;
        heard?.();
      }
    });

    const baseline: number[] = [];
    const checkpoint: number[] = [];
    const restore: number[] = [];
    const restoreOnDisk: number[] = [];
    const restoreHeard: number[] = [];
    const fork: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      baseline.push(
        await timed(() =>
          api(base, 'POST', '/api/projects', token, { name: `empty ${i}`, description: '' }),
        ),
      );
      checkpoint.push(
        await timed(() =>
          api(base, 'POST', `/api/projects/${p.id}/checkpoints`, token, { name: `run ${i}` }),
        ),
      );
      const started = performance.now();
      const announced = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no files_changed in 60 s')), 60_000);
        heard = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      restore.push(
        await timed(async () => {
          const r = await api(
            base,
            'POST',
            `/api/projects/${p.id}/checkpoints/${i % 2 === 0 ? a : b}/restore`,
            token,
          );
          if (r.restored.files.length !== FILES) throw new Error('restore changed too little');
        }),
      );
      await announced;
      restoreHeard.push(performance.now() - started);
      await onDisk(dataDir, p.id, i % 2 === 0 ? 'a' : 'b');
      restoreOnDisk.push(performance.now() - started);
      // The watcher sees those writes come back; let it finish before the next run.
      await new Promise((r) => setTimeout(r, 500));
      fork.push(
        await timed(async () => {
          const r = await api(base, 'POST', `/api/projects/${p.id}/fork`, token, {
            name: `fork ${i}`,
          });
          if (r.project.totalFiles !== FILES) throw new Error('fork copied too little');
        }),
      );
    }
    ws.close();
    if (told.perFile > 0 || told.summaries !== RUNS) {
      throw new Error(
        `a restore sent ${told.perFile} file_changed, ${told.summaries} files_changed`,
      );
    }
    return [
      summarise('baseline: create an empty project', baseline),
      summarise(`checkpoint of ${FILES} files`, checkpoint),
      summarise(`restore of ${FILES} changed files (+ its undo checkpoint)`, restore),
      summarise(
        `… until members hear it (1 files_changed event of ${(told.bytes / 1024).toFixed(0)} KiB, 0 file_changed)`,
        restoreHeard,
      ),
      summarise(`… until the workspace on disk holds all ${FILES}`, restoreOnDisk),
      summarise(`fork of ${FILES} files`, fork),
    ];
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
  }
}
