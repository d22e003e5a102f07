import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every Prometheus metric the server exposes, on a registry of its own (no global state, so
 * several apps can live in one test process).
 */
export class Metrics {
  readonly registry = new Registry();
  readonly #beforeScrape: (() => Promise<void>)[] = [];

  readonly httpRequestDuration = new Histogram({
    name: 'vaporform_http_request_duration_seconds',
    help: 'HTTP request duration by method, matched route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  /** seeds/001 MetricsCollector */
  readonly projectsCreated = new Counter({
    name: 'vaporform_projects_created_total',
    help: 'Total number of projects created',
    registers: [this.registry],
  });

  /** seeds/001: projects whose status is running; read from the database at scrape time. */
  readonly activeProjects = new Gauge({
    name: 'vaporform_active_projects',
    help: 'Number of currently active (running) projects',
    registers: [this.registry],
  });

  readonly loginAttempts = new Counter({
    name: 'vaporform_auth_login_attempts_total',
    help: 'Sign-in attempts by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  /** seeds/001: resource usage samples of project containers (CPU cores, memory GiB). */
  readonly containerResourceUsage = new Histogram({
    name: 'vaporform_container_resource_usage',
    help: 'Container resource usage distribution (resource: cpu_cores | memory_gib)',
    labelNames: ['resource'] as const,
    buckets: [0.1, 0.5, 1, 2, 5, 10],
    registers: [this.registry],
  });

  /** Time from a start request to a running container, by runtime and path (cold | warm). */
  readonly containerStartDuration = new Histogram({
    name: 'vaporform_container_start_seconds',
    help: 'Container start duration by runtime and path (cold, warm pool)',
    labelNames: ['runtime', 'path'] as const,
    buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  /** Sealed secrets that would not open (tampered, malformed, or their master key missing). */
  readonly secretOpenFailures = new Counter({
    name: 'vaporform_secrets_open_failures_total',
    help: 'Sealed values that failed to open, by problem',
    labelNames: ['problem'] as const,
    registers: [this.registry],
  });

  /** File versions created, by source (user, claude, container…) and operation. */
  readonly fileChanges = new Counter({
    name: 'vaporform_file_changes_total',
    help: 'File versions created, by source and operation',
    labelNames: ['source', 'operation'] as const,
    registers: [this.registry],
  });

  /** Changes found in project workspaces (made inside the container) and imported. */
  readonly workspaceImports = new Counter({
    name: 'vaporform_workspace_imports_total',
    help: 'Workspace changes imported into the database',
    registers: [this.registry],
  });

  /** Open project WebSockets on this instance. */
  readonly projectSockets = new Gauge({
    name: 'vaporform_project_sockets',
    help: 'Open project event WebSockets on this instance',
    registers: [this.registry],
  });

  /** seeds/001 MetricsCollector: one AI run (chat turn, modification, queued request). */
  readonly claudeRequestDuration = new Histogram({
    name: 'vaporform_claude_request_duration_seconds',
    help: 'Claude API request duration (a whole AI run: every model turn and tool call)',
    labelNames: ['type', 'outcome'] as const,
    buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300],
    registers: [this.registry],
  });

  /** seeds/001 Claude API metrics: AI runs by type and outcome (the histogram's count, named). */
  readonly claudeRequests = new Counter({
    name: 'vaporform_claude_requests_total',
    help: 'AI runs (chat turns, modifications, queued requests) by type and outcome',
    labelNames: ['type', 'outcome'] as const,
    registers: [this.registry],
  });

  /** Model tokens spent, by run type and kind (input, output, cache_read, cache_write). */
  readonly claudeTokens = new Counter({
    name: 'vaporform_claude_tokens_total',
    help: 'Model tokens used by AI runs, by run type and token kind',
    labelNames: ['type', 'kind'] as const,
    registers: [this.registry],
  });

  /** Open WebSockets on this instance by channel (project, terminal, collab, preview, agent). */
  readonly websocketConnections = new Gauge({
    name: 'vaporform_websocket_connections',
    help: 'Open WebSocket connections on this instance, by channel',
    labelNames: ['channel'] as const,
    registers: [this.registry],
  });

  /** Collaboration: OT operations submitted, by outcome (applied, rejected). */
  readonly collabOps = new Counter({
    name: 'vaporform_collab_ops_total',
    help: 'Collaborative-editing operations submitted, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  /** Collaboration: documents (open files) with at least one subscriber on this instance. */
  readonly collabDocuments = new Gauge({
    name: 'vaporform_collab_documents',
    help: 'Collaborative documents open on this instance',
    registers: [this.registry],
  });

  /** Terraform runs finished, by final status (ready, destroyed, failed, canceled…). */
  readonly terraformRuns = new Counter({
    name: 'vaporform_terraform_runs_total',
    help: 'Terraform runs finished, by final status',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });

  readonly terraformRunDuration = new Histogram({
    name: 'vaporform_terraform_run_duration_seconds',
    help: 'Terraform run duration (init to output), by final status',
    labelNames: ['status'] as const,
    buckets: [1, 5, 10, 30, 60, 120, 300, 600, 1800],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'vaporform_' });
    // Project sockets are counted by their hub; the channel view mirrors it at scrape time.
    this.#beforeScrape.push(async () => {
      const project = await this.projectSockets.get();
      this.websocketConnections.labels('project').set(project.values[0]?.value ?? 0);
    });
  }

  /** Counts `socket` under `channel` until it closes. */
  trackSocket(
    channel: string,
    socket: { once(event: 'close', listener: () => void): unknown },
  ): void {
    this.websocketConnections.labels(channel).inc();
    socket.once('close', () => this.websocketConnections.labels(channel).dec());
  }

  /** One finished AI run: its count, duration and tokens. */
  recordClaudeRun(
    type: string,
    outcome: string,
    seconds: number,
    usage:
      | {
          inputTokens?: number;
          outputTokens?: number;
          cacheReadTokens?: number;
          cacheWriteTokens?: number;
        }
      | undefined,
  ): void {
    this.claudeRequests.labels(type, outcome).inc();
    this.claudeRequestDuration.labels(type, outcome).observe(seconds);
    const kinds = {
      input: usage?.inputTokens,
      output: usage?.outputTokens,
      cache_read: usage?.cacheReadTokens,
      cache_write: usage?.cacheWriteTokens,
    };
    for (const [kind, n] of Object.entries(kinds)) {
      this.claudeTokens.labels(type, kind).inc(n ?? 0);
    }
  }

  /** Sets a callback that refreshes the active-projects gauge on every scrape. */
  countActiveProjectsWith(count: () => Promise<number>): void {
    // prom-client calls `collect` on scrape; a gauge created with it is not re-creatable,
    // so refresh in the scrape path instead.
    this.#beforeScrape.push(async () => this.activeProjects.set(await count()));
  }

  /** The text exposition, after refreshing scrape-time gauges. */
  async render(): Promise<{ contentType: string; body: string }> {
    await Promise.all(this.#beforeScrape.map((f) => f().catch(() => undefined)));
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
