import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

/** A second server instance: the real entry point (`src/main.ts`) in its own process. */
export interface ServerProcess {
  url: string;
  port: number;
  child: ChildProcess;
  output(): string;
  /** SIGKILL: no shutdown, no flush, sockets and database sessions cut. */
  kill(): Promise<void>;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
}

const serverDir = path.resolve(import.meta.dirname, '..');

/**
 * Starts `src/main.ts` on `port` with `env` (DATABASE_URL, VAPORFORM_DATA_DIR, JWT_SECRET,
 * REDIS_URL… of the deployment it joins); resolves once `/readyz` answers 200.
 * @throws when it exits or is not ready within `timeoutMs` (starts take 20–40 s on two busy cores).
 */
export async function startServerProcess(
  port: number,
  env: Record<string, string>,
  timeoutMs = 150_000,
): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: serverDir,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      VAPORFORM_RUNTIME: 'process',
      VAPORFORM_RECONCILE_SECONDS: '0',
      VAPORFORM_STATS_SECONDS: '0',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-100_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
    });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}: ${out}`);
    try {
      if ((await fetch(`${url}/readyz`)).ok) {
        return {
          url,
          port,
          child,
          output: () => out,
          async kill() {
            child.kill('SIGKILL');
            await exited();
          },
          async stop() {
            child.kill('SIGTERM');
            const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
            await exited();
            clearTimeout(timer);
          },
        };
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`server not ready in ${timeoutMs} ms: ${out}`);
}
