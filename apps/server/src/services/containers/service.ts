import { existsSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { errors } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import { workspaceDir } from '../files/index.ts';
import type { Metrics } from '../monitoring/index.ts';
import type { ProjectHealth, ProjectRecord, ProjectsService } from '../projects/index.ts';
import type { EventBus } from '../realtime/index.ts';
import type { TemplateRun, TemplatesService } from '../templates/index.ts';
import type {
  ContainerRuntime,
  RuntimeInstance,
  RuntimeKind,
  RuntimeSpec,
  TtySession,
} from './runtime.ts';
import type { ContainerResourceRow, ContainersStore } from './store.ts';

/** A project's container as the API shows it (API.md › Containers and preview). */
export interface ContainerInfo {
  id: string;
  projectId: string;
  status: 'starting' | 'running' | 'stopped' | 'error';
  /** Container port → host port (127.0.0.1). */
  ports: Record<string, number>;
  /** Where the dev server answers on the host (internal; browsers use previewUrl). */
  serviceUrl: string | null;
  previewUrl: string | null;
  health: ProjectHealth;
  runtime: RuntimeKind;
  image: string;
  /** Taken ready-made from the warm pool. */
  pooled: boolean;
  reason: string | null;
  resources: { cpuPercent: number | null; memoryMb: number | null; sampledAt: string | null };
  createdAt: string;
  lastActivity: string;
}

/** What a `container_status` event carries on the project channel. */
export interface ContainerStatusEvent {
  projectId: string;
  status: ContainerInfo['status'];
  health: ProjectHealth;
  containerId: string | null;
  serviceUrl: string | null;
  previewUrl: string | null;
  reason: string | null;
  at: string;
}

/** Outcome of one reconciliation pass. */
export interface ReconcileReport {
  checked: number;
  restarted: string[];
  stopped: string[];
  markedStopped: string[];
  removedOrphans: number;
}

export interface ContainersServiceDeps {
  runtime: ContainerRuntime;
  projects: ProjectsService;
  templates: TemplatesService;
  bus: EventBus;
  metrics: Metrics;
  log: Logger;
  store: ContainersStore;
  dataDir: string;
  /** Image per runtime family (`node`, `python`, `go`…). */
  images: Record<string, string>;
  previewUrl?: (projectId: string) => string;
  /** The project's environment variables (from the secrets service), injected at start. */
  environment?: (projectId: string) => Promise<Record<string, string>>;
  reconcileIntervalMs: number;
  statsIntervalMs: number;
  pidsLimit: number;
  /** How long a dev server may take to answer after start (installs included). */
  healthTimeoutMs?: number;
}

const DEFAULT_PORT = 3000;
/** Crash restarts allowed per project within RESTART_WINDOW_MS before it is marked error. */
const RESTART_BUDGET = 3;
const RESTART_WINDOW_MS = 10 * 60_000;

/**
 * Runs projects: start, stop, restart, rebuild and delete; keeps the project's status, health,
 * container id and service URL true; announces changes on the project channel; reconciles the
 * database with the engine at start-up and on a timer; samples resource usage.
 */
export class ContainersService {
  readonly #d: ContainersServiceDeps;
  readonly #runtime: ContainerRuntime;
  readonly #log: Logger;
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #healthWatch = new Map<string, { abort: AbortController; done: Promise<boolean> }>();
  readonly #crashes = new Map<string, number[]>();
  #timers: NodeJS.Timeout[] = [];
  #reconciling: Promise<ReconcileReport> | undefined;
  #closed = false;

  constructor(deps: ContainersServiceDeps) {
    this.#d = deps;
    this.#runtime = deps.runtime;
    this.#log = deps.log;
  }

  /** The engine in use. */
  get runtime(): ContainerRuntime {
    return this.#runtime;
  }

  /** Prepares the engine, reconciles once in the background and starts the timers. */
  async init(): Promise<void> {
    await this.#runtime.init();
    void this.reconcile().catch((err: unknown) => this.#log.warn({ err }, 'reconcile failed'));
    if (this.#d.reconcileIntervalMs > 0) {
      this.#timers.push(
        setInterval(() => {
          void this.reconcile().catch((err: unknown) =>
            this.#log.warn({ err }, 'reconcile failed'),
          );
        }, this.#d.reconcileIntervalMs).unref(),
      );
    }
    if (this.#d.statsIntervalMs > 0) {
      this.#timers.push(
        setInterval(() => {
          void this.sampleStats().catch((err: unknown) =>
            this.#log.warn({ err }, 'stats sampling failed'),
          );
        }, this.#d.statsIntervalMs).unref(),
      );
    }
  }

  /** Stops the timers and health watchers; running containers keep running. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    for (const watch of this.#healthWatch.values()) watch.abort.abort();
    await this.#reconciling?.catch(() => undefined);
    await Promise.allSettled([...this.#locks.values()]);
    await this.#runtime.close();
  }

  /** Containers of every project `userId` is a member of. */
  async list(userId: string): Promise<ContainerInfo[]> {
    const projects = await this.#d.projects.list(userId);
    const ids = projects.filter((p) => p.containerId).map((p) => p.id);
    const rows = new Map((await this.#d.store.findContainers(ids)).map((r) => [r.project_id, r]));
    const out: ContainerInfo[] = [];
    for (const id of ids) {
      const info = await this.#info(id, rows.get(id)).catch(() => undefined);
      if (info) out.push(info);
    }
    return out;
  }

  /**
   * The project's container (the caller's role is checked by the route).
   * @throws AppError not_found when the project has no container yet.
   */
  async get(projectId: string): Promise<ContainerInfo> {
    const info = await this.#info(projectId);
    if (!info) throw errors.notFound('container');
    return info;
  }

  /**
   * Starts the project's container (reusing it when nothing changed), or the warm pool's.
   * @param options.wait resolve once the dev server answers (bounded), not just once started.
   * @throws AppError not_found, unavailable (image missing, engine refused).
   */
  start(
    projectId: string,
    options: { wait?: boolean; actor?: string } = {},
  ): Promise<ContainerInfo> {
    return this.#withLock(projectId, () => this.#start(projectId, { fresh: false, ...options }));
  }

  /** Stops the container; the project becomes `stopped`. */
  stop(projectId: string): Promise<ContainerInfo> {
    return this.#withLock(projectId, async () => {
      await this.#requireProject(projectId);
      this.#stopWatching(projectId);
      await this.#runtime.stop(projectId);
      await this.#d.projects.setRuntimeState(projectId, {
        status: 'stopped',
        statusReason: null,
        health: 'unknown',
        serviceUrl: null,
        allocatedPort: null,
      });
      await this.#d.store.setContainerState(projectId, { status: 'stopped', health: 'unknown' });
      const info = await this.get(projectId);
      await this.#publish(info);
      return info;
    });
  }

  /** Stops and starts again (the same container when its configuration did not change). */
  restart(projectId: string, options: { wait?: boolean } = {}): Promise<ContainerInfo> {
    return this.#withLock(projectId, async () => {
      await this.#requireProject(projectId);
      this.#stopWatching(projectId);
      await this.#runtime.stop(projectId);
      return this.#start(projectId, { fresh: false, ...options });
    });
  }

  /** A new container on the same workspace (the old one is removed). */
  rebuild(projectId: string, options: { wait?: boolean } = {}): Promise<ContainerInfo> {
    return this.#withLock(projectId, () => this.#start(projectId, { fresh: true, ...options }));
  }

  /** Removes the container and its network (project deletion). */
  remove(projectId: string): Promise<void> {
    return this.#withLock(projectId, async () => {
      this.#stopWatching(projectId);
      await this.#runtime.remove(projectId);
    });
  }

  /** Log lines of the project's container; follows new lines until `signal` aborts. */
  logs(
    projectId: string,
    options: { follow: boolean; tail: number; signal?: AbortSignal },
  ): AsyncIterable<string> {
    return this.#runtime.logs(projectId, options);
  }

  /**
   * Where the project's dev server answers, for the preview proxy: always 127.0.0.1 and the
   * port the engine published for this project, never anything a request names.
   */
  async target(projectId: string): Promise<{ host: string; port: number } | undefined> {
    const instance = await this.#runtime.inspect(projectId);
    if (!instance || instance.state !== 'running' || !instance.hostPort) return undefined;
    return { host: '127.0.0.1', port: instance.hostPort };
  }

  /**
   * A shell with a TTY inside the project's running container.
   * @throws AppError conflict when it is not running.
   */
  async openTty(projectId: string, size: { cols: number; rows: number }): Promise<TtySession> {
    return this.#runtime.openTty(projectId, size);
  }

  /**
   * Brings the database and the engine back together: projects that should run but do not
   * are started again (crashes within a budget), containers of stopped projects are stopped,
   * containers of deleted projects are removed.
   */
  reconcile(): Promise<ReconcileReport> {
    if (this.#reconciling) return this.#reconciling;
    this.#reconciling = this.#reconcile().finally(() => (this.#reconciling = undefined));
    return this.#reconciling;
  }

  /** Samples CPU and memory of running containers into the database and the metrics. */
  async sampleStats(): Promise<number> {
    let sampled = 0;
    for (const instance of await this.#runtime.list()) {
      if (instance.state !== 'running' || this.#closed) continue;
      const stats = await this.#runtime.stats(instance.projectId).catch(() => undefined);
      if (!stats) continue;
      await this.#d.store.recordSample(instance.projectId, stats);
      this.#d.metrics.containerResourceUsage.observe(
        { resource: 'cpu_cores' },
        stats.cpuPercent / 100,
      );
      this.#d.metrics.containerResourceUsage.observe(
        { resource: 'memory_gib' },
        stats.memoryMb / 1024,
      );
      sampled++;
    }
    return sampled;
  }

  // ───────────────────────────── internals ─────────────────────────────

  async #start(
    projectId: string,
    options: { fresh: boolean; wait?: boolean },
  ): Promise<ContainerInfo> {
    const project = await this.#requireProject(projectId);
    this.#stopWatching(projectId);
    const started = performance.now();
    let spec: RuntimeSpec;
    let instance: RuntimeInstance;
    try {
      spec = await this.#spec(project);
      // Announced while the engine works (the final state is written after both).
      const announced = Promise.all([
        this.#d.projects.setRuntimeState(projectId, { health: 'starting', statusReason: null }),
        this.#publishRaw(projectId, {
          status: 'starting',
          health: 'starting',
          containerId: project.containerId ?? null,
          serviceUrl: null,
          reason: null,
        }),
      ]);
      instance = await this.#runtime.start(spec, { fresh: options.fresh }).finally(() => announced);
      if (instance.state !== 'running') {
        throw errors.unavailable(`The container did not start (${instance.reason ?? 'unknown'})`);
      }
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.#log.warn({ err, projectId }, 'container start failed');
      await this.#d.projects.setRuntimeState(projectId, {
        status: 'error',
        statusReason: reason.slice(0, 1000),
        health: 'unhealthy',
      });
      await this.#publishRaw(projectId, {
        status: 'error',
        health: 'unhealthy',
        containerId: project.containerId ?? null,
        serviceUrl: null,
        reason,
      });
      if (err instanceof Error && 'code' in err && 'status' in err) throw err;
      throw errors.unavailable(`The project could not be started: ${reason}`);
    }
    this.#d.metrics.containerStartDuration.observe(
      { runtime: this.#runtime.kind, path: instance.pooled ? 'warm' : 'cold' },
      (performance.now() - started) / 1000,
    );
    const serviceUrl = instance.hostPort ? `http://127.0.0.1:${instance.hostPort}` : null;
    const recorded = this.#d.projects.setRuntimeState(projectId, {
      status: 'running',
      statusReason: null,
      health: 'starting',
      containerId: instance.id,
      serviceUrl,
      allocatedPort: instance.hostPort ?? null,
    });
    const stored = this.#d.store.upsertContainer({
      projectId,
      containerId: instance.id,
      status: 'active',
      health: 'starting',
      configuration: {
        runtime: this.#runtime.kind,
        image: instance.image,
        port: spec.port,
        hostPort: instance.hostPort ?? null,
        install: spec.install,
        dev: spec.dev,
        memoryMb: spec.memoryMb,
        cpuPercent: spec.cpuPercent,
        pidsLimit: spec.pidsLimit,
        pooled: instance.pooled,
      },
    });
    await Promise.all([recorded, stored]);
    const healthy = this.#watchHealth(projectId, instance);
    if (options.wait) await healthy;
    // The engine's answer is fresh unless we waited for health (it may have restarted since).
    const info = options.wait
      ? await this.get(projectId)
      : await this.#info(projectId, undefined, instance);
    if (!info) throw errors.notFound('container');
    if (!options.wait || info.health !== 'healthy') await this.#publish(info);
    return info;
  }

  /** What to run for `project`: its template's run configuration, else what its files say. */
  async #spec(project: ProjectRecord): Promise<RuntimeSpec> {
    const workspace = workspaceDir(this.#d.dataDir, project.id);
    const template = project.templateId
      ? await this.#d.templates.find(project.templateId)
      : undefined;
    const run = template?.run.dev ? template.run : detectRun(workspace);
    const family = run.image ?? 'node';
    const image = this.#d.images[family];
    if (!image) {
      throw errors.unavailable(
        `No runtime image is configured for ${family} projects: set VAPORFORM_RUNTIME_IMAGES=${family}=<image>`,
      );
    }
    const env = (await this.#d.environment?.(project.id)) ?? {};
    return {
      projectId: project.id,
      image,
      workspace,
      port: run.port ?? DEFAULT_PORT,
      install: run.install,
      dev: run.dev ?? 'npm start',
      env,
      memoryMb: project.memoryLimitMb,
      cpuPercent: project.cpuLimitPercent,
      pidsLimit: this.#d.pidsLimit,
    };
  }

  /** Polls the dev port until it answers (health = the port answers); bounded in time. */
  #watchHealth(projectId: string, instance: RuntimeInstance): Promise<boolean> {
    this.#stopWatching(projectId);
    const abort = new AbortController();
    const limit = Date.now() + (this.#d.healthTimeoutMs ?? 10 * 60_000);
    const done = (async () => {
      let delay = 25;
      while (!abort.signal.aborted && Date.now() < limit) {
        if (instance.hostPort && (await portAnswers(instance.hostPort, 1_000))) {
          if (abort.signal.aborted) return false;
          await this.#setHealth(projectId, 'healthy');
          return true;
        }
        const now = await this.#runtime.inspect(projectId).catch(() => undefined);
        if (!now || now.id !== instance.id || now.state !== 'running') {
          if (!abort.signal.aborted && now && now.id === instance.id) {
            await this.#crashed(projectId, now);
          }
          return false;
        }
        await sleep(delay, abort.signal);
        delay = Math.min(1_000, Math.round(delay * 1.5));
      }
      if (!abort.signal.aborted) await this.#setHealth(projectId, 'unhealthy');
      return false;
    })()
      .catch((err: unknown) => {
        this.#log.warn({ err, projectId }, 'health watch failed');
        return false;
      })
      .finally(() => {
        if (this.#healthWatch.get(projectId)?.abort === abort) this.#healthWatch.delete(projectId);
      });
    this.#healthWatch.set(projectId, { abort, done });
    return done;
  }

  #stopWatching(projectId: string): void {
    this.#healthWatch.get(projectId)?.abort.abort();
    this.#healthWatch.delete(projectId);
  }

  async #setHealth(projectId: string, health: ProjectHealth): Promise<void> {
    const record = await this.#d.projects.findById(projectId);
    if (!record || record.status !== 'running' || record.health === health) return;
    await this.#d.projects.setRuntimeState(projectId, { health });
    await this.#d.store.setContainerState(projectId, { health });
    const info = await this.#info(projectId);
    if (info) await this.#publish(info);
  }

  /** A container of a running project exited on its own. */
  async #crashed(projectId: string, instance: RuntimeInstance): Promise<void> {
    const record = await this.#d.projects.findById(projectId);
    if (record?.status !== 'running') return; // stopped on purpose meanwhile
    const reason = instance.reason ?? 'the container stopped';
    this.#log.warn({ projectId, reason }, 'project container stopped on its own');
    await this.#d.projects.setRuntimeState(projectId, {
      status: 'error',
      statusReason: reason,
      health: 'unhealthy',
    });
    await this.#d.store.setContainerState(projectId, { status: 'error', health: 'unhealthy' });
    const info = await this.#info(projectId);
    if (info) await this.#publish(info);
  }

  async #reconcile(): Promise<ReconcileReport> {
    const report: ReconcileReport = {
      checked: 0,
      restarted: [],
      stopped: [],
      markedStopped: [],
      removedOrphans: 0,
    };
    const instances = new Map<string, RuntimeInstance>();
    for (const instance of await this.#runtime.list()) instances.set(instance.projectId, instance);
    const all = new Set(await this.#d.projects.listIds());
    const wanted = new Set(await this.#d.projects.listIds(['running', 'creating']));

    for (const [projectId, instance] of instances) {
      if (this.#closed) return report;
      if (!all.has(projectId)) {
        this.#stopWatching(projectId);
        await this.#withLock(projectId, () => this.#runtime.remove(projectId)).catch(
          () => undefined,
        );
        report.removedOrphans++;
        continue;
      }
      if (!wanted.has(projectId) && instance.state === 'running') {
        const record = await this.#d.projects.findById(projectId);
        // Only a project nobody is starting right now: its lock is free and it is not creating.
        if (record && record.status !== 'running' && !this.#locks.has(projectId)) {
          this.#stopWatching(projectId);
          await this.#withLock(projectId, () => this.#runtime.stop(projectId));
          report.stopped.push(projectId);
        }
      }
    }

    for (const projectId of wanted) {
      if (this.#closed) return report;
      if (this.#locks.has(projectId)) continue; // an operation is under way
      report.checked++;
      const record = await this.#d.projects.findById(projectId);
      if (!record || record.status !== 'running') continue;
      const instance = instances.get(projectId);
      if (instance?.state === 'running') {
        // The engine may have restarted it (new port) or the server missed a change.
        const serviceUrl = instance.hostPort ? `http://127.0.0.1:${instance.hostPort}` : null;
        if (record.containerId !== instance.id || (record.serviceUrl ?? null) !== serviceUrl) {
          await this.#d.projects.setRuntimeState(projectId, {
            containerId: instance.id,
            serviceUrl,
            allocatedPort: instance.hostPort ?? null,
          });
        }
        if (!this.#healthWatch.has(projectId)) {
          const answers = instance.hostPort ? await portAnswers(instance.hostPort, 1_000) : false;
          if (answers) await this.#setHealth(projectId, 'healthy');
          else if (instance.pooled && record.health !== 'starting') {
            // A warm container brought back by the engine waits for a command: replace it.
            await this.#restartFromReconcile(projectId, report, true);
          } else {
            // Running but not answering (e.g. just restarted by the engine): starting again.
            await this.#setHealth(projectId, 'starting');
            this.#watchHealth(projectId, { ...instance });
          }
        }
        continue;
      }
      // Should run, but the container is gone or stopped (crash, engine or server restart).
      if (!this.#withinBudget(projectId)) {
        if (record.status === 'running') {
          await this.#crashed(projectId, {
            ...(instance ?? missingInstance(projectId)),
            reason: `${instance?.reason ?? 'the container is gone'}; gave up after ${RESTART_BUDGET} restarts`,
          });
        }
        continue;
      }
      await this.#restartFromReconcile(projectId, report, instance?.pooled ?? false);
    }
    return report;
  }

  async #restartFromReconcile(
    projectId: string,
    report: ReconcileReport,
    fresh: boolean,
  ): Promise<void> {
    this.#log.info({ projectId, fresh }, 'reconcile: starting a project that should be running');
    try {
      await this.#withLock(projectId, () => this.#start(projectId, { fresh }));
      report.restarted.push(projectId);
    } catch (err) {
      this.#log.warn({ err, projectId }, 'reconcile: start failed');
    }
  }

  #withinBudget(projectId: string): boolean {
    const now = Date.now();
    const recent = (this.#crashes.get(projectId) ?? []).filter((t) => now - t < RESTART_WINDOW_MS);
    if (recent.length >= RESTART_BUDGET) return false;
    recent.push(now);
    this.#crashes.set(projectId, recent);
    return true;
  }

  async #requireProject(projectId: string): Promise<ProjectRecord> {
    const project = await this.#d.projects.findById(projectId);
    if (!project) throw errors.notFound('project');
    return project;
  }

  async #info(
    projectId: string,
    row?: ContainerResourceRow,
    known?: RuntimeInstance,
  ): Promise<ContainerInfo | undefined> {
    const [record, instance, resource] = await Promise.all([
      this.#d.projects.findById(projectId),
      known ? Promise.resolve(known) : this.#runtime.inspect(projectId),
      row ? Promise.resolve(row) : this.#d.store.findContainer(projectId),
    ]);
    if (!record || !instance) return undefined;
    const status: ContainerInfo['status'] =
      instance.state !== 'running'
        ? record.status === 'error' || instance.state === 'error'
          ? 'error'
          : 'stopped'
        : record.health === 'starting'
          ? 'starting'
          : 'running';
    const serviceUrl = instance.hostPort ? `http://127.0.0.1:${instance.hostPort}` : null;
    const cpu = resource?.cpu_usage_percent;
    return {
      id: instance.id,
      projectId,
      status,
      ports: instance.ports,
      serviceUrl: instance.state === 'running' ? serviceUrl : null,
      previewUrl:
        instance.state === 'running' && this.#d.previewUrl ? this.#d.previewUrl(projectId) : null,
      health: instance.state === 'running' ? record.health : 'unknown',
      runtime: this.#runtime.kind,
      image: instance.image,
      pooled: instance.pooled,
      reason:
        record.statusReason ?? (instance.state !== 'running' ? (instance.reason ?? null) : null),
      resources: {
        cpuPercent: cpu === null || cpu === undefined ? null : Number(cpu),
        memoryMb: resource?.memory_usage_mb ?? null,
        sampledAt: resource?.last_metrics_at?.toISOString() ?? null,
      },
      createdAt: instance.createdAt,
      lastActivity: (
        resource?.updated_at ?? new Date(instance.startedAt ?? instance.createdAt)
      ).toISOString(),
    };
  }

  async #publish(info: ContainerInfo): Promise<void> {
    await this.#publishRaw(info.projectId, {
      status: info.status,
      health: info.health,
      containerId: info.id,
      serviceUrl: info.serviceUrl,
      reason: info.reason,
    });
  }

  async #publishRaw(
    projectId: string,
    data: Omit<ContainerStatusEvent, 'projectId' | 'at' | 'previewUrl'>,
  ): Promise<void> {
    const event: ContainerStatusEvent = {
      projectId,
      ...data,
      previewUrl:
        data.status === 'running' && this.#d.previewUrl ? this.#d.previewUrl(projectId) : null,
      at: new Date().toISOString(),
    };
    await this.#d.bus
      .publish(`project:${projectId}`, { type: 'container_status', data: event })
      .catch((err: unknown) => this.#log.warn({ err }, 'could not publish container status'));
  }

  /** Runs `task` after any earlier operation on the same project (one at a time per project). */
  #withLock<T>(projectId: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(projectId) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(task);
    const tracked = next
      .finally(() => {
        if (this.#locks.get(projectId) === tracked) this.#locks.delete(projectId);
      })
      .catch(() => undefined); // the caller gets `next`'s rejection; this copy only orders
    this.#locks.set(projectId, tracked);
    return next;
  }
}

