import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Duplex } from 'node:stream';
import { errors } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import { EGRESS_PORT, EGRESS_SOCKET, EgressProxy, egressEnvironment } from './process-egress.ts';
import {
  FORWARDER_FD,
  FORWARDER_SOURCE,
  hostListener,
  joinSandboxCommand,
  probeSandbox,
  sandboxPid,
  type SandboxSupport,
} from './process-network.ts';
import { installScript, shellQuote } from './run-script.ts';
import type {
  ContainerRuntime,
  LogOptions,
  RuntimeInstance,
  RuntimeSpec,
  RuntimeStats,
  TtySession,
} from './runtime.ts';

const LOG_LINES = 2_000;

interface Running {
  child: ChildProcess;
  spec: RuntimeSpec;
  /** The environment of the dev command; terminals get the same. */
  env: Record<string, string>;
  /** Where the dev server listens: the spec's port in its own namespace, else `hostPort`. */
  port: number;
  hostPort: number;
  /** In a network namespace of its own. */
  ownNetwork: boolean;
  createdAt: string;
  startedAt: string;
  state: 'running' | 'stopped' | 'error';
  reason?: string;
  lines: string[];
  events: EventEmitter;
  exited: Promise<void>;
  lastCpu?: { ticks: number; at: number };
}

export interface ProcessRuntimeOptions {
  log: Logger;
  /** Path of bubblewrap, or undefined to run unsandboxed. */
  bwrap: string | undefined;
  /**
   * Number of accounts on the installation. Where projects cannot get their own network (no
   * bubblewrap, or no namespaces), they are started only while there is at most one account:
   * project code on the host network reaches the API, the database and other dev servers.
   */
  accounts?: () => Promise<number>;
  /** Overrides the egress proxy's address policy (tests); see process-egress.ts. */
  egressAllow?: (address: string) => boolean;
}

/**
 * Runs a project's dev command as a local child process in its workspace, for machines with no
 * Docker engine. With bubblewrap present the process sees only /usr, a few /etc files, a private
 * /tmp and its workspace at /app, in its own pid/ipc/uts/network namespaces with every capability
 * dropped; its network is loopback only, and its dev port is reached through a host listener on
 * 127.0.0.1 (see process-network.ts). Terminals join that same sandbox with the same environment.
 * Where no namespace can be made, processes share the host network (PORT is a free host port)
 * and run only while the installation has a single account.
 */
export class ProcessRuntime implements ContainerRuntime {
  readonly kind = 'process' as const;
  readonly portsHost = '127.0.0.1';
  readonly #log: Logger;
  #bwrap: string | undefined;
  readonly #egress: EgressProxy;
  readonly #accounts: (() => Promise<number>) | undefined;
  readonly #running = new Map<string, Running>();
  #support: SandboxSupport | undefined;

