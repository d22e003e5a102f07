import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { freePort } from '../../src/db/index.ts';

// Real processes of the production shapes: the server (src/main.ts), PgBouncer and HAProxy,
// each on a free loopback port, each stopped by its test.

const serverDir = path.resolve(import.meta.dirname, '../..');

/** A child process with its combined output. */
export interface Proc {
  child: ChildProcess;
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it exited. */
  stop(graceMs?: number): Promise<void>;
}

function track(child: ChildProcess): Proc {
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
  child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
  return {
    child,
    output: () => out,
    stop: (graceMs = 10_000) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const force = setTimeout(() => child.kill('SIGKILL'), graceMs);
        child.once('exit', () => {
          clearTimeout(force);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

/** Fails (never skips) when a Debian package's binary is missing: CI installs it. */
export function requireBinary(bin: string, pkg: string): void {
  const found = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  if (found.status !== 0) {
    throw new Error(`${bin} is not installed: \`apt-get install -y ${pkg}\` (.ci/run does)`);
  }
}

async function waitFor(
  what: string,
  proc: Proc,
  ready: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(
        `${what} exited (${proc.child.exitCode ?? proc.child.signalCode}): ${proc.output().slice(-3000)}`,
      );
    }
    if (await ready().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  await proc.stop(1000);
  throw new Error(`${what} not ready in ${timeoutMs / 1000} s: ${proc.output().slice(-3000)}`);
}

/** One Vaporform server process (`node --import tsx src/main.ts`). */
export interface ServerProc extends Proc {
  url: string;
  port: number;
  dataDir: string;
}

/**
 * Starts the real server on its own data dir and a free port; resolves once `/readyz` is 200.
 * `port` reuses a port (a restarted instance keeps its place behind the proxy).
 */
export async function startServer(
  env: Record<string, string>,
  opts: { port?: number; dataDir?: string; runtime?: 'node' | 'bun' } = {},
): Promise<ServerProc> {
  const port = opts.port ?? (await freePort());
  const dataDir = opts.dataDir ?? mkdtempSync(path.join(tmpdir(), 'vf-topo-'));
  // Bun (the npm package's binary) runs the TypeScript entry point itself.
  const [command, args] =
    opts.runtime === 'bun'
      ? [bunBinary(), ['src/main.ts']]
      : [process.execPath, ['--import', 'tsx', 'src/main.ts']];
  const child = spawn(command, args, {
    cwd: serverDir,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      VAPORFORM_DATA_DIR: dataDir,
      VAPORFORM_RUNTIME: 'process',
      VAPORFORM_RECONCILE_SECONDS: '0',
      VAPORFORM_STATS_SECONDS: '0',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc = track(child);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    `server on ${port}`,
    proc,
    async () => (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) })).ok,
    120_000,
  );
  return { ...proc, url, port, dataDir };
}

/** `bun` from the `bun` devDependency (node_modules/.bin), failing when it is not installed. */
export function bunBinary(): string {
  const bin = path.resolve(serverDir, '../../node_modules/.bin/bun');
  const found = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  if (found.status !== 0) throw new Error(`bun is not installed at ${bin}: run npm ci`);
  return bin;
}

/** The unprivileged user daemons run as when the tests run as root (the harness made it). */
function daemonUser(): { name: string; uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (id.status !== 0) throw new Error('the postgres user is missing (the test database made it)');
  return { name: 'postgres', uid: Number(id.stdout), gid: Number(gid.stdout) };
}

/** A PgBouncer in front of one PostgreSQL server. */
export interface PgBouncerProc extends Proc {
  /** `postgres://user:pass@127.0.0.1:<bouncer port>/<database>` */
  urlFor(database: string): string;
}

/**
 * Starts Debian's PgBouncer in transaction mode in front of `serverUrl`'s server, with a small
 * server pool so that one client's statements land on different server sessions (what a busy
 * pooler does), and no tolerance for session startup parameters beyond the driver's defaults.
 */
export async function startPgBouncer(
  serverUrl: string,
  opts: { poolSize?: number } = {},
): Promise<PgBouncerProc> {
  requireBinary('pgbouncer', 'pgbouncer');
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username);
  const password = decodeURIComponent(server.password);
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'vf-pgbouncer-'));
  const owner = daemonUser();
  writeFileSync(
    path.join(dir, 'userlist.txt'),
    `"${user.replace(/"/g, '""')}" "${password.replace(/"/g, '""')}"\n`,
  );
  writeFileSync(
    path.join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${server.hostname} port=${server.port}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${path.join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${opts.poolSize ?? 4}`,
      'max_client_conn = 500',
      'ignore_startup_parameters = extra_float_digits',
      'log_connections = 0',
      'log_disconnections = 0',
      '',
    ].join('\n'),
  );
  if (owner) {
    chmodSync(dir, 0o755);
    for (const f of ['', 'userlist.txt', 'pgbouncer.ini']) {
      chownSync(path.join(dir, f), owner.uid, owner.gid);
    }
  }
  const args = [path.join(dir, 'pgbouncer.ini')];
  if (owner) args.unshift('-u', owner.name);
  const proc = track(spawn('pgbouncer', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  const urlFor = (database: string): string => {
    const u = new URL(serverUrl);
    u.port = String(port);
    u.pathname = `/${database}`;
    return u.toString();
  };
  await waitFor('pgbouncer', proc, async () => proc.output().includes('process up'), 20_000);
  return {
    ...proc,
    urlFor,
    stop: async (graceMs) => {
      await proc.stop(graceMs);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** HAProxy in front of server instances. */
export interface HaproxyProc extends Proc {
  url: string;
  port: number;
}

/**
 * Starts Debian's HAProxy: round robin over `backends` (host:port), no stickiness (only a
 * project's collab sockets are kept together, see haproxyConfig), WebSocket upgrades tunnelled,
 * a backend found dead by its `/readyz` check taken out within a second, and a request that
 * found a dead backend retried on another (`retry-on conn-failure`).
 */
export async function startHaproxy(
  backends: string[],
  opts: { port?: number; backendKeepAlive?: boolean } = {},
): Promise<HaproxyProc> {
  requireBinary('haproxy', 'haproxy');
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(path.join(tmpdir(), 'vf-haproxy-'));
  const cfg = path.join(dir, 'haproxy.cfg');
  writeFileSync(cfg, haproxyConfig(port, backends, opts.backendKeepAlive));
  const check = spawnSync('haproxy', ['-c', '-f', cfg], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`haproxy -c: ${check.stdout}${check.stderr}`);
  const proc = track(spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const url = `http://127.0.0.1:${port}`;
  await waitFor('haproxy', proc, async () => (await fetch(`${url}/healthz`)).ok, 20_000);
  return {
    ...proc,
    url,
    port,
    stop: async (graceMs) => {
      await proc.stop(graceMs);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The HAProxy configuration the topology test runs (and infra/haproxy documents).
 * `backendKeepAlive` keeps connections to the instances open across requests instead of one
 * per request (`http-server-close`); bench/topology measures both.
 */
export function haproxyConfig(port: number, backends: string[], backendKeepAlive = false): string {
  return [
    'global',
    '  maxconn 4096',
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 60s',
    '  timeout server 60s',
    // An upgraded connection (WebSocket) idles up to this long.
    '  timeout tunnel 1h',
    backendKeepAlive ? '  http-reuse safe' : '  option http-server-close',
    '  option forwardfor',
    '  retries 3',
    '  option redispatch',
    // Only a refused connection is retried: a request a backend may have run is never sent twice.
    '  retry-on conn-failure',
    'frontend web',
    `  bind 127.0.0.1:${port}`,
    '  default_backend vaporform',
    'backend vaporform',
    // Round robin, except that a collab socket opened with `?project=<id>` goes to the instance
    // that project hashes to (consistent: an instance gone moves only its own projects), so one
    // instance commits a document's ops instead of two racing for each version.
    '  balance url_param project',
    '  hash-type consistent',
    // Which instance answered (the tests check the spread; an operator reads it in logs).
    '  http-response set-header X-Served-By %[srv_name]',
    '  option httpchk GET /readyz',
    '  http-check expect status 200',
    '  default-server inter 500ms fall 2 rise 2',
    ...backends.map((b, i) => `  server s${i + 1} ${b} check`),
    '',
  ].join('\n');
}
