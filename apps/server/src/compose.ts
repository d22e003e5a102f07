import { z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { Redis } from 'ioredis';
import type pg from 'pg';
import type { Config } from './config.ts';
import type { Logger } from './common/logger.ts';
import { createEventBus, type EventBus } from './common/bus.ts';
import type { UpgradeHandler } from './common/upgrade.ts';
import { createWebSocketRoute, ideOrigin } from './common/websocket.ts';
import type { Db } from './db/index.ts';
import {
  AuthService,
  AuthStore,
  LoginRateLimiter,
  SupabaseTokens,
  createRequireAuth,
} from './services/auth/index.ts';
import { ActivityService } from './services/activity/index.ts';
import { CheckpointsService } from './services/checkpoints/index.ts';
import { CollabService } from './services/collab/index.ts';
import { AiService, createProvider, filesHost, runtimeHost } from './services/ai/index.ts';
import {
  ContainersService,
  ContainersStore,
  DEFAULT_RUNTIME_IMAGE,
  DockerRuntime,
  RUNTIME_UID,
  selectRuntime,
} from './services/containers/index.ts';
import { InfrastructureService } from './services/infrastructure/index.ts';
import { AgentService } from './services/agent/index.ts';
import { MessagesService } from './services/messages/index.ts';
import { Metrics } from './services/monitoring/index.ts';
import {
  ProjectsService,
  createProjectAccess,
  type ProjectAccess,
} from './services/projects/index.ts';
import { FilesService } from './services/files/index.ts';
import { ProjectSocketHub } from './services/realtime/index.ts';
import { PreviewService, previewUrl } from './services/preview/index.ts';
import { KeyRing, SecretsService } from './services/secrets/index.ts';
import { TemplatesService } from './services/templates/index.ts';
import { TerminalService } from './services/terminal/index.ts';
// Routes are not part of a service's surface (its index.ts): only this composition root
// mounts them (`npm run boundaries`, rule routes-only-from-composition-root).
import { createAgentRoutes } from './services/agent/routes.ts';
import { createAiProjectRoutes, createClaudeRoutes } from './services/ai/routes.ts';
import { createAuthRoutes } from './services/auth/routes.ts';
import { createCheckpointsRoutes } from './services/checkpoints/routes.ts';
import { createContainersRoutes } from './services/containers/routes.ts';
import { createFilesRoutes, fileBodyLimits } from './services/files/routes.ts';
import { createInfrastructureRoutes } from './services/infrastructure/routes.ts';
import { createMessagesRoutes } from './services/messages/routes.ts';
import { createCollabRoutes } from './services/collab/routes.ts';
import {
  createPreviewMiddleware,
  createPreviewRoutes,
  createPreviewUpgradeHandler,
} from './services/preview/routes.ts';
import { createProjectsRoutes, createUserEventsRoutes } from './services/projects/routes.ts';
import { createProjectSocketRoutes } from './services/realtime/routes.ts';
import { createSecretsRoutes } from './services/secrets/routes.ts';
import { createTemplatesRoutes } from './services/templates/routes.ts';
import { createTerminalRoutes } from './services/terminal/routes.ts';

/** Everything the HTTP layer and the process need, built once. */
export interface Services {
  config: Config;
  log: Logger;
  pool: pg.Pool;
  db: Db;
  metrics: Metrics;
  bus: EventBus;
  redis: Redis | undefined;
  /**
   * Raw upgrades of hosts that are not the API (preview hot reload), asked before the
   * WebSocket routes (which are Hono routes in `routes.api`); `serveApp` takes them.
   */
  hostUpgrades: UpgradeHandler[];
  auth: AuthService;
  requireAuth: MiddlewareHandler;
  templates: TemplatesService;
  activity: ActivityService;
  projects: ProjectsService;
  /** `projectAccess('editor')`: requires a role on the project named by the `:id` path param. */
  projectAccess: ProjectAccess;
  /** Integrations and project environment, sealed at rest; `projectEnvironment(id)` for runtimes. */
  secrets: SecretsService;
  /** Project files: versions in PostgreSQL, mirrored into each project's workspace. */
  files: FilesService;
  /** `WS /api/projects/:id/ws`: project events (`file_changed`…) for members. */
  projectSockets: ProjectSocketHub;
  /** `WS /api/collab`: ShareDB (OT) documents of files, written back to the files service. */
  collab: CollabService;
  /** The AI assistant: chat, modifications, queued requests (pg-boss), changesets. */
  ai: AiService;
  /** Project containers: lifecycle, logs, stats, reconciler (docker or process runtime). */
  containers: ContainersService;
  /** `<projectId>.preview.<host>`: member-only reverse proxy to each project's dev server. */
  preview: PreviewService;
  /** `WS /api/projects/:id/terminal`. */
  terminal: TerminalService;
  /** Deployments provisioned by the terraform CLI (`/api/provision`, `/api/infrastructure`). */
  infrastructure: InfrastructureService;
  /** Machine agents: enrollment, the agent socket, commands, deploys (`/api/infrastructure/…`). */
  agent: AgentService;
  /** Session chat between a project's members (`/api/projects/:id/messages`, `chat` events). */
  messages: MessagesService;
  routes: {
    /** Runs before everything else: requests for a preview host never reach the API. */
    hosts: MiddlewareHandler;
    auth: OpenAPIHono;
    /** `[path, router]`: each router is mounted at `/api/<path>`; several may share a path. */
    api: [string, OpenAPIHono][];
    /** Routes whose request bodies may exceed the JSON limit (file uploads, zip imports). */
    bodyLimits: { method: string; path: RegExp; maxBytes: number }[];
  };
  /** Stops background work and closes connections the services opened (not the pool). */
  close(): Promise<void>;
}

/** Builds the services with their dependencies (constructor injection, no singletons). */
export async function composeServices(deps: {
  config: Config;
  log: Logger;
  pool: pg.Pool;
  db: Db;
  /** A session-mode pool when `pool` goes through a transaction pooler (DATABASE_DIRECT_URL). */
  directPool?: pg.Pool;
}): Promise<Services> {
  const { config, log, pool, db } = deps;
  const metrics = new Metrics();
  const redis = config.redisUrl
    ? new Redis(config.redisUrl, { maxRetriesPerRequest: 3, enableOfflineQueue: true })
    : undefined;
  redis?.on('error', (err: Error) => log.warn({ err: err.message }, 'redis connection error'));
  const bus = createEventBus(config.redisUrl, log);

  const templates = new TemplatesService(db);
  const activity = new ActivityService(db);
  const secrets = new SecretsService({
    db,
    keyring: new KeyRing({ dataDir: config.dataDir, envKeys: config.masterKey, createFile: true }),
    activity,
    bus,
    metrics,
    log,
  });
  const authStore = new AuthStore(db);
  // TOTP secrets are sealed at rest and re-sealed by master-key rotation.
  secrets.addSealedColumn(authStore.mfaSecretColumn());
  await secrets.start();

  const auth = new AuthService({
    store: authStore,
    sealer: secrets,
    jwtSecret: config.jwtSecret,
    limiter: new LoginRateLimiter(config.loginLimits, redis),
    bus,
    log,
    supabase: config.supabase
      ? new SupabaseTokens({ url: config.supabase.url, jwtSecret: config.supabase.jwtSecret })
      : undefined,
    metrics,
  });
  await auth.start();
  const requireAuth = createRequireAuth(auth);
  const projects = new ProjectsService({
    db,
    auth,
    bus,
    templates,
    activity,
    metrics,
    log,
    previewUrl: (id) => previewUrl(config.publicUrl, id),
  });
  await projects.start();
  auth.onRegistered((user) => projects.acceptInvitations(user));
  const projectAccess = createProjectAccess(projects);
  metrics.countActiveProjectsWith(() => projects.countRunning());
  const containerStore = new ContainersStore(db);
  const installationId = await containerStore.installationId();
  const { runtime, reason: runtimeReason } = await selectRuntime({
    kind: config.runtime,
    dockerHost: config.dockerHost,
    dockerTls: config.dockerTls,
    log,
    accounts: () => auth.countAccounts(),
    docker: (docker) =>
      new DockerRuntime({
        docker,
        installationId,
        previewHost: new URL(config.publicUrl).hostname,
        dataDir: config.dataDir,
        log,
        warmPoolSize: config.containers.warmPoolSize,
        poolImage: config.runtimeImage ?? DEFAULT_RUNTIME_IMAGE,
        // A remote engine's host keeps project containers off itself (infra/k8s engine.yaml).
        hostIsolation: config.containers.portsHost === undefined,
        portsHost: config.containers.portsHost,
        // The projects table's default limits: a claim then needs no update.
        poolLimits: { memoryMb: 1024, cpuPercent: 100, pidsLimit: config.containers.pidsLimit },
      }),
  });
  log.info({ runtime: runtime.kind }, `container runtime: ${runtimeReason}`);
  const containers = new ContainersService({
    runtime,
    projects,
    templates,
    bus,
    metrics,
    log,
    store: containerStore,
    dataDir: config.dataDir,
    images: { ...config.containers.images, node: config.runtimeImage ?? DEFAULT_RUNTIME_IMAGE },
    previewUrl: (id) => previewUrl(config.publicUrl, id),
    environment: (id) => secrets.projectEnvironment(id),
    reconcileIntervalMs: config.containers.reconcileSeconds * 1000,
    statsIntervalMs: config.containers.statsSeconds * 1000,
    pidsLimit: config.containers.pidsLimit,
  });
  await containers.init();
  projects.onDelete((project) => containers.remove(project.id));
  const preview = new PreviewService({
    projects,
    auth,
    target: (id) => containers.target(id),
    secret: config.jwtSecret,
    publicUrl: config.publicUrl,
    log,
    redis,
  });
  // Preview hosts go first: their paths belong to the project's app, not to our socket routes.
  const hostUpgrades = [
    createPreviewUpgradeHandler({ preview, trustedProxies: config.trustedProxies }),
  ];
  const terminal = new TerminalService({
    auth,
    projects,
    openTty: (id, size) => containers.openTty(id, size),
    log,
  });
  const files = new FilesService({
    db,
    projects,
    bus,
    log,
    metrics,
    dataDir: config.dataDir,
    limits: {
      maxFileBytes: config.files.maxFileBytes,
      maxArchiveBytes: config.files.importMaxBytes,
      zip: {
        maxEntries: config.files.importMaxEntries,
        maxTotalBytes: config.files.importMaxUncompressedBytes,
        maxRatio: config.files.importMaxRatio,
      },
    },
    workspaceIgnore: config.files.workspaceIgnore,
    workspaceWatch: config.files.workspaceWatch,
    // Polled every 2 s while its code runs (only running code writes there), else every minute.
    workspacePollActive: (id) => containers.isSupervised(id),
    // Project containers run as RUNTIME_UID; as root, what the server writes must be theirs.
    workspaceOwner:
      runtime.kind === 'docker' && process.getuid?.() === 0
        ? { uid: RUNTIME_UID, gid: RUNTIME_UID }
        : undefined,
  });
  // Before any hook that starts the project: its workspace must hold the template's files.
  projects.onCreated(async (project, { userId }) => {
    const template = project.templateId ? await templates.find(project.templateId) : undefined;
    await files.writeTemplate(project.id, template?.files ?? [], userId);
  });
  files.start();
  const projectSockets = new ProjectSocketHub({
    bus,
    auth,
    projects,
    log,
    metrics,
  });
  const collab = new CollabService({
    auth,
    projects,
    files,
    bus,
    pool,
    log,
    metrics,
    redisUrl: config.redisUrl,
  });
  // WS /api/collab: a Hono route behind the same gate as every socket (common/websocket.ts).
  const collabRoutes = createWebSocketRoute({
    tags: ['collab'],
    summary: 'WebSocket: ShareDB documents of project files (OT)',
    description:
      'ShareDB’s own wire protocol (`?token=<access token>`); collection = project id, ' +
      'document id = file path; membership is checked per document. A browser’s Origin must ' +
      'be the IDE’s. With `?project=<id>` the socket serves that project’s documents only, and a ' +
      'load balancer can send every socket of one project to the same instance (HAProxy: ' +
      '`balance url_param project`), so a document’s ops are committed by one instance. ' +
      'Close codes: 1007 a message that is not a JSON object, 4401 session revoked, 4404 no ' +
      'longer a member of a project it uses.',
    middleware: [ideOrigin(config.publicUrl), requireAuth],
    query: {
      project: z
        .string()
        .uuid()
        .optional()
        .describe('The one project this socket is for (also a routing key for load balancers).'),
    },
    prepare: (c) => {
      // Only the claims and the project: the socket must not keep the upgrade's Context alive.
      const claims = c.var.auth;
      const project = c.req.query('project');
      // A copy: a slice of the URL would keep all of it (with the token) for the socket's life.
      const only =
        project === undefined ? undefined : Buffer.from(project.toLowerCase()).toString();
      return { open: (ws) => collab.accept(ws, claims, only) };
    },
  });
  const messages = new MessagesService({ db, auth, bus, log, redis });

  const ai = new AiService({
    db,
    // pg-boss keeps its locks and polling in sessions of its own.
    pool: deps.directPool ?? pool,
    provider: createProvider(config.ai),
    limits: {
      tokenBudget: config.ai.tokenBudget,
      maxSteps: config.ai.maxSteps,
      loopLimit: config.ai.loopLimit,
      maxOutputTokens: config.ai.maxOutputTokens,
    },
    leaseSeconds: config.ai.leaseSeconds,
    jobAttempts: config.ai.jobAttempts,
    projects,
    templates,
    secrets,
    files: filesHost(files),
    runtime: runtimeHost(containers),
    activity,
    bus,
    metrics,
    log,
  });
  // The wizard's "describe it" path: no template, a description → a queued `create` request.
  projects.onCreated((project, { userId }) => ai.onProjectCreated(project, userId));
  const checkpoints = new CheckpointsService({
    db,
    projects,
    files,
    secrets,
    chat: ai,
    runtime: {
      isRunning: (id) =>
        containers.get(id).then(
          (c) => c.status === 'starting' || c.status === 'running' || c.status === 'crashed',
          () => false,
        ),
      restart: (id) => containers.restart(id),
    },
    activity,
    bus,
    log,
  });
  // The assistant reads files: what people typed in open documents is written first.
  ai.onBeforeTurn((turn) => collab.flushNow(turn.projectId));
  ai.onBeforeTurn((turn) => checkpoints.beforeAssistantTurn(turn));
  await ai.start();

  const infrastructure = new InfrastructureService({
    db,
    projects,
    users: auth,
    bus,
    log,
    dataDir: config.dataDir,
    // Runs hold a session advisory lock; Terraform's pg backend takes its own.
    databaseUrl: (deps.directPool ?? pool).options.connectionString ?? '',
    dockerHost: config.dockerHost,
    dockerTls: config.dockerTls,
    metrics,
    secrets,
  });
  await infrastructure.start();
  const infrastructureRoutes = createInfrastructureRoutes({ infrastructure, requireAuth });
  const agent = new AgentService({
    db,
    infrastructure,
    projects,
    auth,
    activity,
    files,
    templates,
    bus,
    log,
    dataDir: config.dataDir,
    publicUrl: config.publicUrl,
  });
  await agent.start();
  const agentRoutes = createAgentRoutes({ agent, requireAuth, publicUrl: config.publicUrl });

  // Registered last: the workspace goes after whatever still uses it (the container).
  projects.onDelete((project) => files.forgetProject(project.id));

  return {
    config,
    log,
    pool,
    db,
    metrics,
    bus,
    redis,
    hostUpgrades,
    auth,
    requireAuth,
    templates,
    activity,
    projects,
    projectAccess,
    secrets,
    containers,
    preview,
    terminal,
    infrastructure,
    agent,
    messages,
    files,
    projectSockets,
    collab,
    ai,
    routes: {
      hosts: createPreviewMiddleware({ preview, trustedProxies: config.trustedProxies }),
      auth: createAuthRoutes(auth, requireAuth, config.trustedProxies),
      api: [
        ['projects', createProjectsRoutes({ projects, activity, requireAuth })],
        ['me', createUserEventsRoutes({ projects, auth, requireAuth })],
        ['templates', createTemplatesRoutes(templates)],
        ['containers', createContainersRoutes({ containers, projectAccess, requireAuth })],
        ['projects', createPreviewRoutes({ preview, projectAccess, requireAuth })],
        // WebSocket routes: Hono routes like the others (common/websocket.ts).
        [
          'projects',
          createProjectSocketRoutes({
            hub: projectSockets,
            requireAuth,
            projectAccess,
            publicUrl: config.publicUrl,
          }),
        ],
        [
          'projects',
          createTerminalRoutes({
            terminal,
            projectAccess,
            requireAuth,
            publicUrl: config.publicUrl,
          }),
        ],
        ['projects', createSecretsRoutes({ secrets, requireAuth, projectAccess })],
        ['projects', createFilesRoutes({ files, requireAuth, projectAccess })],
        ['claude', createClaudeRoutes({ ai, projects, requireAuth })],
        ['projects', createAiProjectRoutes({ ai, requireAuth, projectAccess })],
        ['projects', createCheckpointsRoutes({ checkpoints, requireAuth, projectAccess })],
        ['projects', createMessagesRoutes({ messages, requireAuth, projectAccess })],
        ['collab', collabRoutes],
        ['projects', createCollabRoutes({ collab, requireAuth, projectAccess })],
        ['provision', infrastructureRoutes.provision],
        ['infrastructure', infrastructureRoutes.infrastructure],
        ['infrastructure', agentRoutes.infrastructure],
        ['agent', agentRoutes.agent],
      ],
      bodyLimits: fileBodyLimits(files),
    },
    async close() {
      await agent.close();
      await infrastructure.close();
      await ai.stop();
      terminal.close();
      preview.close();
      await containers.close();
      await projectSockets.close();
      await collab.close();
      await files.close();
      await projects.stop();
      await auth.stop();
      await bus.close();
      redis?.disconnect();
    },
  };
}
