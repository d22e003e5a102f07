import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from './db/index.ts';

// `npm start` as an operator runs it: the real entry point, embedded PostgreSQL, real signals.
const serverDir = path.resolve(import.meta.dirname, '..');
const dataDir = mkdtempSync(path.join(tmpdir(), 'vf-main-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

interface Running {
  child: ChildProcess;
  url: string;
  output: () => string;
}

async function start(env: Record<string, string> = {}): Promise<Running> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: serverDir,
    env: {
      ...process.env,
      DATABASE_URL: '',
      PORT: String(port),
      VAPORFORM_DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}: ${out}`);
    try {
      if ((await fetch(`${url}/readyz`)).ok) return { child, url, output: () => out };
    } catch {
      // not yet listening
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill('SIGKILL');
  throw new Error(`server not ready in 90 s: ${out}`);
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
  });
}

function postgresRunningFor(dir: string): boolean {
  try {
    return (
      execFileSync('pgrep', ['-f', `postgres -D ${dir}`])
        .toString()
        .trim().length > 0
    );
  } catch {
    return false;
  }
}

async function post(url: string, body: unknown): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

describe('npm start with the embedded database', () => {
  it('starts, keeps data across a restart without re-initialising, and stops cleanly on SIGTERM', async () => {
    const first = await start();
    expect(first.output()).toContain('initialising embedded PostgreSQL');
    const register = await post(`${first.url}/api/auth/register`, {
      email: 'restart@example.test',
      password: 'survives restarts',
      name: 'Restart',
    });
    expect(register.status).toBe(201);
    first.child.kill('SIGTERM');
    expect(await exited(first.child)).toBe(0);
    expect(first.output()).toContain('"msg":"stopped"');
    expect(postgresRunningFor(path.join(dataDir, 'pg'))).toBe(false);

    const second = await start();
    try {
      expect(second.output()).not.toContain('initialising embedded PostgreSQL');
      const login = await post(`${second.url}/api/auth/login`, {
        email: 'restart@example.test',
        password: 'survives restarts',
      });
      expect(login.status).toBe(200);
    } finally {
      second.child.kill('SIGTERM');
      expect(await exited(second.child)).toBe(0);
    }
  }, 180_000);

  it('a malformed variable stops start-up with one line naming it', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: serverDir,
      env: { ...process.env, VAPORFORM_DATA_DIR: dataDir, PORT: 'not-a-port' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    expect(await exited(child)).toBe(2);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/PORT/);
  }, 60_000);
});
