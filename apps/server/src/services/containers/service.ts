import { existsSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { errors } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import { workspaceDir } from '../files/index.ts';
import type { Metrics } from '../monitoring/index.ts';
import type { ProjectHealth, ProjectRecord, ProjectsService } from '../projects/index.ts';
import type { EventBus } from '../../common/bus.ts';
import { publishProjectEvent } from '../../common/project-events.ts';
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
  /**
   * `crashed`: the dev server died while the project should run (a watcher waiting for the next
   * save, or an instance the engine restarts with back-off); `crash` says how. `error`: it could
   * not be started at all (image missing, engine refused).
   */
  status: 'starting' | 'running' | 'crashed' | 'stopped' | 'error';
  /** Container port → published port (on the runtime's `portsHost`). */
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
  /** The dev server's crash while `status` is `crashed`, else null. */
  crash: CrashReport | null;
  resources: { cpuPercent: number | null; memoryMb: number | null; sampledAt: string | null };
  createdAt: string;
  lastActivity: string;
}

/** How the dev server crashed: a one-line reason and its last log lines (stdout and stderr). */
export interface CrashReport {
  reason: string;
  /** The last lines it printed, oldest first (at most {@link CRASH_LINES}). */
  lines: string[];
  at: string;
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
  /** Set while `status` is `crashed`. */
  crash: CrashReport | null;
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
/** Log lines a crash report carries. */
export const CRASH_LINES = 20;
/** The reconciler's waits between restarts of an instance that stays down; the last repeats. */
const RESTART_BACKOFF_MS = [1_000, 2_000, 5_000, 10_000, 30_000, 60_000];
/** Least time between two restarts a save asks for. */
const SAVE_RESTART_GAP_MS = 1_000;
/** How long a watcher has to restart a crashed program after a save before we restart it. */
const WATCHER_GRACE_MS = 1_500;

/** Lines a dev-server watcher prints when the program ended and it waits for a change. */
const crashMarkers = [
  /^Failed running '.+'/, // node --watch
  /^Completed running '.+'/,
  /\[nodemon\] app crashed/,
  /\[nodemon\] clean exit/,
];
/** Lines a watcher prints when it starts the program again. */
const restartMarkers = [/^Restarting '.+'/, /\[nodemon\] (restarting|starting)/];

/** What the supervisor knows of one project whose instance runs (see `#supervise`). */
interface Supervision {
  projectId: string;
  instance: RuntimeInstance;
  abort: AbortController;
  /** The last {@link CRASH_LINES} log lines. */
  lines: string[];
  phase: 'starting' | 'running' | 'crashed';
  crash: CrashReport | null;
  /** The first outcome: true once the dev server answers, false if it crashes or times out. */
  first: Promise<boolean>;
  settleFirst: (answered: boolean) => void;
  probing: boolean;
  /** A probe was asked for while one was finishing (e.g. a restart line right as it answered). */
  reprobe?: boolean;
  /**
   * Counts the times the program went down or started over (a crash, a watcher's restart line):
   * a probe whose answer came from before the latest of those does not count it as up.
   */
  epoch: number;
  marker?: 'crash' | 'restart';
  markerTimer?: NodeJS.Timeout;
  lastSaveRestart: number;
  /** When a file of the project was last saved. */
  savedAt: number;
  /** Its watcher started the program again after a crash (so a save needs no restart). */
  watcherRecovers: boolean;
  /** What the last crash was: the program under a watcher, or the instance itself. */
  crashKind?: 'watcher' | 'exit';
  unsubscribe?: Promise<(() => Promise<void>) | undefined>;
}

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
  readonly #supervised = new Map<string, Supervision>();
  /** The reconciler's restarts without an answer in between, for its back-off. */
  readonly #restarts = new Map<string, { count: number; nextAt: number }>();
  /** Each project's health writes, in the order they were asked for (see `#inOrder`). */
  readonly #healthWrites = new Map<string, Promise<void>>();
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
    for (const projectId of [...this.#supervised.keys()]) this.#unsupervise(projectId);
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
      this.#unsupervise(projectId);
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

  /**
   * True while this server follows the project's running instance (started here, or found
   * running by the reconciler): its code may be writing to the workspace.
   */
  isSupervised(projectId: string): boolean {
    return this.#supervised.has(projectId);
  }

  /** Stops and starts again (the same container when its configuration did not change). */
  restart(projectId: string, options: { wait?: boolean } = {}): Promise<ContainerInfo> {
    return this.#withLock(projectId, async () => {
      await this.#requireProject(projectId);
      this.#unsupervise(projectId);
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
      this.#unsupervise(projectId);
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
   * Where the project's dev server answers, for the preview proxy: the runtime's `portsHost`
   * (127.0.0.1 unless the engine is remote) and the port the engine published for this
   * project, never anything a request names.
   */
  async target(projectId: string): Promise<{ host: string; port: number } | undefined> {
    const instance = await this.#runtime.inspect(projectId);
    if (!instance || instance.state !== 'running' || !instance.hostPort) return undefined;
    return { host: this.#runtime.portsHost, port: instance.hostPort };
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
    this.#unsupervise(projectId);
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
          crash: null,
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
        crash: null,
      });
      if (err instanceof Error && 'code' in err && 'status' in err) throw err;
      throw errors.unavailable(`The project could not be started: ${reason}`);
    }
    this.#d.metrics.containerStartDuration.observe(
      { runtime: this.#runtime.kind, path: instance.pooled ? 'warm' : 'cold' },
      (performance.now() - started) / 1000,
    );
    const serviceUrl = instance.hostPort
      ? `http://${this.#runtime.portsHost}:${instance.hostPort}`
      : null;
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
    const healthy = this.#supervise(projectId, instance);
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

  /**
   * Supervises a started instance until it is stopped, restarted or removed: follows its log
   * (the last lines, and the lines watchers such as `node --watch` print when the program
   * crashed or starts again), polls the dev port while it does not answer (health = the port
   * answers), reports a crash with its last lines, and restarts an instance that stays down with
   * back-off, at once on the next save. It never stops an instance and never gives up.
   * @returns the first outcome: true once it answers, false if it crashes or times out.
   */
  #supervise(projectId: string, instance: RuntimeInstance): Promise<boolean> {
    this.#unsupervise(projectId);
    let settleFirst: (answered: boolean) => void = () => undefined;
    const first = new Promise<boolean>((resolve) => (settleFirst = resolve));
    const sup: Supervision = {
      projectId,
      instance,
      abort: new AbortController(),
      lines: [],
      phase: 'starting',
      crash: null,
      first,
      settleFirst,
      probing: false,
      epoch: 0,
      lastSaveRestart: 0,
      savedAt: 0,
      watcherRecovers: false,
    };
    this.#supervised.set(projectId, sup);
    sup.unsubscribe = this.#d.bus
      .subscribe(`project:${projectId}`, (message) => {
        const type = (message as { type?: string } | null)?.type;
        if (type === 'file_changed' || type === 'files_changed') this.#onSave(sup);
      })
      .catch((err: unknown) => {
        this.#log.warn({ err, projectId }, 'supervisor: no file events');
        return undefined;
      });
    void this.#followLogs(sup);
    this.#probe(sup);
    return first;
  }

  #unsupervise(projectId: string): void {
    const sup = this.#supervised.get(projectId);
    if (!sup) return;
    this.#supervised.delete(projectId);
    sup.abort.abort();
    clearTimeout(sup.markerTimer);
    sup.settleFirst(false);
    void sup.unsubscribe?.then((off) => off?.()).catch(() => undefined);
  }

