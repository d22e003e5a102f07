import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { lstat, mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Duplex } from 'node:stream';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { errors } from '../../common/errors.ts';
import { AnchoredDir } from '../../common/anchored-dir.ts';
import type { Logger } from '../../common/logger.ts';
import {
  buildRuntimeImage,
  DEFAULT_RUNTIME_IMAGE,
  imageExists,
  RUNTIME_UID,
  WATCH_COMMAND,
} from './runtime-image.ts';
import type {
  ContainerRuntime,
  LogOptions,
  RuntimeInstance,
  RuntimeSpec,
  RuntimeStats,
  TtySession,
} from './runtime.ts';
import { installScript, shellQuote, splitLines } from './run-script.ts';

const run = promisify(execFile);

const LABEL_MANAGED = 'vaporform.managed';
const LABEL_INSTALLATION = 'vaporform.installation';
const LABEL_PROJECT = 'vaporform.project';
const LABEL_POOL = 'vaporform.pool';
const LABEL_SPEC = 'vaporform.spec';

/** Container port of warm-pool containers: only specs on this port can take one. */
export const POOL_PORT = 3000;

export interface DockerRuntimeOptions {
  docker: Docker;
  /** Label value that marks what this installation owns on a shared engine. */
  installationId: string;
  /** Host name of previews, for the Traefik labels (`<id>.preview.<host>`). */
  previewHost: string;
  dataDir: string;
  log: Logger;
  /** Pre-created, started containers kept ready (0 disables the pool). */
  warmPoolSize: number;
  /** Image of warm-pool containers (the node runtime image). */
  poolImage: string;
  /** Drop traffic from project networks to the host (iptables, needs root). */
  hostIsolation: boolean;
  /** Limits warm containers are created with (a project's defaults: no update at claim). */
  poolLimits: Pick<RuntimeSpec, 'memoryMb' | 'cpuPercent' | 'pidsLimit'>;
  /**
   * The engine runs on another machine, reached at this address: dev ports are published on
   * every interface of that machine (its network policy lets only the servers in). Omitted:
   * published on 127.0.0.1, the engine being on this host.
   */
  portsHost?: string;
}

/**
 * Runs each project in its own hardened container: limits from the project's columns, a pids
 * limit, every capability dropped, no-new-privileges, the default seccomp profile, a non-root
 * user, the workspace bind-mounted at /app, a network of its own, the dev port published on
 * 127.0.0.1 only (every interface of a remote engine: `portsHost`), restart policy
 * unless-stopped.
 */
export class DockerRuntime implements ContainerRuntime {
  readonly kind = 'docker' as const;
  readonly portsHost: string;
  /** The address dev ports are published on, as the engine reports bindings. */
  readonly #publishIp: string;
  readonly #docker: Docker;
  readonly #opts: DockerRuntimeOptions;
  readonly #log: Logger;
  readonly #user: { uid: number; gid: number };
  readonly #poolDir: string;
  #poolEnabled = false;
  #poolFilling: Promise<void> | undefined;
  #closed = false;
  /** Warm containers being claimed by this instance right now. */
  readonly #claimed = new Set<string>();
  /** Image pulls (or builds) in progress, shared by concurrent starts. */
  readonly #pulls = new Map<string, Promise<void>>();

  constructor(options: DockerRuntimeOptions) {
    this.#docker = options.docker;
    this.#opts = options;
    this.#log = options.log;
    const root = process.getuid?.() === 0;
    this.#user = root
      ? { uid: RUNTIME_UID, gid: RUNTIME_UID }
      : { uid: process.getuid?.() ?? RUNTIME_UID, gid: process.getgid?.() ?? RUNTIME_UID };
    this.#poolDir = path.join(options.dataDir, 'warm-pool');
    this.portsHost = options.portsHost ?? '127.0.0.1';
    this.#publishIp = options.portsHost ? '0.0.0.0' : '127.0.0.1';
  }