  constructor(options: ProcessRuntimeOptions) {
    this.#log = options.log;
    this.#bwrap = options.bwrap;
    this.#accounts = options.accounts;
    this.#egress = new EgressProxy({
      log: options.log,
      ...(options.egressAllow ? { allow: options.egressAllow } : {}),
    });
  }

  /** True when processes run inside bubblewrap. */
  get sandboxed(): boolean {
    return this.#bwrap !== undefined;
  }

  /** What the machine allows: own network namespaces, terminals joining the sandbox. */
  get support(): SandboxSupport | undefined {
    return this.#support;
  }

  async init(): Promise<void> {
    await this.#probe();
  }

  async #probe(): Promise<SandboxSupport> {
    if (this.#support) return this.#support;
    const support = await probeSandbox(this.#bwrap, this.#sandboxArgs(os.tmpdir()));
    // A machine that cannot run bubblewrap at all runs projects unsandboxed, as without it.
    if (!support.sandbox && this.#bwrap) {
      this.#log.error({ bwrap: this.#bwrap, reason: support.reason }, 'bubblewrap does not work');
      this.#bwrap = undefined;
    }
    if (support.ownNetwork) await this.#egress.start();
    this.#support = support;
    if (!support.ownNetwork) {
      this.#log.error(
        { reason: support.reason },
        `process runtime: NO NETWORK ISOLATION (${support.reason}). Project code would reach ` +
          'the API, the database and other projects on this host, so projects run only while ' +
          'this installation has a single account. Install bubblewrap (and allow unprivileged ' +
          'user namespaces) or Docker to run projects for several people.',
      );
    }
    return support;
  }

  /** @throws AppError unavailable when projects cannot be isolated and several accounts exist. */
  async #checkShared(support: SandboxSupport): Promise<void> {
    if (support.ownNetwork) return;
    const accounts = this.#accounts ? await this.#accounts() : 1;
    if (accounts <= 1) return;
    throw errors.unavailable(
      `Projects cannot run on this server: it cannot isolate them from each other and from the ` +
        `server (${support.reason}), and it has ${accounts} accounts. An administrator must ` +
        'install bubblewrap (with user namespaces allowed) or Docker.',
    );
  }

  async start(spec: RuntimeSpec, options: { fresh: boolean }): Promise<RuntimeInstance> {
    const current = this.#running.get(spec.projectId);
    if (current?.state === 'running' && !options.fresh && sameSpec(current.spec, spec)) {
      return this.#instance(current);
    }
    if (current) await this.#kill(current);
    const support = await this.#probe();
    await this.#checkShared(support);
    await mkdir(spec.workspace, { recursive: true });
    // Own namespace: the dev server listens on the spec's port there; the host listener's
    // descriptor reaches it through the forwarder. Shared network: a free host port.
    const listener = support.ownNetwork ? await hostListener() : undefined;
    const hostPort = listener?.port ?? (await freePort());
    const port = listener ? spec.port : hostPort;
    const env = { ...this.#environment(spec, port), ...(listener ? egressEnvironment() : {}) };
    let script = installScript(spec);
    if (listener) {
      script =
        `${shellQuote(process.execPath)} -e ${shellQuote(FORWARDER_SOURCE)} ` +
        `${port} ${EGRESS_PORT} ${EGRESS_SOCKET} & exec ${FORWARDER_FD}<&-; ${script}`;
    }
    const [command, args] = this.#bwrap
      ? [
          this.#bwrap,
          [
            ...this.#sandboxArgs(spec.workspace),
            ...(listener ? this.#networkArgs() : []),
            '/bin/sh',
            '-c',
            script,
          ],
        ]
      : ['/bin/sh', ['-c', script]];
    let child: ChildProcess;
    try {
      child = spawn(command, args, {
        cwd: spec.workspace,
        env,
        detached: true, // its own process group: stop() ends the whole tree
        stdio: ['ignore', 'pipe', 'pipe', ...(listener ? [listener.fd] : [])],
      });
    } finally {
      // The sandbox holds its own copy of the listener; this process never accepts on it.
      listener?.close();
    }
    const now = new Date().toISOString();
    const entry: Running = {
      child,
      spec,
      env,
      port,
      hostPort,
      ownNetwork: Boolean(listener),
      createdAt: now,
      startedAt: now,
      state: 'running',
      lines: [],
      events: new EventEmitter().setMaxListeners(0),
      exited: new Promise((resolve) => child.once('close', () => resolve())),
    };
    const onData = (() => {
      let rest = '';
      return (chunk: Buffer) => {
        rest += chunk.toString('utf8');
        const parts = rest.split('\n');
        rest = parts.pop() ?? '';
        for (const line of parts) {
          entry.lines.push(line);
          if (entry.lines.length > LOG_LINES) entry.lines.shift();
          entry.events.emit('line', line);
        }
      };
    })();
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (err) => {
      entry.state = 'error';
      entry.reason = err.message;
    });
    child.once('exit', (code, signal) => {
      if (entry.state === 'running') {
        entry.state = code === 0 || signal === 'SIGTERM' ? 'stopped' : 'error';
        entry.reason = signal ? `killed by ${signal}` : `exited with code ${code}`;
      }
      entry.events.emit('end');
    });
    this.#running.set(spec.projectId, entry);
    this.#log.info(
      {
        projectId: spec.projectId,
        pid: child.pid,
        port: hostPort,
        sandbox: Boolean(this.#bwrap),
        ownNetwork: Boolean(listener),
      },
      'process runtime: started',
    );
    return this.#instance(entry);
  }

  async stop(projectId: string): Promise<void> {
    const entry = this.#running.get(projectId);
    if (entry) await this.#kill(entry);
  }

  async remove(projectId: string): Promise<void> {
    await this.stop(projectId);
    this.#running.delete(projectId);
  }

  async inspect(projectId: string): Promise<RuntimeInstance | undefined> {
    const entry = this.#running.get(projectId);
    return entry ? this.#instance(entry) : undefined;
  }

  async list(): Promise<RuntimeInstance[]> {
    return [...this.#running.values()].map((e) => this.#instance(e));
  }

  async *logs(projectId: string, options: LogOptions): AsyncIterable<string> {
    const entry = this.#running.get(projectId);
    if (!entry) return;
    const history = entry.lines.slice(-options.tail);
    if (!options.follow) {
      yield* history;
      return;
    }
    const queue: string[] = [...history];
    let wake: (() => void) | undefined;
    let done = false;
    const onLine = (line: string) => {
      queue.push(line);
      wake?.();
    };
    const onEnd = () => {
      done = true;
      wake?.();
    };
    entry.events.on('line', onLine);
    entry.events.on('end', onEnd);
    options.signal?.addEventListener('abort', onEnd, { once: true });
    try {
      while (!done || queue.length) {
        if (queue.length) yield queue.shift()!;
        else await new Promise<void>((resolve) => (wake = resolve));
        if (options.signal?.aborted) return;
      }
    } finally {
      entry.events.off('line', onLine);
      entry.events.off('end', onEnd);
    }
  }

  async stats(projectId: string): Promise<RuntimeStats | undefined> {
    const entry = this.#running.get(projectId);
    if (!entry || entry.state !== 'running' || !entry.child.pid) return undefined;
    const { ticks, rssPages } = await treeUsage(entry.child.pid);
    const now = Date.now();
    const previous = entry.lastCpu;
    entry.lastCpu = { ticks, at: now };
    const ticksPerSecond = 100;
    const cpuPercent =
      previous && now > previous.at
        ? ((ticks - previous.ticks) / ticksPerSecond / ((now - previous.at) / 1000)) * 100
        : 0;
    return {
      cpuPercent: Math.max(0, cpuPercent),
      memoryMb: (rssPages * 4096) / 2 ** 20,
      networkInBytes: 0,
      networkOutBytes: 0,
    };
  }

  async openTty(projectId: string, size: { cols: number; rows: number }): Promise<TtySession> {
    const entry = this.#running.get(projectId);
    if (!entry || entry.state !== 'running') {
      throw errors.conflict('The project is not running; start it first');
    }
    const pty = await import('node-pty');
    const shell = existsSync('/bin/bash') ? '/bin/bash' : '/bin/sh';
    // The dev server's environment (project variables, PORT) and, sandboxed, its sandbox.
    const env = { ...entry.env, TERM: 'xterm-256color' };
    const [command, args] = await this.#ttyCommand(entry, [shell, '-i']);
    const term = pty.spawn(command, args, {
      cols: size.cols,
      rows: size.rows,
      cwd: entry.spec.workspace,
      env,
    });
    const stream = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        term.write(chunk.toString('utf8'));
        callback();
      },
      final(callback) {
        term.kill();
        callback();
      },
    });
    term.onData((data) => stream.push(Buffer.from(data, 'utf8')));
    term.onExit(() => stream.push(null));
    return {
      stream,
      resize: async (cols, rows) => term.resize(cols, rows),
      close: () => {
        try {
          term.kill();
        } catch {
          // already gone
        }
        stream.destroy();
      },
    };
  }

  /** The environment of a project's processes (dev command and terminals). */
  #environment(spec: RuntimeSpec, port: number): Record<string, string> {
    return {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      LANG: 'C.UTF-8',
      ...spec.env,
      PORT: String(port),
      NODE_ENV: 'development',
      npm_config_update_notifier: 'false',
      VAPORFORM_PROJECT_ID: spec.projectId,
      // In the sandbox HOME is its private /tmp (bwrap --setenv); unsandboxed, the workspace.
      HOME: this.#bwrap ? '/tmp' : spec.workspace,
    };
  }

  /**
   * How a terminal runs `argv`: inside the dev server's own sandbox (its namespaces, /tmp and
   * network) when the machine allows joining it, else in a sandbox of its own (with a network of
   * its own when the dev server has one), unsandboxed without bubblewrap.
   */
  async #ttyCommand(entry: Running, argv: string[]): Promise<[string, string[]]> {
    if (!this.#bwrap) return [argv[0]!, argv.slice(1)];
    const support = await this.#probe();
    const ownNetwork = entry.ownNetwork;
    if (ownNetwork && support.joinSandbox && entry.child.pid) {
      const pid = await sandboxPid(entry.child.pid);
      const workspace = await stat(entry.spec.workspace).catch(() => undefined);
      if (pid && workspace) return joinSandboxCommand(pid, workspace, argv);
    }
    return [
      this.#bwrap,
      [
        ...this.#sandboxArgs(entry.spec.workspace),
        ...(ownNetwork ? this.#networkArgs() : []),
        ...argv,
      ],
    ];
  }

  /** Ends every process (children cannot be adopted by the next server process). */
  async close(): Promise<void> {
    await Promise.all([...this.#running.values()].map((e) => this.#kill(e)));
    await this.#egress.close();
  }

  /** A network namespace of its own, with the egress proxy's socket (read-only). */
  #networkArgs(): string[] {
    const socket = this.#egress.socketPath;
    return ['--unshare-net', ...(socket ? ['--ro-bind', socket, EGRESS_SOCKET] : [])];
  }

  #sandboxArgs(workspace: string): string[] {
    const args = [
      '--ro-bind',
      '/usr',
      '/usr',
      '--symlink',
      'usr/bin',
      '/bin',
      '--symlink',
      'usr/lib',
      '/lib',
      '--symlink',
      'usr/lib64',
      '/lib64',
      '--symlink',
      'usr/sbin',
      '/sbin',
    ];
    for (const file of [
      'passwd',
      'group',
      'hosts',
      'resolv.conf',
      'nsswitch.conf',
      'ssl',
      'alternatives',
      'localtime',
    ]) {
      args.push('--ro-bind-try', `/etc/${file}`, `/etc/${file}`);
    }
    // Node installed outside /usr (nvm, /opt): make it visible read-only.
    const nodeRoot = path.resolve(path.dirname(process.execPath), '..');
    if (!nodeRoot.startsWith('/usr')) args.push('--ro-bind', nodeRoot, nodeRoot);
    args.push(
      '--bind',
      workspace,
      '/app',
      '--chdir',
      '/app',
      '--dev',
      '/dev',
      '--proc',
      '/proc',
      '--tmpfs',
      '/tmp',
      '--setenv',
      'HOME',
      '/tmp',
      '--unshare-pid',
      '--unshare-ipc',
      '--unshare-uts',
      '--unshare-cgroup-try',
      '--die-with-parent',
      '--new-session',
      '--cap-drop',
      'ALL',
    );
    return args;
  }

  async #kill(entry: Running): Promise<void> {
    if (entry.child.exitCode === null && entry.child.signalCode === null && entry.child.pid) {
      entry.state = 'stopped';
      entry.reason = 'stopped';
      try {
        process.kill(-entry.child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-entry.child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 5_000);
      await entry.exited;
      clearTimeout(timer);
    }
  }

  #instance(entry: Running): RuntimeInstance {
    return {
      id: `process-${entry.child.pid ?? 0}`,
      projectId: entry.spec.projectId,
      state: entry.state,
      ...(entry.reason && entry.state !== 'running' ? { reason: entry.reason } : {}),
      ports: { [String(entry.port)]: entry.hostPort },
      hostPort: entry.hostPort,
      image: 'process',
      createdAt: entry.createdAt,
      ...(entry.state === 'running' ? { startedAt: entry.startedAt } : {}),
      pooled: false,
    };
  }
}

function sameSpec(a: RuntimeSpec, b: RuntimeSpec): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A port nobody listens on now (127.0.0.1). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** CPU ticks and resident pages of `root` and all its descendants (sandboxed ones too). */
async function treeUsage(root: number): Promise<{ ticks: number; rssPages: number }> {
  let entries: string[] = [];
  try {
    entries = await readdir('/proc');
  } catch {
    return { ticks: 0, rssPages: 0 };
  }
  const procs = new Map<number, { ppid: number; ticks: number; rss: number }>();
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      // Fields after the command (which may contain spaces) start after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      procs.set(Number(name), {
        ppid: Number(fields[1]),
        ticks: Number(fields[11]) + Number(fields[12]), // utime + stime
        rss: Number(fields[21]),
      });
    } catch {
      // exited meanwhile
    }
  }
  let ticks = 0;
  let rssPages = 0;
  const queue = [root];
  const seen = new Set<number>();
  while (queue.length) {
    const pid = queue.shift()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    const proc = procs.get(pid);
    if (proc) {
      ticks += proc.ticks;
      rssPages += proc.rss;
    }
    for (const [child, info] of procs) if (info.ppid === pid) queue.push(child);
  }
  return { ticks, rssPages };
}