  /** Reads the instance's log while it runs; its end means the instance stopped. */
  async #followLogs(sup: Supervision): Promise<void> {
    const { projectId, abort } = sup;
    try {
      while (!abort.signal.aborted && !this.#closed) {
        sup.lines = []; // the history comes again with each follow
        const followedAt = Date.now();
        try {
          for await (const line of this.#runtime.logs(projectId, {
            follow: true,
            tail: CRASH_LINES,
            signal: abort.signal,
          })) {
            if (abort.signal.aborted) return;
            this.#onLine(sup, line);
          }
        } catch (err) {
          this.#log.debug({ err, projectId }, 'supervisor: log stream failed');
        }
        if (abort.signal.aborted) return;
        const now = await this.#runtime.inspect(projectId).catch(() => undefined);
        if (abort.signal.aborted) return;
        if (now?.state === 'running' && now.id === sup.instance.id) {
          await sleep(500, abort.signal); // the engine let go of the stream; follow again
          continue;
        }
        // Gone or replaced behind our back: the reconciler brings it back.
        if (!now || now.id !== sup.instance.id) return;
        // The instance stopped on its own: a crash (unless someone stopped it meanwhile).
        await this.#markCrashed(
          sup,
          crashReason(sup.lines, now.reason ?? 'the dev server stopped'),
          'exit',
        );
        // Saved meanwhile: restart now. Else the engine's restart policy, the reconciler (with
        // back-off) or the next save brings it back.
        if (sup.savedAt > followedAt) void this.#restartDown(sup, 'save');
        let delay = 250;
        for (;;) {
          await sleep(delay, abort.signal);
          if (abort.signal.aborted) return;
          const again = await this.#runtime.inspect(projectId).catch(() => undefined);
          if (!again || again.id !== sup.instance.id) return; // replaced: no longer ours
          if (again.state === 'running') break;
          delay = Math.min(5_000, delay * 2);
        }
        this.#probe(sup);
      }
    } catch (err) {
      this.#log.warn({ err, projectId }, 'supervisor failed');
    }
  }

  /** One log line: kept for crash reports; a watcher's crash or restart line moves the phase. */
  #onLine(sup: Supervision, raw: string): void {
    // eslint-disable-next-line no-control-regex
    const line = raw.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
    sup.lines.push(line);
    if (sup.lines.length > CRASH_LINES) sup.lines.splice(0, sup.lines.length - CRASH_LINES);
    const marker = crashMarkers.some((m) => m.test(line))
      ? 'crash'
      : restartMarkers.some((m) => m.test(line))
        ? 'restart'
        : undefined;
    if (!marker) return;
    if (marker === 'restart' && sup.phase === 'crashed') sup.watcherRecovers = true;
    // Acted on once the burst is over: history replays old markers, the last one counts.
    sup.marker = marker;
    clearTimeout(sup.markerTimer);
    sup.markerTimer = setTimeout(() => void this.#settleMarker(sup), 100);
  }

  async #settleMarker(sup: Supervision): Promise<void> {
    const marker = sup.marker;
    sup.marker = undefined;
    if (sup.abort.signal.aborted || !marker) return;
    try {
      if (marker === 'crash') {
        // Never call a server that answers crashed.
        const port = sup.instance.hostPort;
        if (port && (await portAnswers(this.#runtime.portsHost, port, 1_000))) return;
        if (sup.marker || sup.abort.signal.aborted) return; // a newer line decides
        await this.#markCrashed(sup, crashReason(sup.lines, 'the dev server crashed'), 'watcher');
      } else if (sup.phase !== 'starting') {
        sup.phase = 'starting';
        sup.epoch++;
        // Asked now, written after any earlier write (a probe's 'healthy' may be on its way).
        const written = this.#setHealth(sup.projectId, 'starting', { statusReason: null });
        this.#probe(sup);
        await written;
      }
    } catch (err) {
      this.#log.warn({ err, projectId: sup.projectId }, 'supervisor: state update failed');
    }
  }

  /** Polls the dev port until it answers, with back-off; stops when it does or crashes. */
  #probe(sup: Supervision): void {
    if (sup.probing) {
      // The running probe may be past its last look at the phase: it probes again when done.
      sup.reprobe = true;
      return;
    }
    sup.probing = true;
    const { projectId, abort } = sup;
    const limit = Date.now() + (this.#d.healthTimeoutMs ?? 10 * 60_000);
    void (async () => {
      let delay = 25;
      while (!abort.signal.aborted && sup.phase !== 'running') {
        const port = sup.instance.hostPort;
        const epoch = sup.epoch;
        if (port && (await portAnswers(this.#runtime.portsHost, port, 1_000))) {
          if (abort.signal.aborted) return;
          // It went down or restarted while we asked: that answer may be the old program's.
          if (sup.epoch !== epoch) continue;
          sup.phase = 'running';
          sup.crash = null;
          this.#restarts.delete(projectId);
          await this.#setHealth(projectId, 'healthy', { statusReason: null });
          sup.settleFirst(true);
          return;
        }
        if (sup.phase === 'starting' && Date.now() > limit) {
          await this.#setHealth(projectId, 'unhealthy');
          sup.settleFirst(false);
          return;
        }
        await sleep(delay, abort.signal);
        // A crashed server is still watched (a watcher may bring it back), less often.
        delay = Math.min(sup.phase === 'crashed' ? 2_000 : 1_000, Math.round(delay * 1.5));
      }
    })()
      .catch((err: unknown) => this.#log.warn({ err, projectId }, 'health probe failed'))
      .finally(() => {
        sup.probing = false;
        if (sup.reprobe && !sup.abort.signal.aborted) {
          sup.reprobe = false;
          this.#probe(sup);
        }
      });
  }

  /** The dev server of a project that should run died: shown as crashed with its last lines. */
  async #markCrashed(sup: Supervision, reason: string, kind: 'watcher' | 'exit'): Promise<void> {
    if (sup.abort.signal.aborted) return;
    sup.phase = 'crashed';
    sup.epoch++;
    sup.crashKind = kind;
    sup.crash = { reason, lines: [...sup.lines], at: new Date().toISOString() };
    sup.settleFirst(false);
    const written = this.#inOrder(sup.projectId, async () => {
      const record = await this.#d.projects.findById(sup.projectId);
      if (record?.status !== 'running' || sup.abort.signal.aborted) return; // stopped meanwhile
      this.#log.warn({ projectId: sup.projectId, reason }, 'dev server crashed');
      await this.#d.projects.setRuntimeState(sup.projectId, {
        statusReason: reason.slice(0, 1000),
        health: 'unhealthy',
      });
      await this.#d.store.setContainerState(sup.projectId, { health: 'unhealthy' });
      const info = await this.#info(sup.projectId);
      if (info && !sup.abort.signal.aborted) await this.#publish(info);
    });
    this.#probe(sup);
    await written;
  }

  /**
   * A save while crashed: an instance that exited is restarted at once; a watcher restarts the
   * program by itself, else (node 20's plain --watch misses a file replaced by rename) the
   * instance is restarted after a moment.
   */
  #onSave(sup: Supervision): void {
    sup.savedAt = Date.now();
    if (sup.phase !== 'crashed' || sup.abort.signal.aborted) return;
    if (Date.now() - sup.lastSaveRestart < SAVE_RESTART_GAP_MS) return;
    sup.lastSaveRestart = Date.now();
    // An instance that exited runs the old code again (or waits out the engine's back-off).
    void this.#restartDown(sup, 'save', { evenIfRunning: sup.crashKind === 'exit' });
    if (sup.crashKind !== 'watcher' || sup.watcherRecovers) return;
    setTimeout(() => {
      // Still crashed, and its watcher never brought it back after a crash.
      if (sup.phase === 'crashed' && sup.crashKind === 'watcher' && !sup.watcherRecovers) {
        void this.#restartDown(sup, 'save', { evenIfRunning: true });
      }
    }, WATCHER_GRACE_MS).unref?.();
  }

  async #restartDown(
    sup: Supervision,
    why: 'save',
    options: { evenIfRunning?: boolean } = {},
  ): Promise<void> {
    if (sup.abort.signal.aborted || this.#closed) return;
    const now = await this.#runtime.inspect(sup.projectId).catch(() => undefined);
    if (sup.abort.signal.aborted || !now) return; // gone: the reconciler brings it back
    if (now.state === 'running' && !options.evenIfRunning) return; // up again, or a watcher's
    const record = await this.#d.projects.findById(sup.projectId);
    if (record?.status !== 'running' || sup.abort.signal.aborted) return;
    this.#log.info({ projectId: sup.projectId, why }, 'restarting a crashed dev server');
    await this.restart(sup.projectId).catch((err: unknown) =>
      this.#log.warn({ err, projectId: sup.projectId }, 'restart of a crashed dev server failed'),
    );
  }

  #setHealth(
    projectId: string,
    health: ProjectHealth,
    extra: { statusReason?: null } = {},
  ): Promise<void> {
    return this.#inOrder(projectId, async () => {
      const record = await this.#d.projects.findById(projectId);
      if (!record || record.status !== 'running') return;
      const clearReason = extra.statusReason === null && record.statusReason != null;
      if (record.health === health && !clearReason) return;
      await this.#d.projects.setRuntimeState(projectId, { health, ...extra });
      await this.#d.store.setContainerState(projectId, { health });
      const info = await this.#info(projectId);
      if (info) await this.#publish(info);
    });
  }

  /**
   * Runs a health write of `projectId` after the ones asked for before it: the last phase the
   * supervisor saw is the one stored (two writes in flight at once could land in either order,
   * and a 'starting' landing after 'healthy' would stay for good).
   */
  #inOrder(projectId: string, write: () => Promise<void>): Promise<void> {
    const previous = this.#healthWrites.get(projectId) ?? Promise.resolve();
    const next = previous.then(write, write);
    this.#healthWrites.set(projectId, next);
    const forget = () => {
      if (this.#healthWrites.get(projectId) === next) this.#healthWrites.delete(projectId);
    };
    next.then(forget, forget);
    return next;
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
        this.#unsupervise(projectId);
        await this.#withLock(projectId, () => this.#runtime.remove(projectId)).catch(
          () => undefined,
        );
        report.removedOrphans++;
        continue;
      }
      if (wanted.has(projectId) || instance.state === 'stopped' || this.#locks.has(projectId)) {
        continue; // a project nobody is starting right now, whose instance is up or restarting
      }
      const record = await this.#d.projects.findById(projectId);
      if (!record || record.status === 'running' || record.status === 'creating') continue;
      if (record.status === 'error') {
        // Nobody asked for a stop (an earlier failure): supervise it rather than kill it.
        await this.#d.projects.setRuntimeState(projectId, {
          status: 'running',
          health: 'starting',
        });
        wanted.add(projectId);
        continue;
      }
      // Stopped (or archived) on purpose.
      this.#unsupervise(projectId);
      await this.#withLock(projectId, () => this.#runtime.stop(projectId));
      report.stopped.push(projectId);
    }

    for (const projectId of wanted) {
      if (this.#closed) return report;
      if (this.#locks.has(projectId)) continue; // an operation is under way
      report.checked++;
      const record = await this.#d.projects.findById(projectId);
      if (!record || record.status !== 'running') continue;
      const instance = instances.get(projectId);
      const supervised = this.#supervised.get(projectId);
      if (instance?.state === 'running') {
        // The engine may have restarted it (new port) or the server missed a change.
        const serviceUrl = instance.hostPort
          ? `http://${this.#runtime.portsHost}:${instance.hostPort}`
          : null;
        if (record.containerId !== instance.id || (record.serviceUrl ?? null) !== serviceUrl) {
          await this.#d.projects.setRuntimeState(projectId, {
            containerId: instance.id,
            serviceUrl,
            allocatedPort: instance.hostPort ?? null,
          });
        }
        if (
          supervised?.instance.id === instance.id &&
          supervised.instance.hostPort === instance.hostPort
        ) {
          continue;
        }
        const answers = instance.hostPort
          ? await portAnswers(this.#runtime.portsHost, instance.hostPort, 1_000)
          : false;
        if (!answers && instance.pooled && record.health !== 'starting') {
          // A warm container brought back by the engine waits for a command: replace it.
          await this.#restartFromReconcile(projectId, report, true);
          continue;
        }
        if (!answers) await this.#setHealth(projectId, 'starting');
        void this.#supervise(projectId, instance);
        continue;
      }
      if (instance?.state === 'error' && instance.restarting) {
        // Crashed, and the engine restarts it with back-off: shown as crashed meanwhile.
        if (supervised?.instance.id !== instance.id) void this.#supervise(projectId, instance);
        continue;
      }
      // Should run, but the instance is gone or stopped (crash, engine or server restart):
      // started again with back-off, never given up.
      const backoff = this.#restarts.get(projectId);
      if (backoff && Date.now() < backoff.nextAt) continue;
      this.#bumpRestarts(projectId);
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

  /** The reconciler restarts now: counts it, and not again before the back-off's next step. */
  #bumpRestarts(projectId: string): void {
    const count = this.#restarts.get(projectId)?.count ?? 0;
    const delay = RESTART_BACKOFF_MS[Math.min(count, RESTART_BACKOFF_MS.length - 1)]!;
    this.#restarts.set(projectId, { count: count + 1, nextAt: Date.now() + delay });
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
    const sup = this.#supervised.get(projectId);
    const up = instance.state === 'running';
    const crashed =
      record.status === 'running' &&
      ((sup?.phase === 'crashed' && sup.instance.id === instance.id) || instance.state === 'error');
    const status: ContainerInfo['status'] = crashed
      ? 'crashed'
      : !up
        ? record.status === 'error'
          ? 'error'
          : 'stopped'
        : record.health === 'starting'
          ? 'starting'
          : 'running';
    // A stop someone asked for is no failure: no "exited with code 143".
    const reason =
      record.status === 'stopped'
        ? null
        : (record.statusReason ?? (!up ? (instance.reason ?? null) : null));
    const crash: CrashReport | null = crashed
      ? (sup?.crash ?? {
          reason: reason ?? 'the dev server stopped',
          lines: [...(sup?.lines ?? [])],
          at: new Date().toISOString(),
        })
      : null;
    const serviceUrl = instance.hostPort
      ? `http://${this.#runtime.portsHost}:${instance.hostPort}`
      : null;
    const cpu = resource?.cpu_usage_percent;
    return {
      id: instance.id,
      projectId,
      status,
      ports: instance.ports,
      serviceUrl: instance.state === 'running' ? serviceUrl : null,
      previewUrl:
        instance.state === 'running' && this.#d.previewUrl ? this.#d.previewUrl(projectId) : null,
      health: crashed ? 'unhealthy' : up ? record.health : 'unknown',
      runtime: this.#runtime.kind,
      image: instance.image,
      pooled: instance.pooled,
      reason: crashed ? (crash?.reason ?? reason) : reason,
      crash,
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
      crash: info.crash,
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
    await publishProjectEvent(this.#d.bus, projectId, 'container_status', event).catch(
      (err: unknown) => this.#log.warn({ err }, 'could not publish container status'),
    );
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

/**
 * A crash's one line: what ended it and the error it printed last (`SyntaxError: …`), if any.
 */
export function crashReason(lines: string[], ended: string): string {
  const error = lines.findLast(
    (l) => /\b([A-Z]\w*)?(Error|Exception)\b/.test(l) && !/^\s+at /.test(l),
  );
  return error ? `${ended}: ${error.trim()}`.slice(0, 500) : ended;
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
    // Watch mode wherever we choose the command: a saved file restarts the server. Without
    // dependencies the whole folder is watched (node 20's plain --watch misses a file replaced
    // by rename after its first save); with them, only what the server imports.
    const watch = hasDeps ? 'node --watch' : 'node --watch-path=.';
    const start = pkg.scripts?.start;
    const plainNode = start ? /^node ([\w./-]+\.[cm]?js)$/.exec(start.trim()) : null;
    return {
      install: hasDeps ? 'npm install' : null,
      dev: pkg.scripts?.dev
        ? 'npm run dev'
        : plainNode
          ? `${watch} ${plainNode[1]}`
          : start
            ? 'npm start'
            : `${watch} server.js`,
      port: DEFAULT_PORT,
      image: 'node',
    };
  }
  for (const entry of ['server.js', 'index.js', 'main.js']) {
    if (existsSync(path.join(workspace, entry))) {
      return {
        install: null,
        dev: `node --watch-path=. ${entry}`,
        port: DEFAULT_PORT,
        image: 'node',
      };
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
 * True when the dev server at `host`:`port` answers an HTTP request (any status). A bare TCP
 * connect would not do: Docker's userland proxy accepts connections before the app listens.
 */
export function portAnswers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpRequest({
      host,
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
    const abort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', abort);
      resolve();
    }, ms);
    signal.addEventListener('abort', abort, { once: true });
  });
}
