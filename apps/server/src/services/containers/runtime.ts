import type { Duplex } from 'node:stream';

/** The engines a project can run on (VAPORFORM_RUNTIME). */
export type RuntimeKind = 'docker' | 'process' | 'kubernetes';

/** What to run for a project: everything a driver needs, nothing it must look up. */
export interface RuntimeSpec {
  projectId: string;
  /** Image (docker, kubernetes); ignored by the process runtime. */
  image: string;
  /** Host directory with the project's files, mounted at /app. */
  workspace: string;
  /** Port the dev server listens on inside the container (PORT is set to it). */
  port: number;
  /** Run before `dev` when `needsInstall` says so (e.g. `npm install`). */
  install: string | null;
  dev: string;
  env: Record<string, string>;
  memoryMb: number;
  /** Share of one CPU, 1–100. */
  cpuPercent: number;
  pidsLimit: number;
}

/** A project's runtime instance as the engine reports it. */
export interface RuntimeInstance {
  /** Container id (docker) or `process-<pid>`. */
  id: string;
  projectId: string;
  state: 'running' | 'stopped' | 'error';
  /** Why it stopped, when the engine knows (exit code, OOM). */
  reason?: string;
  /** Down, and the engine brings it back by itself (Docker's restart policy, with back-off). */
  restarting?: boolean;
  /** Container port → published port (on `portsHost`). */
  ports: Record<string, number>;
  /** The published port the dev server is reached on (at `portsHost`), if published. */
  hostPort?: number;
  image: string;
  createdAt: string;
  startedAt?: string;
  /** Started from the warm pool (docker). */
  pooled: boolean;
}

/** One resource sample. */
export interface RuntimeStats {
  cpuPercent: number;
  memoryMb: number;
  memoryLimitMb?: number;
  networkInBytes: number;
  networkOutBytes: number;
}

/** An interactive TTY (terminal) in a project's instance. */
export interface TtySession {
  /** Bytes both ways. */
  stream: Duplex;
  resize(cols: number, rows: number): Promise<void>;
  /** Ends the shell. */
  close(): void;
}

/** Options for {@link ContainerRuntime.logs}. */
export interface LogOptions {
  follow: boolean;
  /** Lines of history to include. */
  tail: number;
  signal?: AbortSignal;
}

/**
 * One interface, several engines: Docker (dockerode), a local process sandbox, and Kubernetes
 * (designed for; not implemented yet). Drivers know nothing of the database: the containers
 * service decides, drivers do.
 */
export interface ContainerRuntime {
  readonly kind: RuntimeKind;
  /**
   * Where the server reaches published dev ports: 127.0.0.1, or the engine's address when it
   * runs on another machine (VAPORFORM_DOCKER_PORTS_HOST).
   */
  readonly portsHost: string;
  /** Prepares the engine (networks, images, isolation rules); called once. */
  init(): Promise<void>;
  /**
   * Creates (or reuses, when `fresh` is false and the spec is unchanged) and starts the
   * project's instance; returns once the engine reports it running.
   */
  start(spec: RuntimeSpec, options: { fresh: boolean }): Promise<RuntimeInstance>;
  stop(projectId: string): Promise<void>;
  /** Removes the instance and everything made for it (network); a no-op when absent. */
  remove(projectId: string): Promise<void>;
  inspect(projectId: string): Promise<RuntimeInstance | undefined>;
  /** Every instance this installation owns, including those of deleted projects. */
  list(): Promise<RuntimeInstance[]>;
  /** Log lines (stdout and stderr), history first; follows until `signal` aborts when asked. */
  logs(projectId: string, options: LogOptions): AsyncIterable<string>;
  stats(projectId: string): Promise<RuntimeStats | undefined>;
  /** A shell with a TTY in the running instance, as the unprivileged user, in /app. */
  openTty(projectId: string, size: { cols: number; rows: number }): Promise<TtySession>;
  /** Stops background work (warm pool); leaves instances running. */
  close(): Promise<void>;
}
