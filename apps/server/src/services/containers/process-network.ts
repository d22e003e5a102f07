import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';

/**
 * The network side of the process runtime's sandbox. Each sandboxed project gets its own network
 * namespace (`bwrap --unshare-net`: loopback only), so its code reaches neither the server's API,
 * nor the database, nor other projects' dev servers on the host. The only way in is a TCP
 * listener the server opens on 127.0.0.1 (in the host's namespace) and hands to the sandbox as
 * file descriptor 3: a small forwarder inside accepts on it and connects to the dev server's port
 * inside the namespace. The preview proxy and the health check keep talking to a host port, and
 * a listening socket gives its holder nothing but the connections made to it.
 */

/** File descriptor of the host listener inside the sandbox. */
export const FORWARDER_FD = 3;

/**
 * The forwarder (CommonJS for `node -e`; argv: dev port, then optionally the egress proxy's port
 * and socket): accepts on fd 3 and pipes each connection to 127.0.0.1:port, or [::1]:port for dev
 * servers bound to IPv6 localhost only; and pipes connections to 127.0.0.1:<egress port> to the
 * host's egress proxy (process-egress.ts). Bytes both ways, half-closes kept (HTTP, WebSocket
 * upgrades, HMR).
 */
export const FORWARDER_SOURCE = `'use strict';
const net = require('node:net');
const port = Number(process.argv[1]);
function connect(down, hosts) {
  const up = net.connect({ host: hosts[0], port, allowHalfOpen: true });
  up.once('error', (err) => {
    if (err.code === 'ECONNREFUSED' && hosts.length > 1) return connect(down, hosts.slice(1));
    down.destroy();
  });
  up.once('connect', () => {
    up.on('error', () => down.destroy());
    down.on('error', () => up.destroy());
    up.on('close', () => down.destroy());
    down.on('close', () => up.destroy());
    down.pipe(up);
    up.pipe(down);
    down.resume();
  });
}
const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (down) => {
  down.on('error', () => {});
  connect(down, ['127.0.0.1', '::1']);
});
server.on('error', (err) => {
  console.error('[vaporform] preview forwarder failed: ' + err.message);
  process.exit(1);
});
server.listen({ fd: ${FORWARDER_FD} });
const egressPort = Number(process.argv[2]);
const egressSocket = process.argv[3];
if (egressPort && egressSocket) {
  const egress = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (down) => {
    down.on('error', () => {});
    const up = net.connect({ path: egressSocket, allowHalfOpen: true });
    up.once('error', () => down.destroy());
    up.once('connect', () => {
      up.on('close', () => down.destroy());
      down.on('close', () => up.destroy());
      down.pipe(up);
      up.pipe(down);
      down.resume();
    });
  });
  egress.on('error', (err) => console.error('[vaporform] egress proxy unavailable: ' + err.message));
  egress.listen(egressPort, '127.0.0.1');
}
`;

/**
 * A listening TCP socket on 127.0.0.1 (free port) whose descriptor is passed to a sandbox and
 * then closed here (`close()`): until then a stray connection is dropped, never served here.
 */
export async function hostListener(): Promise<{ port: number; fd: number; close(): void }> {
  const server: Server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    server.close();
    throw new Error('the host listener has no file descriptor');
  }
  return {
    port: (server.address() as { port: number }).port,
    fd,
    close: () => server.close(),
  };
}

/** What this machine allows the process runtime. */
export interface SandboxSupport {
  /** bubblewrap runs here (with or without a network namespace). */
  sandbox: boolean;
  /** Processes get their own network namespace (only their dev port is reachable). */
  ownNetwork: boolean;
  /** Terminals join the dev server's sandbox (nsenter + setpriv from util-linux). */
  joinSandbox: boolean;
  /** Why `ownNetwork` is false, for the logs and the UI. */
  reason?: string;
}

/**
 * Tries a sandbox with its own network namespace (`args` are the usual sandbox arguments):
 * bubblewrap must be installed and the kernel must let it create namespaces (unprivileged user
 * namespaces, or a root server).
 */
export async function probeSandbox(
  bwrap: string | undefined,
  args: string[],
): Promise<SandboxSupport> {
  const joinSandbox = ['/usr/bin/nsenter', '/usr/bin/setpriv'].every((p) => existsSync(p));
  if (!bwrap) {
    return {
      sandbox: false,
      ownNetwork: false,
      joinSandbox: false,
      reason: 'bubblewrap (bwrap) is not installed',
    };
  }
  const result = await trySandbox(bwrap, [...args, '--unshare-net']);
  if (result.code === 0) return { sandbox: true, ownNetwork: true, joinSandbox };
  const sandbox = (await trySandbox(bwrap, args)).code === 0;
  return {
    sandbox,
    ownNetwork: false,
    joinSandbox: false,
    reason: `bubblewrap cannot create a network namespace here (${result.output.trim().slice(0, 200) || `exit ${result.code}`}; are unprivileged user namespaces disabled?)`,
  };
}

/** Runs `exit 0` in a sandbox made with `args`. */
function trySandbox(
  bwrap: string,
  args: string[],
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(bwrap, [...args, '/bin/sh', '-c', 'exit 0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (output += d.toString('utf8')));
    child.once('error', (err) => resolve({ code: -1, output: err.message }));
    child.once('close', (code) => resolve({ code, output }));
  });
}

/**
 * The sandbox's first process (bubblewrap's child, inside every namespace) of the bubblewrap
 * process `outerPid`, or undefined when it is gone.
 */
export async function sandboxPid(outerPid: number): Promise<number | undefined> {
  const own = await readlink('/proc/self/ns/net').catch(() => undefined);
  try {
    const children = await readFile(`/proc/${outerPid}/task/${outerPid}/children`, 'utf8');
    for (const pid of children.trim().split(/\s+/).filter(Boolean).map(Number)) {
      if ((await readlink(`/proc/${pid}/ns/net`).catch(() => own)) !== own) return pid;
    }
  } catch {
    // no /proc/<pid>/task/<pid>/children: scan parents instead
  }
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid !== outerPid) continue;
    if ((await readlink(`/proc/${name}/ns/net`).catch(() => own)) !== own) return Number(name);
  }
  return undefined;
}

/**
 * The command that runs `argv` inside the sandbox of `pid` (every namespace, its root and working
 * directory) with no capabilities and no way to gain any, like `docker exec` as a user. It first
 * checks that /app there is `workspace` (device and inode): had the sandbox ended and its pid gone
 * to another process meanwhile, the command stops instead of running in the wrong place.
 */
export function joinSandboxCommand(
  pid: number,
  workspace: { dev: number; ino: number },
  argv: string[],
): [string, string[]] {
  const guard =
    `[ "$(stat -c %d:%i /app 2>/dev/null)" = "${workspace.dev}:${workspace.ino}" ] || ` +
    `{ echo "[vaporform] the project's sandbox is gone" >&2; exit 1; }; exec "$@"`;
  return [
    '/usr/bin/nsenter',
    [
      `--target=${pid}`,
      '--all',
      '--preserve-credentials',
      '--root',
      '--wd',
      '--',
      '/usr/bin/setpriv',
      '--inh-caps=-all',
      '--ambient-caps=-all',
      '--bounding-set=-all',
      '--no-new-privs',
      '/bin/sh',
      '-c',
      guard,
      'sh',
      ...argv,
    ],
  ];
}
