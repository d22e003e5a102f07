import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/db/index.ts';
import { isAlive, postmasterPid } from '../src/db/postmaster.ts';

// The real entry point (`npm start`) on the embedded PostgreSQL, killed the hard way mid-traffic.
const serverDir = path.resolve(import.meta.dirname, '..');
const dataDir = mkdtempSync(path.join(tmpdir(), 'vf-chaos-'));
chmodSync(dataDir, 0o755); // as root, postgres runs as the `postgres` user and must enter it
const pgDir = path.join(dataDir, 'pg');
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let server: Running | undefined;
afterAll(async () => {
  if (server && server.child.exitCode === null) {
    server.child.kill('SIGTERM');
    await exited(server.child);
  }
  const pid = postmasterPid(pgDir);
  if (pid && isAlive(pid)) process.kill(pid, 'SIGINT');
  rmSync(dataDir, { recursive: true, force: true });
});

interface Running {
  child: ChildProcess;
  output: () => string;
}

async function start(port: number): Promise<Running> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: serverDir,
    env: {
      ...process.env,
      DATABASE_URL: '',
      PORT: String(port),
      VAPORFORM_DATA_DIR: dataDir,
      VAPORFORM_RUNTIME: 'process',
      VAPORFORM_RECONCILE_SECONDS: '0',
      VAPORFORM_STATS_SECONDS: '0',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-200_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const deadline = Date.now() + 120_000; // starts took 20–37 s at a load of 13–18 on two cores
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}: ${out}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) return { child, output: () => out };
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error(`server not ready in 120 s: ${out}`);
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
  });
}

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * Writers saving new files through the API until stopped. A write is acknowledged when the
 * server answered 200/201; a request that got no answer (the server was down) proves nothing.
 */
class Traffic {
  readonly acknowledged: { path: string; content: string }[] = [];
  readonly statuses = new Map<number, number>();
  readonly unexpected: string[] = [];
  noAnswer = 0;
  #stopped = false;
  #writers: Promise<void>[] = [];

  constructor(
    readonly base: string,
    readonly token: string,
    readonly projectId: string,
  ) {}

  start(writers: number): void {
    for (let w = 0; w < writers; w++) this.#writers.push(this.#write(w));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#writers);
  }

  count(status: number): number {
    return this.statuses.get(status) ?? 0;
  }

  async #write(writer: number): Promise<void> {
    for (let i = 0; !this.#stopped; i++) {
      const file = `w${writer}/f${i}.txt`;
      const content = `writer ${writer} write ${i} ${randomBytes(6).toString('hex')}\n`;
      let res: Response;
      try {
        res = await fetch(`${this.base}/api/projects/${this.projectId}/files/${file}`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ content }),
          signal: AbortSignal.timeout(15_000),
        });
      } catch {
        this.noAnswer++;
        await sleep(100);
        continue;
      }
      this.statuses.set(res.status, this.count(res.status) + 1);
      const body = await res.text();
      if (res.status === 200 || res.status === 201) {
        this.acknowledged.push({ path: file, content });
      } else if (res.status === 503) {
        expect(JSON.parse(body).error.code).toBe('unavailable');
        await sleep(50);
      } else {
        this.unexpected.push(`${res.status} ${body}`);
      }
    }
  }
}

