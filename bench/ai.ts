/**
 * The AI assistant against the local fake Anthropic API (apps/server/test/fakes), each against
 * a baseline measured in the same run:
 *   - time to first token: the chat route's first `text` event vs the same streamed request
 *     made directly with @anthropic-ai/sdk (server overhead target < 10 ms);
 *   - a 100-file changeset: one AI turn writing 100 files (tools, versions, changeset, diffs),
 *     and its revert, vs the same 100 files written with 100 PUT requests.
 * Loopback only; every loop is bounded in count.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { startFakeAnthropic } from '../apps/server/test/fakes/anthropic.ts';
import { summarise, type Result } from './results.ts';

const root = path.resolve(import.meta.dirname, '..');
const TTFT_RUNS = Number(process.env.BENCH_TTFT_RUNS ?? 100);
const CHANGESET_RUNS = Number(process.env.BENCH_CHANGESET_RUNS ?? 5);
const FILES = 100;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function startServer(env: Record<string, string>, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'apps/server/src/main.ts'], {
    cwd: root,
    env: { ...process.env, ...env, PORT: String(port), LOG_LEVEL: 'warn' },
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

async function api(base: string, method: string, url: string, token?: string, body?: unknown) {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

interface Session {
  base: string;
  token: string;
  projectId: string;
  fake: Awaited<ReturnType<typeof startFakeAnthropic>>;
}

/** A server on an embedded database, the fake provider, a user and a node-http project. */
async function withServer<T>(fn: (s: Session) => Promise<T>): Promise<T> {
  const fake = await startFakeAnthropic();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'vf-bench-ai-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = await startServer(
    {
      VAPORFORM_DATA_DIR: dataDir,
      ANTHROPIC_API_KEY: 'sk-ant-bench',
      ANTHROPIC_BASE_URL: fake.url,
      VAPORFORM_RUNTIME: 'process',
      ...(process.env.BENCH_DATABASE_URL ? { DATABASE_URL: process.env.BENCH_DATABASE_URL } : {}),
    },
    port,
  );
  try {
    const email = `bench-ai-${Date.now()}@example.test`;
    await api(base, 'POST', '/api/auth/register', undefined, {
      email,
      password: 'bench password 1',
      name: 'Bench',
    });
    const { token } = await api(base, 'POST', '/api/auth/login', undefined, {
      email,
      password: 'bench password 1',
    });
    const project = await api(base, 'POST', '/api/projects', token, {
      name: 'AI bench',
      templateId: 'node-http',
    });
    return await fn({ base, token, projectId: project.project.id as string, fake });
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    await fake.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Time to first token: the chat route vs the SDK straight to the fake provider. */
export function aiTtftBench(): Promise<Result[]> {
  return withServer(async ({ base, token, projectId, fake }) => {
    fake.script(() => ({ text: 'Hello there, this is a streamed answer from the fake model.' }));
    const client = new Anthropic({ apiKey: 'sk-ant-bench', baseURL: fake.url, logLevel: 'off' });
    const direct = async (): Promise<number> => {
      const started = performance.now();
      const stream = client.messages.stream({
        model: 'claude-sonnet-5-5',
        max_tokens: 1024,
        messages: [{ role: 'user', content: 'Say hello' }],
      });
      const first = await new Promise<number>((resolve, reject) => {
        stream.once('text', () => resolve(performance.now() - started));
        stream.once('error', reject);
      });
      await stream.finalMessage();
      return first;
    };
    const viaServer = async (): Promise<number> => {
      const started = performance.now();
      const res = await fetch(`${base}/api/projects/${projectId}/chat`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ message: 'Say hello' }),
      });
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let seen = '';
      let first: number | undefined;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        seen += decoder.decode(value, { stream: true });
        if (first === undefined && seen.includes('event: text'))
          first = performance.now() - started;
      }
      if (first === undefined) throw new Error(`no text event: ${seen.slice(0, 300)}`);
      return first;
    };
    const measure = async (op: () => Promise<number>) => {
      for (let i = 0; i < 5; i++) await op();
      const samples: number[] = [];
      for (let i = 0; i < TTFT_RUNS; i++) samples.push(await op());
      return samples;
    };
    return [
      summarise('SDK → fake provider, first text delta (baseline; ms)', await measure(direct)),
      summarise('POST /api/projects/:id/chat → first `text` event (ms)', await measure(viaServer)),
    ];
  });
}

/** 100 files: written with 100 PUTs (baseline), by one AI turn (a changeset), reverted. */
export function aiChangesetBench(): Promise<Result[]> {
  return withServer(async ({ base, token, projectId, fake }) => {
    const content = (i: number, run: number) =>
      `// file ${i}, run ${run}\nexport const value${i} = ${run};\n`.repeat(20);
    const putSamples: number[] = [];
    const turnSamples: number[] = [];
    const revertSamples: number[] = [];
    for (let run = 0; run < CHANGESET_RUNS; run++) {
      let started = performance.now();
      for (let i = 0; i < FILES; i++) {
        await api(base, 'PUT', `/api/projects/${projectId}/files/put/f${i}.js`, token, {
          content: content(i, run),
        });
      }
      putSamples.push(performance.now() - started);

      fake.script([
        {
          toolCalls: Array.from({ length: FILES }, (_, i) => ({
            name: 'write_file',
            input: { path: `ai/f${i}.js`, content: content(i, run) },
          })),
        },
        { text: 'Wrote 100 files.' },
      ]);
      started = performance.now();
      const turn = await api(base, 'POST', '/api/claude/modify', token, {
        projectId,
        instruction: 'Write the hundred files',
      });
      turnSamples.push(performance.now() - started);
      if (turn.changes.length !== FILES)
        throw new Error(`changeset has ${turn.changes.length} files`);

      started = performance.now();
      await api(
        base,
        'POST',
        `/api/projects/${projectId}/changesets/${turn.changesetId}/revert`,
        token,
      );
      revertSamples.push(performance.now() - started);
    }
    return [
      summarise(`${FILES} files by ${FILES} PUT requests (baseline; ms each batch)`, putSamples),
      summarise(`one AI turn writing ${FILES} files as a changeset (ms)`, turnSamples),
      summarise(`revert of that ${FILES}-file changeset (ms)`, revertSamples),
    ];
  });
}