  async init(): Promise<void> {
    await this.#docker.ping();
    if (this.#opts.hostIsolation) await this.#isolateHost();
    if (this.#opts.warmPoolSize > 0) {
      this.#poolEnabled = await this.#preparePoolDir();
      if (this.#poolEnabled) this.fillPool();
    }
  }

  /** Starts filling the warm pool up to its size in the background. */
  fillPool(): void {
    if (!this.#poolEnabled || this.#closed || this.#poolFilling) return;
    this.#poolFilling = (async () => {
      try {
        await this.#ensureImage(this.#opts.poolImage);
        for (let i = 0; i < 2 * this.#opts.warmPoolSize + 2 && !this.#closed; i++) {
          const ready = await this.#poolContainers();
          const idle = ready.filter((c) => c.State === 'running');
          for (const dead of ready.filter((c) => c.State !== 'running')) {
            await this.#removeContainer(dead.Id);
          }
          if (idle.length >= this.#opts.warmPoolSize) break;
          await this.#createPoolContainer();
        }
      } catch (err) {
        this.#log.warn({ err }, 'warm pool: could not fill');
      } finally {
        this.#poolFilling = undefined;
      }
    })();
  }

  /** Waits until the pool is full (tests, benchmarks). */
  async poolReady(): Promise<number> {
    this.fillPool();
    await this.#poolFilling;
    return (await this.#poolContainers()).filter((c) => c.State === 'running').length;
  }

  async start(spec: RuntimeSpec, options: { fresh: boolean }): Promise<RuntimeInstance> {
    const specHash = hashSpec(spec);
    const [existing] = await Promise.all([
      this.#find(spec.projectId),
      this.#prepareWorkspace(spec.workspace),
    ]);
    if (existing && !options.fresh && existing.Config.Labels?.[LABEL_SPEC] === specHash) {
      const container = this.#docker.getContainer(existing.Id);
      // A crash-looping container waits out the engine's back-off: start it now instead.
      if (existing.State.Restarting) await container.stop({ t: 1 }).catch(() => undefined);
      if (!existing.State.Running || existing.State.Restarting) await startContainer(container);
      return this.#instance(await this.#docker.getContainer(existing.Id).inspect());
    }
    // That container only (another server may have made the next one by now); the project's
    // network stays for the next.
    if (existing) await this.#removeContainer(existing.Id);

    if (
      !existing &&
      this.#poolEnabled &&
      spec.port === POOL_PORT &&
      spec.image === this.#opts.poolImage
    ) {
      const claimed = await this.#claimPoolContainer(spec).catch((err: unknown) => {
        this.#log.warn({ err, projectId: spec.projectId }, 'warm pool: claim failed; cold start');
        return undefined;
      });
      this.fillPool();
      if (claimed) return claimed;
    }

    await this.#ensureImage(spec.image);
    const network = await this.#ensureNetwork(`vf-${spec.projectId}`, spec.projectId, {
      [LABEL_PROJECT]: spec.projectId,
    });
    const portKey = `${spec.port}/tcp`;
    const container = await this.#createOrAdopt(spec.projectId, existing?.Id, {
      name: containerName(spec.projectId),
      Image: spec.image,
      Cmd: ['/bin/sh', '-c', installScript(withWatcher(spec))],
      WorkingDir: '/app',
      User: `${this.#user.uid}:${this.#user.gid}`,
      Env: toEnv(this.#env(spec)),
      ExposedPorts: { [portKey]: {} },
      Labels: {
        ...this.#labels(),
        [LABEL_PROJECT]: spec.projectId,
        [LABEL_SPEC]: specHash,
        ...traefikLabels(spec.projectId, this.#opts.previewHost, spec.port),
      },
      HostConfig: {
        ...this.#hardening(spec),
        Mounts: [{ Type: 'bind', Source: spec.workspace, Target: '/app', ReadOnly: false }],
        PortBindings: { [portKey]: [{ HostIp: this.#publishIp, HostPort: '' }] },
        NetworkMode: network,
        RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 },
      },
    });
    await startContainer(container);
    return this.#instance(await container.inspect());
  }

  /**
   * Creates the project's container, or takes the one another server on this engine is making
   * at the same moment (two starts at once): the name is the lock. A name still held by the
   * container being replaced (`replaced`, or one being removed) is waited for.
   */
  async #createOrAdopt(
    projectId: string,
    replaced: string | undefined,
    options: Docker.ContainerCreateOptions,
  ): Promise<Docker.Container> {
    for (let tries = 0; ; tries++) {
      try {
        return await this.#docker.createContainer(options);
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode !== 409 || tries >= 50) throw err;
      }
      // The engine holds the name a moment before the container can be inspected.
      const made = await this.#find(projectId);
      if (made && made.Id !== replaced && made.State.Status !== 'removing') {
        return this.#docker.getContainer(made.Id);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(projectId: string): Promise<void> {
    const found = await this.#find(projectId);
    if (!found || !found.State.Running) return;
    await this.#docker
      .getContainer(found.Id)
      .stop({ t: 5 })
      .catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 304) throw err; // already stopped
      });
  }

  async remove(projectId: string): Promise<void> {
    const found = await this.#find(projectId);
    if (found) await this.#removeContainer(found.Id);
    await this.#removeNetwork(`vf-${projectId}`);
  }

  async inspect(projectId: string): Promise<RuntimeInstance | undefined> {
    const found = await this.#find(projectId);
    return found ? this.#instance(found) : undefined;
  }

  async list(): Promise<RuntimeInstance[]> {
    const containers = await this.#docker.listContainers({
      all: true,
      filters: { label: [`${LABEL_INSTALLATION}=${this.#opts.installationId}`] },
    });
    const out: RuntimeInstance[] = [];
    for (const c of containers) {
      const projectId = projectOf(c.Labels, c.Names);
      if (!projectId) continue; // an unclaimed warm-pool container
      const hostPort = c.Ports.find((p) => p.IP === this.#publishIp && p.PublicPort)?.PublicPort;
      out.push({
        id: c.Id,
        projectId,
        // `restarting`: the dev server exited and the engine's restart policy brings it back.
        state:
          c.State === 'running'
            ? 'running'
            : c.State === 'dead' || c.State === 'restarting'
              ? 'error'
              : 'stopped',
        ...(c.State === 'restarting' ? { restarting: true } : {}),
        ports: Object.fromEntries(
          c.Ports.filter((p) => p.PublicPort).map((p) => [String(p.PrivatePort), p.PublicPort]),
        ),
        ...(hostPort ? { hostPort } : {}),
        image: c.Image,
        createdAt: new Date(c.Created * 1000).toISOString(),
        pooled: Boolean(c.Labels[LABEL_POOL]),
      });
    }
    return out;
  }

  async *logs(projectId: string, options: LogOptions): AsyncIterable<string> {
    const found = await this.#find(projectId);
    if (!found) return;
    const container = this.#docker.getContainer(found.Id);
    if (!options.follow) {
      const buffer = (await container.logs({
        follow: false,
        stdout: true,
        stderr: true,
        tail: options.tail,
      })) as unknown as Buffer;
      yield* splitLines([demux(buffer)]);
      return;
    }
    const raw = (await container.logs({
      follow: true,
      stdout: true,
      stderr: true,
      tail: options.tail,
    })) as unknown as NodeJS.ReadableStream & { destroy(): void };
    const out = new PassThrough();
    this.#docker.modem.demuxStream(raw, out, out);
    raw.on('end', () => out.end());
    raw.on('error', () => out.end());
    const abort = () => {
      raw.destroy();
      out.end();
    };
    options.signal?.addEventListener('abort', abort, { once: true });
    try {
      yield* splitLines(out);
    } finally {
      options.signal?.removeEventListener('abort', abort);
      raw.destroy();
    }
  }

  async stats(projectId: string): Promise<RuntimeStats | undefined> {
    const found = await this.#find(projectId);
    if (!found?.State.Running) return undefined;
    const s = (await this.#docker.getContainer(found.Id).stats({ stream: false })) as DockerStats;
    const cpuDelta =
      s.cpu_stats.cpu_usage.total_usage - (s.precpu_stats.cpu_usage?.total_usage ?? 0);
    const systemDelta =
      (s.cpu_stats.system_cpu_usage ?? 0) - (s.precpu_stats.system_cpu_usage ?? 0);
    const cpus = s.cpu_stats.online_cpus ?? s.cpu_stats.cpu_usage.percpu_usage?.length ?? 1;
    const cpuPercent = systemDelta > 0 && cpuDelta > 0 ? (cpuDelta / systemDelta) * cpus * 100 : 0;
    const cache =
      s.memory_stats.stats?.total_inactive_file ?? s.memory_stats.stats?.inactive_file ?? 0;
    const memory = Math.max(0, (s.memory_stats.usage ?? 0) - cache);
    let rx = 0;
    let tx = 0;
    for (const net of Object.values(s.networks ?? {})) {
      rx += net.rx_bytes;
      tx += net.tx_bytes;
    }
    return {
      cpuPercent,
      memoryMb: memory / 2 ** 20,
      ...(s.memory_stats.limit ? { memoryLimitMb: s.memory_stats.limit / 2 ** 20 } : {}),
      networkInBytes: rx,
      networkOutBytes: tx,
    };
  }

  async openTty(projectId: string, size: { cols: number; rows: number }): Promise<TtySession> {
    const found = await this.#find(projectId);
    if (!found?.State.Running) throw errors.conflict('The project is not running; start it first');
    const exec = await this.#docker.getContainer(found.Id).exec({
      Cmd: [
        '/bin/sh',
        '-c',
        'if [ -x /bin/bash ]; then exec /bin/bash -i; else exec /bin/sh -i; fi',
      ],
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: true,
      User: `${this.#user.uid}:${this.#user.gid}`,
      WorkingDir: '/app',
      Env: ['TERM=xterm-256color', `HOME=${this.#home()}`],
    });
    const stream = (await exec.start({
      hijack: true,
      stdin: true,
      Tty: true,
    })) as unknown as import('node:stream').Duplex;
    const resize = async (cols: number, rows: number) => {
      await exec.resize({ w: cols, h: rows }).catch(() => undefined);
    };
    await resize(size.cols, size.rows);
    return {
      stream,
      resize,
      close: () => {
        stream.end();
        stream.destroy();
      },
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#poolFilling;
  }

  /**
   * Removes the unclaimed warm containers and releases the pool's mount (tests, uninstall).
   * Containers already handed to projects keep running.
   */
  async drainPool(): Promise<void> {
    this.#closed = true;
    await this.#poolFilling;
    for (const c of await this.#poolContainers()) await this.#removeContainer(c.Id);
    if (this.#poolEnabled) {
      await run('umount', ['-l', this.#poolDir]).catch(() => undefined);
      this.#poolEnabled = false;
    }
  }

  /** Unclaimed and claimed warm-pool containers of this installation, for tests. */
  async poolSize(): Promise<number> {
    return (await this.#poolContainers()).filter((c) => c.State === 'running').length;
  }

  // ───────────────────────────── internals ─────────────────────────────

  #labels(): Record<string, string> {
    return { [LABEL_MANAGED]: 'true', [LABEL_INSTALLATION]: this.#opts.installationId };
  }

  #home(): string {
    return this.#user.uid === RUNTIME_UID ? '/home/vaporform' : '/tmp';
  }

  #env(spec: RuntimeSpec): Record<string, string> {
    return {
      ...spec.env,
      PORT: String(spec.port),
      HOST: '0.0.0.0',
      HOME: this.#home(),
      NODE_ENV: 'development',
      npm_config_cache: '/tmp/.npm',
      npm_config_update_notifier: 'false',
      VAPORFORM_PROJECT_ID: spec.projectId,
    };
  }

  /** The hardening every project container gets (seeds/001 container security). */
  #hardening(spec: Pick<RuntimeSpec, 'memoryMb' | 'cpuPercent' | 'pidsLimit'>) {
    const memory = spec.memoryMb * 2 ** 20;
    return {
      Memory: memory,
      MemorySwap: memory, // no swap beyond the limit
      NanoCpus: Math.round((spec.cpuPercent / 100) * 1e9),
      PidsLimit: spec.pidsLimit,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges:true'], // the default seccomp profile applies
      Init: true, // reaps zombies, forwards signals
      // Like any Linux /tmp (npm's cache, tools' scratch files); the image's /tmp is 1777 too,
      // which the engine copies onto the tmpfs.
      Tmpfs: { '/tmp': 'rw,exec,nosuid,nodev,mode=1777,size=268435456' },
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '2' } },
    };
  }

  async #find(projectId: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      const info = await this.#docker.getContainer(containerName(projectId)).inspect();
      if (info.Config.Labels?.[LABEL_INSTALLATION] !== this.#opts.installationId) return undefined;
      return info;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
  }

  #instance(info: Docker.ContainerInspectInfo): RuntimeInstance {
    const ports: Record<string, number> = {};
    for (const [key, bindings] of Object.entries(info.NetworkSettings.Ports ?? {})) {
      const binding = bindings?.find((b) => b.HostIp === this.#publishIp) ?? bindings?.[0];
      if (binding?.HostPort) ports[key.replace('/tcp', '')] = Number(binding.HostPort);
    }
    const hostPort = Object.values(ports)[0];
    const state = info.State;
    // A restarting container reports Running too: its dev server exited, the engine waits out
    // its back-off before starting it again.
    const running = state.Running && !state.Restarting;
    const reason = state.OOMKilled
      ? 'killed: out of memory'
      : !running && state.ExitCode
        ? `exited with code ${state.ExitCode}`
        : state.Error || undefined;
    return {
      id: info.Id,
      projectId: projectOf(info.Config.Labels ?? {}, [info.Name]) ?? '',
      state: running
        ? 'running'
        : state.Dead || state.OOMKilled || state.Restarting
          ? 'error'
          : 'stopped',
      ...(reason ? { reason } : {}),
      ...(state.Restarting ? { restarting: true } : {}),
      ports,
      ...(hostPort ? { hostPort } : {}),
      image: info.Config.Image,
      createdAt: new Date(info.Created).toISOString(),
      ...(running ? { startedAt: new Date(state.StartedAt).toISOString() } : {}),
      pooled: Boolean(info.Config.Labels?.[LABEL_POOL]),
    };
  }

  /** Pulls `image` when missing; builds the default runtime image from host files instead. */
  async #ensureImage(image: string): Promise<void> {
    if (await imageExists(this.#docker, image)) return;
    let pending = this.#pulls.get(image);
    if (!pending) {
      pending = (async () => {
        if (image === DEFAULT_RUNTIME_IMAGE) {
          await buildRuntimeImage(this.#docker, { tag: image, log: this.#log });
          return;
        }
        this.#log.info({ image }, 'pulling image');
        try {
          const stream = (await this.#docker.pull(image)) as NodeJS.ReadableStream;
          await new Promise<void>((resolve, reject) =>
            this.#docker.modem.followProgress(stream, (err: Error | null) =>
              err ? reject(err) : resolve(),
            ),
          );
        } catch (err) {
          throw errors.unavailable(
            `The image ${image} is not on this Docker engine and could not be pulled ` +
              `(${(err as Error).message.split('\n')[0]}). Configure an available image ` +
              '(VAPORFORM_RUNTIME_IMAGE, VAPORFORM_RUNTIME_IMAGES) or run `npm run runtime-image`.',
          );
        }
      })().finally(() => this.#pulls.delete(image));
      this.#pulls.set(image, pending);
    }
    await pending;
  }

  /** A bridge network of its own for one project (or warm slot); its interface is `vf…`. */
  async #ensureNetwork(name: string, key: string, labels: Record<string, string>): Promise<string> {
    try {
      await this.#docker.getNetwork(name).inspect();
      return name;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
    const bridge = `vf${createHash('sha256').update(`${this.#opts.installationId}/${key}`).digest('hex').slice(0, 12)}`;
    try {
      await this.#docker.createNetwork({
        Name: name,
        Driver: 'bridge',
        CheckDuplicate: true,
        Labels: { ...this.#labels(), ...labels },
        Options: {
          'com.docker.network.bridge.name': bridge,
          'com.docker.network.bridge.enable_icc': 'true',
          'com.docker.network.bridge.enable_ip_masquerade': 'true',
        },
      });
    } catch (err) {
      // Made by another server on this engine meanwhile: a 409 for the name, or a 403 for the
      // bridge, whose name follows from the key (so the same network is never made twice).
      if ((err as { statusCode?: number }).statusCode === 409) return name;
      const made = await this.#docker
        .getNetwork(name)
        .inspect()
        .catch(() => undefined);
      if (!made) throw err;
    }
    return name;
  }

  async #removeNetwork(name: string): Promise<void> {
    try {
      const network = this.#docker.getNetwork(name);
      const info = (await network.inspect()) as { Labels?: Record<string, string> };
      if (info.Labels?.[LABEL_INSTALLATION] !== this.#opts.installationId) return;
      await network.remove();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }

  /** Removes a container, its warm-pool mount and its own network. */
  async #removeContainer(id: string): Promise<void> {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.#docker.getContainer(id).inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return;
      throw err;
    }
    await this.#docker
      .getContainer(id)
      .remove({ force: true, v: true })
      .catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 404 && err.statusCode !== 409) throw err;
      });
    const slot = info.Config.Labels?.[LABEL_POOL];
    if (slot) {
      await this.#unmountSlot(slot);
      await this.#removeNetwork(`vf-pool-${slot}`);
    }
  }

  /** The workspace exists and belongs to the container's user (the server may run as root). */
  async #prepareWorkspace(workspace: string): Promise<void> {
    await mkdir(workspace, { recursive: true });
    if (process.getuid?.() !== 0) return;
    // The project's code may be running in it already (a restart): never follow its links.
    const root = await AnchoredDir.open(workspace);
    try {
      // node_modules: written by the container user already.
      await root.chownTree(this.#user, new Set(['node_modules']));
    } finally {
      await root.close();
    }
  }

  /**
   * Keeps project networks away from the host: packets from `vf*` bridges to the host itself
   * are dropped unless they answer a connection the host opened (the published ports).
   */
  async #isolateHost(): Promise<void> {
    if (process.getuid?.() !== 0) {
      this.#log.warn('not root: project containers can reach ports the host listens on publicly');
      return;
    }
    const chain = 'VAPORFORM-HOST';
    const ipt = (...args: string[]) => run('iptables', ['-w', ...args]);
    // Added only where missing, never flushed: other instances on this host rely on it too.
    const ensure = async (position: 'first' | 'last', chainName: string, ...rule: string[]) => {
      await ipt('-C', chainName, ...rule).catch(() =>
        position === 'first' ? ipt('-I', chainName, '1', ...rule) : ipt('-A', chainName, ...rule),
      );
    };
    try {
      await ipt('-N', chain).catch(() => undefined); // exists already
      await ensure(
        'first',
        chain,
        '-m',
        'conntrack',
        '--ctstate',
        'ESTABLISHED,RELATED',
        '-j',
        'RETURN',
      );
      await ensure('last', chain, '-j', 'DROP');
      await ensure('first', 'INPUT', '-i', 'vf+', '-j', chain);
    } catch (err) {
      this.#log.warn(
        { err: (err as Error).message },
        'could not install the iptables rule that keeps project containers off the host',
      );
    }
  }

  // ───────────────────────────── warm pool ─────────────────────────────

  async #poolContainers(): Promise<Docker.ContainerInfo[]> {
    const all = await this.#docker.listContainers({
      all: true,
      filters: { label: [`${LABEL_INSTALLATION}=${this.#opts.installationId}`, LABEL_POOL] },
    });
    // Claimed ones were renamed to vf-<projectId>.
    return all.filter((c) => c.Names.some((n) => n.startsWith('/vf-pool-')));
  }

  /**
   * The pool's mount root must be a shared mount so that a workspace bind-mounted onto a slot
   * later propagates into the (already running) container. Needs root.
   */
  async #preparePoolDir(): Promise<boolean> {
    if (process.getuid?.() !== 0) {
      this.#log.warn('warm pool disabled: it needs root (bind mounts into running containers)');
      return false;
    }
    try {
      await mkdir(this.#poolDir, { recursive: true });
      const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
      const mounted = mountinfo.split('\n').some((l) => l.split(' ')[4] === this.#poolDir);
      if (!mounted) await run('mount', ['--bind', this.#poolDir, this.#poolDir]);
      await run('mount', ['--make-rshared', this.#poolDir]);
      return true;
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'warm pool disabled: mount failed');
      return false;
    }
  }

  async #createPoolContainer(): Promise<void> {
    const slot = randomUUID();
    const slotDir = path.join(this.#poolDir, slot);
    await mkdir(slotDir, { recursive: true });
    const network = await this.#ensureNetwork(`vf-pool-${slot}`, slot, { [LABEL_POOL]: slot });
    const portKey = `${POOL_PORT}/tcp`;
    const container = await this.#docker.createContainer({
      name: `vf-pool-${slot}`,
      Image: this.#opts.poolImage,
      // Waits for its command on stdin: the claim writes it once the workspace is mounted.
      Cmd: ['/bin/sh', '-c', 'IFS= read -r line && eval "$line"'],
      OpenStdin: true,
      StdinOnce: false,
      WorkingDir: '/',
      User: `${this.#user.uid}:${this.#user.gid}`,
      Env: [`HOME=${this.#home()}`],
      ExposedPorts: { [portKey]: {} },
      Labels: { ...this.#labels(), [LABEL_POOL]: slot },
      HostConfig: {
        ...this.#hardening(this.#opts.poolLimits),
        Mounts: [
          {
            Type: 'bind',
            Source: slotDir,
            Target: '/app',
            ReadOnly: false,
            BindOptions: { Propagation: 'rslave' },
          },
        ],
        PortBindings: { [portKey]: [{ HostIp: this.#publishIp, HostPort: '' }] },
        NetworkMode: network,
        // An engine restart would bring it back waiting for a command that never comes: let it
        // stay down, so the reconciler replaces it with a regular container.
        RestartPolicy: { Name: 'no' },
      },
    });
    await container.start();
  }

  /** Hands a running warm container to the project: mount, limits, name, then the command. */
  async #claimPoolContainer(spec: RuntimeSpec): Promise<RuntimeInstance | undefined> {
    const idle = (await this.#poolContainers()).filter((c) => c.State === 'running');
    for (const candidate of idle) {
      const slot = candidate.Labels[LABEL_POOL]!;
      if (this.#claimed.has(candidate.Id)) continue;
      this.#claimed.add(candidate.Id);
      const container = this.#docker.getContainer(candidate.Id);
      const slotDir = path.join(this.#poolDir, slot);
      let stdin: NodeJS.WritableStream & { end(): void };
      try {
        // The rename is the claim across instances; mount, stdin and limits go alongside.
        const [renamed, attached] = await Promise.allSettled([
          container.rename({ name: containerName(spec.projectId) }),
          container.attach({ stream: true, stdin: true, hijack: true }) as unknown as Promise<
            NodeJS.WritableStream & { end(): void }
          >,
          run('mount', ['--bind', spec.workspace, slotDir]),
          this.#updateLimits(container, spec),
        ]).then((results) => {
          const failed = results.find((r) => r.status === 'rejected');
          if (results[0].status === 'rejected') {
            // Another instance won the claim: let go of our side of its stdin.
            if (results[1].status === 'fulfilled')
              (results[1].value as unknown as Duplex).destroy();
            return [results[0], undefined] as const;
          }
          if (failed) throw failed.reason;
          return [results[0], (results[1] as PromiseFulfilledResult<typeof stdin>).value] as const;
        });
        if (renamed.status === 'rejected') {
          await this.#unmountSlot(slot, { keepDir: true });
          if ((renamed.reason as { statusCode?: number }).statusCode === 409) continue;
          throw renamed.reason;
        }
        stdin = attached!;
      } catch (err) {
        await this.#removeContainer(candidate.Id).catch(() => undefined);
        throw err;
      } finally {
        this.#claimed.delete(candidate.Id);
      }
      try {
        const exports = Object.entries(this.#env(spec))
          .map(([k, v]) => `export ${k}=${shellQuote(v)};`)
          .join(' ');
        // Written only once the workspace is mounted: the command starts in it.
        stdin.write(`${exports} cd /app && ${installScript(withWatcher(spec))}\n`);
        stdin.end();
        const hostPort = candidate.Ports.find(
          (p) => p.IP === this.#publishIp && p.PublicPort,
        )?.PublicPort;
        return {
          id: candidate.Id,
          projectId: spec.projectId,
          state: 'running',
          ports: hostPort ? { [String(POOL_PORT)]: hostPort } : {},
          ...(hostPort ? { hostPort } : {}),
          image: candidate.Image,
          createdAt: new Date(candidate.Created * 1000).toISOString(),
          startedAt: new Date().toISOString(),
          pooled: true,
        };
      } catch (err) {
        await this.#removeContainer(candidate.Id).catch(() => undefined);
        throw err;
      }
    }
    return undefined;
  }

  /** Applies the project's limits to a warm container, unless they are the pool's already. */
  async #updateLimits(container: Docker.Container, spec: RuntimeSpec): Promise<void> {
    const pool = this.#opts.poolLimits;
    if (
      spec.memoryMb === pool.memoryMb &&
      spec.cpuPercent === pool.cpuPercent &&
      spec.pidsLimit === pool.pidsLimit
    ) {
      return;
    }
    const h = this.#hardening(spec);
    await container.update({
      Memory: h.Memory,
      MemorySwap: h.MemorySwap,
      NanoCpus: h.NanoCpus,
      PidsLimit: h.PidsLimit,
    });
  }

  async #unmountSlot(slot: string, options: { keepDir?: boolean } = {}): Promise<void> {
    const dir = path.join(this.#poolDir, slot);
    for (let i = 0; i < 4; i++) {
      try {
        await run('umount', [dir]);
      } catch {
        break; // nothing (more) mounted there
      }
    }
    if (options.keepDir) return;
    try {
      if ((await lstat(dir)).isDirectory()) await rm(dir, { recursive: false, force: true });
    } catch {
      // already gone, or not empty because a mount is stuck: leave it
    }
  }
}

interface DockerStats {
  cpu_stats: {
    cpu_usage: { total_usage: number; percpu_usage?: number[] };
    system_cpu_usage?: number;
    online_cpus?: number;
  };
  precpu_stats: { cpu_usage?: { total_usage: number }; system_cpu_usage?: number };
  memory_stats: {
    usage?: number;
    limit?: number;
    stats?: { total_inactive_file?: number; inactive_file?: number };
  };
  networks?: Record<string, { rx_bytes: number; tx_bytes: number }>;
}

/** Starts a container; one that another server started meanwhile is fine (304). */
async function startContainer(container: Docker.Container): Promise<void> {
  await container.start().catch((err: { statusCode?: number }) => {
    if (err.statusCode !== 304) throw err;
  });
}
function containerName(projectId: string): string {
  return `vf-${projectId}`;
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The project a container belongs to: its label, or its name once a pool container is claimed. */
function projectOf(labels: Record<string, string>, names: string[]): string | undefined {
  if (labels[LABEL_PROJECT]) return labels[LABEL_PROJECT];
  for (const name of names) {
    const id = name.replace(/^\//, '').replace(/^vf-/, '');
    if (uuid.test(id)) return id;
  }
  return undefined;
}

function hashSpec(spec: RuntimeSpec): string {
  const { projectId: _p, workspace: _w, ...rest } = spec;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex').slice(0, 16);
}

/**
 * `node --watch[-path=…] file.js` runs under the image's watcher when the image has it (see
 * {@link WATCH_COMMAND}), else as given.
 */
export function withWatcher<T extends Pick<RuntimeSpec, 'dev'>>(spec: T): T {
  const match = /^node --watch(?:-path=\S+)? ([\w./-]+\.[cm]?js)$/.exec(spec.dev.trim());
  if (!match) return spec;
  const file = shellQuote(match[1]!);
  return {
    ...spec,
    dev:
      `if command -v ${WATCH_COMMAND} >/dev/null 2>&1; then exec ${WATCH_COMMAND} node ${file}; ` +
      `else exec ${spec.dev.trim()}; fi`,
  };
}

function toEnv(env: Record<string, string>): string[] {
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

/**
 * The seeds' Traefik labels. Disabled: in Vaporform's compose, Traefik routes preview hosts to
 * the server, whose proxy checks membership; routing straight to containers would make every
 * preview public.
 */
function traefikLabels(
  projectId: string,
  previewHost: string,
  port: number,
): Record<string, string> {
  return {
    'traefik.enable': 'false',
    [`traefik.http.routers.vf-${projectId}.rule`]: `Host(\`${projectId}.preview.${previewHost}\`)`,
    [`traefik.http.services.vf-${projectId}.loadbalancer.server.port`]: String(port),
  };
}

/** Docker's multiplexed log format (8-byte frame headers) to plain text. */
function demux(buffer: Buffer): string {
  const chunks: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const type = buffer[offset];
    const size = buffer.readUInt32BE(offset + 4);
    if (type !== 0 && type !== 1 && type !== 2) return buffer.toString('utf8'); // not multiplexed
    chunks.push(buffer.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(chunks).toString('utf8');
}