async function json(url: string, init: RequestInit & { token?: string } = {}): Promise<any> {
  const res = await fetch(url, {
    ...init,
    headers: {
      'content-type': 'application/json',
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
    },
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

describe('chaos: SIGKILL of the server, then of its embedded PostgreSQL, mid-traffic', () => {
  it('comes back by itself, answers 503 (never 500) while the database is down, loses no acknowledged write', async () => {
    const t0 = Date.now();
    const mark = (what: string) => console.info(`chaos: ${what} at ${Date.now() - t0} ms`);
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    server = await start(port);

    mark('started');
    const credentials = { email: 'chaos@example.test', password: 'chaos monkey 1234' };
    await json(`${base}/api/auth/register`, {
      method: 'POST',
      body: JSON.stringify({ ...credentials, name: 'Chaos' }),
    });
    const { token } = await json(`${base}/api/auth/login`, {
      method: 'POST',
      body: JSON.stringify(credentials),
    });
    const { project } = await json(`${base}/api/projects`, {
      method: 'POST',
      token,
      body: JSON.stringify({ name: 'chaos', description: 'written under fire' }),
    });

    const traffic = new Traffic(base, token, project.id);
    traffic.start(4);
    await until('writes before the first kill', () => traffic.acknowledged.length >= 20);

    // 1. The server dies with SIGKILL: its PostgreSQL is left running (nobody stops it)…
    mark('writing');
    const orphan = postmasterPid(pgDir)!;
    server.child.kill('SIGKILL');
    await exited(server.child);
    expect(isAlive(orphan)).toBe(true);
    // …and the next start takes it over instead of failing on postmaster.pid.
    mark('server killed');
    server = await start(port);
    mark('server restarted');
    expect(isAlive(orphan)).toBe(false);
    expect(server.output()).toContain('left running by a previous server');
    const afterRestart = traffic.acknowledged.length;
    await until('writes after the restart', () => traffic.acknowledged.length >= afterRestart + 20);

    // 2. The embedded PostgreSQL dies with SIGKILL mid-traffic.
    mark('writing again');
    const readyz: number[] = [];
    let probing = true;
    const probe = (async () => {
      while (probing) {
        readyz.push(
          await fetch(`${base}/readyz`).then(
            (r) => r.status,
            () => 0,
          ),
        );
        await sleep(100);
      }
    })();
    const postmaster = postmasterPid(pgDir)!;
    const unavailableBefore = traffic.count(503);
    process.kill(postmaster, 'SIGKILL');
    await until('503s while the database is down', () => traffic.count(503) > unavailableBefore);
    await until('/readyz to say not ready', () => readyz.includes(503));
    // The server restarts it by itself and recovers: ready again, writes acknowledged again.
    await until('the restarted database', async () => {
      const pid = postmasterPid(pgDir);
      return pid !== undefined && pid !== postmaster && (await fetch(`${base}/readyz`)).ok;
    });
    mark('database back');
    const afterRecovery = traffic.acknowledged.length;
    await until('writes after recovery', () => traffic.acknowledged.length >= afterRecovery + 20);
    mark('writing again');
    probing = false;
    await probe;
    await traffic.stop();

    expect(traffic.unexpected).toEqual([]); // never a 500, nor any other refusal
    expect([...traffic.statuses.keys()].sort()).toEqual(
      [200, 201, 503].filter((s) => traffic.count(s) > 0),
    );
    expect(server.child.exitCode).toBeNull(); // it came back by itself

    // Every acknowledged write is there, with the acknowledged content.
    const { files } = await json(`${base}/api/projects/${project.id}/files`, { token });
    const stored = new Map<string, string>(
      files.map((f: { path: string; contentHash: string }) => [f.path, f.contentHash]),
    );
    const lost = traffic.acknowledged.filter((w) => stored.get(w.path) !== sha256(w.content));
    expect(lost).toEqual([]);
    for (const w of traffic.acknowledged.slice(-5)) {
      const file = await json(`${base}/api/projects/${project.id}/files/${w.path}`, { token });
      expect(file.content).toBe(w.content);
    }
    console.info(
      `chaos: ${traffic.acknowledged.length} acknowledged writes, 0 lost; ` +
        `${traffic.count(503)} answered 503, ${traffic.noAnswer} unanswered while the server was down; ` +
        `/readyz 503 ${readyz.filter((s) => s === 503).length}×`,
    );

    // A closed terminal (SIGHUP) stops the server in order, its PostgreSQL included.
    server.child.kill('SIGHUP');
    expect(await exited(server.child)).toBe(0);
    const last = postmasterPid(pgDir);
    expect(last === undefined || !isAlive(last)).toBe(true);
  }, 300_000);
});