function missingInstance(projectId: string): RuntimeInstance {
  return {
    id: '',
    projectId,
    state: 'stopped',
    ports: {},
    image: '',
    createdAt: new Date().toISOString(),
    pooled: false,
  };
}

/** Run configuration read from a workspace without a template (package.json, server.js…). */
export function detectRun(workspace: string): TemplateRun {
  const pkgPath = path.join(workspace, 'package.json');
  if (existsSync(pkgPath)) {
    let pkg: { scripts?: Record<string, string>; dependencies?: object; devDependencies?: object } =
      {};
    try {
      pkg = JSON.parse(readFileSync(pkgPath, 'utf8'));
    } catch {
      // unreadable package.json: fall through to npm start
    }
    const hasDeps =
      Object.keys(pkg.dependencies ?? {}).length + Object.keys(pkg.devDependencies ?? {}).length >
      0;
    return {
      install: hasDeps ? 'npm install' : null,
      dev: pkg.scripts?.dev ? 'npm run dev' : pkg.scripts?.start ? 'npm start' : 'node server.js',
      port: DEFAULT_PORT,
      image: 'node',
    };
  }
  for (const entry of ['server.js', 'index.js', 'main.js']) {
    if (existsSync(path.join(workspace, entry))) {
      return { install: null, dev: `node ${entry}`, port: DEFAULT_PORT, image: 'node' };
    }
  }
  return { install: null, dev: staticServer, port: DEFAULT_PORT, image: 'node' };
}

/** A tiny static file server for projects that are only HTML/CSS/JS. */
const staticServer =
  `node -e "const h=require('http'),f=require('fs'),p=require('path');` +
  `h.createServer((q,r)=>{let u=decodeURIComponent(new URL(q.url,'http://x').pathname);` +
  `if(u.endsWith('/'))u+='index.html';const file=p.join(process.cwd(),p.normalize(u));` +
  `if(!file.startsWith(process.cwd())){r.writeHead(400).end();return}` +
  `f.readFile(file,(e,b)=>e?r.writeHead(404).end('not found'):r.end(b))})` +
  `.listen(process.env.PORT||3000,'0.0.0.0')"`;

/**
 * True when the dev server on 127.0.0.1:`port` answers an HTTP request (any status). A bare TCP
 * connect would not do: Docker's userland proxy accepts connections before the app listens.
 */
export function portAnswers(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      path: '/',
      method: 'HEAD',
      agent: false,
      timeout: timeoutMs,
      headers: { 'user-agent': 'vaporform-health' },
    });
    req.once('response', (res) => {
      res.resume();
      req.destroy();
      resolve(true);
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', () => resolve(false));
    req.end();
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
