// Starts the real Vaporform server (`node --import tsx apps/server/src/main.ts`) as a child
// process on a free loopback port with a fresh data dir (embedded PostgreSQL), for browser and
// component tests. Only 127.0.0.1 is used.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A running server. */
export interface RunningServer {
  /** `http://<publicHost>:<port>` (the IDE's origin; previews at `<id>.preview.<publicHost>:<port>`). */
  url: string;
  port: number;
  dataDir: string;
  /** Everything the server wrote (stdout and stderr). */
  output(): string;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/** True when a Docker engine answers on the default socket (or DOCKER_HOST's unix socket). */
export function dockerAnswers(timeoutMs = 1500): Promise<boolean> {
  const host = process.env.DOCKER_HOST;
  const socketPath = host?.startsWith('unix://')
    ? host.slice(7)
    : host
      ? null
      : '/var/run/docker.sock';
  if (!socketPath) return Promise.resolve(false);
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

/**
 * Starts the server and waits until /healthz answers (at most `startTimeoutMs`).
 * @throws when it exits or does not come up, quoting its output.
 */
export async function startServer(
  opts: {
    env?: Record<string, string>;
    startTimeoutMs?: number;
    /** Host name of the public URL (default localhost); previews live at `<id>.preview.<host>`. */
    publicHost?: string;
  } = {},
): Promise<RunningServer> {
  const publicHost = opts.publicHost ?? 'localhost';
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'vf-e2e-'));
  // Embedded PostgreSQL runs as the postgres user when we are root: it must enter the dir.
  chmodSync(dataDir, 0o755);
  const runtime = (await dockerAnswers()) ? 'auto' : 'process';
  let output = '';
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(repoRoot, 'apps/server/src/main.ts')],
    {
      cwd: repoRoot,
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        VAPORFORM_DATA_DIR: dataDir,
        VAPORFORM_PUBLIC_URL: `http://${publicHost}:${port}`,
        VAPORFORM_RUNTIME: runtime,
        LOG_LEVEL: 'warn',
        VAPORFORM_LOGIN_LIMIT_PER_IP: '10000',
        VAPORFORM_LOGIN_LIMIT_PER_ACCOUNT: '10000',
        DATABASE_URL: '',
        REDIS_URL: '',
        ...opts.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  let alive = true;
  void exited.then(() => (alive = false));

  const url = `http://${publicHost}:${port}`;
  const deadline = Date.now() + (opts.startTimeoutMs ?? 120_000);
  for (;;) {
    if (!alive) {
      rmSync(dataDir, { recursive: true, force: true });
      throw new Error(`the server exited during start-up:\n${output.slice(-4000)}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
      throw new Error(`the server did not answer /healthz in time:\n${output.slice(-4000)}`);
    }
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`, {
        signal: AbortSignal.timeout(1000),
      });
      if (res.ok) break;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 250));
  }

  return {
    url,
    port,
    dataDir,
    output: () => output,
    async stop() {
      if (alive) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
