import type pg from 'pg';
import ShareDB from 'sharedb';
import type Agent from 'sharedb/lib/agent.js';
import { WebSocket } from 'ws';
import { fileChangesOf, type ProjectEvent } from '@vaporform/sdk';
import { AppError } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import type { AccessClaims } from '../auth/index.ts';
import type { AuthService } from '../auth/index.ts';
import type { FileChangedEvent, FilesService } from '../files/index.ts';
import type { Metrics } from '../monitoring/index.ts';
import type { ProjectsService, Role } from '../projects/index.ts';
import type { EventBus } from '../../common/bus.ts';
import { projectChannel, publishProjectEvent } from '../../common/project-events.ts';
import { createPostgresShareDb, PostgresDB, queueSubmitsPerDocument } from './db-postgres.ts';
import { createRedisPubSub, RedisPubSub } from './pubsub-redis.ts';
import { FileDocuments, NOT_FOUND, type CollabError } from './documents.ts';
import { FlushScheduler } from './flush.ts';
import { MissedOps } from './missed-ops.ts';
import { SocketStream } from './socket-stream.ts';
import { registerCollabType } from './type.ts';

/** Largest document (bytes of UTF-8): larger files are not OT documents. */
export const MAX_DOC_BYTES = 1024 * 1024;
/** The name of a connection that has no person (the server's own). */
const NO_NAME = Promise.resolve('');

/** How long a cached role stands before it is read again. */
const ROLE_TTL_MS = 30_000;

/** What the server keeps about each connection (ShareDB's `agent.custom`). */
interface AgentState {
  server?: boolean;
  userId?: string;
  sessionId?: string;
  /**
   * The person's name, read once when the socket opens (shared with their other sockets opening
   * then). Everything that shows it waits for it, so nothing goes out nameless or with a name the
   * client chose. The server's own connection has none (`''`).
   */
  name: Promise<string>;
  roles: Map<string, { role: Promise<Role | null>; at: number }>;
  /** Documents subscribed through this connection, `projectId\0path`. */
  open: Set<string>;
  /** Projects whose file events this connection keeps this instance listening to (few: an array). */
  projects: string[];
  /** The one project this socket was opened for (`?project=`): no other is served on it. */
  only?: string;
}

interface ProjectRoom {
  agents: Set<Agent>;
  unsubscribe: Promise<() => Promise<void>>;
}

export interface CollabServiceDeps {
  auth: AuthService;
  projects: ProjectsService;
  files: FilesService;
  bus: EventBus;
  pool: pg.Pool;
  log: Logger;
  /** Sockets (`websocketConnections{channel="collab"}`), ops by outcome, open documents. */
  metrics?: Metrics;
  /**
   * ShareDB database adapter: by default the PostgreSQL adapter on `pool` (db-postgres.ts), so
   * an op is acknowledged only once committed; ShareDB's in-memory database for benchmarks.
   */
  db?: unknown;
  /** ShareDB pub/sub adapter (default: Redis with `redisUrl`, else in-process). */
  pubsub?: unknown;
  /** REDIS_URL: ops and presence fan out to the other instances through Redis. */
  redisUrl?: string;
  maxDocBytes?: number;
  /** Pause in typing after which a document is written to its file (ms). */
  flushIdleMs?: number;
  /** Longest a document waits to be written while typing goes on (ms). */
  flushMaxWaitMs?: number;
  heartbeatMs?: number;
  /**
   * With pub/sub across instances: how often subscribed documents are compared with the
   * database, and how long an op may be missing before it is delivered from there (ms).
   */
  missedOpsMs?: number;
}

/**
 * `WS /api/collab`: ShareDB 7 over `ws` (ShareDB's own wire protocol, JSON messages through
 * {@link SocketStream}, so the stock `sharedb/lib/client` works), one
 * `ot-text-unicode` document per file: collection = project id, document id = file path.
 *
 * - Gate (the route's middleware, compose.ts): IDE Origin, valid access token; revoking the session
 *   closes the socket (4401); membership is checked per project in middleware: a stranger's
 *   fetch/subscribe/presence gets the same `not_found` as a missing file; a viewer may
 *   subscribe and see presence, every op they submit is refused (`forbidden`); clients never
 *   create or delete documents; leaving the project closes the socket (4404).
 * - Documents come from files and go back to them ({@link FileDocuments}, {@link FlushScheduler});
 *   other writers' `file_changed` events become ops.
 * - Presence: ShareDB document presence (`{sel, name, color}`, `userId`/`name` set by the
 *   server), and `presence` events `{event: 'file', userId, name, path, open}` on the project
 *   socket saying who has which file open.
 */
export class CollabService {
  readonly backend: ShareDB;
  readonly documents: FileDocuments;
  readonly #flushes: FlushScheduler;
  /** Every client connection on this instance, by its socket's stream. */
  readonly #agents = new Map<SocketStream, Agent>();
  readonly #rooms = new Map<string, ProjectRoom>();
  /**
   * Lookups in flight, shared by the sockets that ask the same at once (a project's people
   * opening it together, a reconnect storm): one query, not one per socket.
   */
  readonly #namesInFlight = new Map<string, Promise<string>>();
  readonly #rolesInFlight = new Map<string, Promise<Role | null>>();
  readonly #auth: AuthService;
  readonly #projects: ProjectsService;
  readonly #bus: EventBus;
  readonly #log: Logger;
  readonly #metrics: Metrics | undefined;
  /** Subscriptions per open document on this instance (`projectId\0path` → count). */
  readonly #openDocs = new Map<string, number>();
  /** Open documents whose file another writer changed since they were last checked here. */
  readonly #unfiled = new Set<string>();
  readonly #maxBytes: number;
  readonly #serverAgent: Agent;
  readonly #stops: (() => void)[] = [];
  readonly #timer: NodeJS.Timeout;
  readonly #missedOps: MissedOps | undefined;
  #closed = false;

  constructor(deps: CollabServiceDeps) {
    registerCollabType();
    this.#auth = deps.auth;
    this.#projects = deps.projects;
    this.#bus = deps.bus;
    this.#log = deps.log;
    this.#metrics = deps.metrics;
    this.#maxBytes = deps.maxDocBytes ?? MAX_DOC_BYTES;
    const db = deps.db ?? createPostgresShareDb(deps.pool);
    const pubsub =
      deps.pubsub ??
      (deps.redisUrl
        ? createRedisPubSub(deps.redisUrl, {
            prefix: 'vaporform:collab',
            onError: (err) => deps.log.warn({ err: err.message }, 'collab redis error'),
          })
        : undefined);
    if (db instanceof PostgresDB && pubsub instanceof RedisPubSub) {
      db.coordinate({
        othersWrite: (collection, id) => pubsub.othersPublished(collection, id),
        lostRace: (collection, id) => pubsub.share(collection, id),
      });
    }
    this.backend = new ShareDB({
      db,
      ...(pubsub ? { pubsub: pubsub as ShareDB.PubSub } : {}),
      presence: true,
      doNotForwardSendPresenceErrorsToClient: true,
    });
    this.backend.on('error', (err: unknown) => this.#log.warn({ err }, 'sharedb error'));
    // Correctness never depends on pub/sub delivery: what it loses is delivered from PostgreSQL.
    this.#missedOps = pubsub
      ? new MissedOps({
          backend: this.backend,
          pool: deps.pool,
          log: deps.log,
          intervalMs: deps.missedOpsMs ?? 2000,
        })
      : undefined;
    this.backend.on('submitRequestEnd', (err: unknown, request: { agent: Agent }) => {
      if (state(request.agent).server) return;
      this.#metrics?.collabOps.inc({ outcome: err ? 'rejected' : 'applied' });
    });
    this.#flushes = new FlushScheduler({
      flush: (projectId, path, editor) => this.documents.flush(projectId, path, editor),
      log: deps.log,
      idleMs: deps.flushIdleMs ?? 1000,
      maxWaitMs: deps.flushMaxWaitMs ?? 5000,
    });
    this.documents = new FileDocuments({
      backend: this.backend,
      agent: () => this.#serverAgent,
      files: deps.files,
      pool: deps.pool,
      log: deps.log,
      maxBytes: this.#maxBytes,
      compact: hasCompact(db) ? (c, id, v) => db.compact(c, id, v) : undefined,
      scheduleFlush: (projectId, path) => this.#flushes.touch(projectId, path),
    });
    // First: one submit per document at a time here (no commit-retry storms when many type).
    queueSubmitsPerDocument(this.backend);
    this.#middleware();
    const connection = this.backend.connect(undefined, { server: true });
    this.#serverAgent = (connection as unknown as { agent: Agent }).agent;

    this.#stops.push(
      this.#auth.onSessionsRevoked((sessionIds) => {
        const ended = new Set(sessionIds);
        for (const [stream, agent] of this.#agents) {
          const s = state(agent);
          if (s.sessionId && ended.has(s.sessionId)) stream.ws.close(4401, 'session ended');
        }
      }),
      this.#projects.onMembershipChanged((change) => {
        for (const agent of this.#rooms.get(change.projectId)?.agents ?? []) {
          const s = state(agent);
          if (s.userId !== change.userId) continue;
          s.roles.delete(change.projectId);
          if (change.role === null) socketOf(agent)?.close(4404, 'no longer a member of a project');
        }
      }),
    );
    this.#timer = setInterval(() => this.#heartbeat(), deps.heartbeatMs ?? 30_000).unref();
  }

  /**
   * Serves ShareDB on an accepted WebSocket for the authenticated user; with `onlyProject`, the
   * documents of that project only (another project's are "not found" on this socket).
   */
  accept(ws: WebSocket, claims: AccessClaims, onlyProject?: string): void {
    if (this.#closed) {
      ws.close(1012, 'server restarting');
      return;
    }
    const stream = new SocketStream(ws, this.#streamClosed);
    const agent = this.backend.listen(stream as never, {
      userId: claims.userId,
      sessionId: claims.sessionId,
      only: onlyProject,
      name: this.#nameOf(claims.userId),
    });
    this.#agents.set(stream, agent);
    this.#metrics?.websocketConnections.inc({ channel: 'collab' });
  }

  #nameOf(userId: string): Promise<string> {
    return shared(this.#namesInFlight, userId, () =>
      this.#auth.usersByIds([userId]).then(
        ([user]) => user?.name ?? '',
        () => '',
      ),
    );
  }

  /** Sockets open on this instance. */
  get connections(): number {
    return this.#agents.size;
  }

  /**
   * Ctrl+S on a shared document: its text is written to its file now, not after the pause in
   * typing. @returns whether the file holds the text (false: another writer or instance is
   * mid-write; the flush stays scheduled).
   */
  save(projectId: string, path: string, userId: string): Promise<boolean> {
    return this.#flushes.flushOne(projectId, path, userId);
  }

  /** Writes every document with pending edits to its file now (e.g. before an assistant turn). */
  async flushNow(projectId?: string): Promise<void> {
    await this.#flushes.flushAll(projectId ? (id) => id === projectId : undefined);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#missedOps?.close();
    for (const stop of this.#stops) stop();
    for (const stream of this.#agents.keys()) stream.ws.terminate();
    await Promise.race([this.#flushes.close(), new Promise((r) => setTimeout(r, 5000))]);
    const rooms = [...this.#rooms.values()];
    this.#rooms.clear();
    await Promise.all(
      rooms.map(async (r) => (await r.unsubscribe.catch(() => async () => undefined))()),
    );
    await new Promise<void>((resolve) => this.backend.close(() => resolve()));
  }

  // ───────────────────────── middleware ─────────────────────────

  #middleware(): void {
    const b = this.backend;
    b.use('connect', (ctx, next) => {
      const req = (ctx.req ?? {}) as {
        server?: boolean;
        userId?: string;
        sessionId?: string;
        only?: string;
        name?: Promise<string>;
      };
      const custom: AgentState = {
        server: req.server === true,
        userId: req.userId,
        sessionId: req.sessionId,
        name: req.name ?? NO_NAME,
        only: req.only,
        roles: new Map(),
        open: new Set(),
        projects: [],
      };
      ctx.agent.custom = custom;
      next();
    });
    b.use('receive', (ctx, next) => {
      this.#gate(ctx.agent, ctx.data).then(
        () => next(),
        (err: unknown) => {
          if (ctx.data.a === 'op') this.#metrics?.collabOps.inc({ outcome: 'rejected' });
          next(toClientError(err, this.#log));
        },
      );
    });
    b.use('submit', (ctx, next) => {
      const s = state(ctx.agent);
      if (s.server) return next();
      const op = ctx.op as { create?: unknown; del?: unknown };
      if (op.create || op.del) return next(FORBIDDEN_CREATE);
      this.#role(ctx.agent, ctx.collection).then(
        (role) => next(role === null ? NOT_FOUND : role === 'viewer' ? VIEWER : undefined),
        (err: unknown) => next(toClientError(err, this.#log)),
      );
    });
    b.use('commit', (ctx, next) => {
      const s = state(ctx.agent);
      const op = ctx.op as { src?: string; m?: Record<string, unknown>; op?: unknown };
      const data = (ctx.snapshot as { data?: unknown } | null)?.data;
      if (op.op && typeof data === 'string' && Buffer.byteLength(data) > this.#maxBytes) {
        return next({
          code: 'too_large',
          message: `The document would be larger than ${this.#maxBytes} bytes`,
        });
      }
      // The op log records who made each op.
      op.m = {
        ...op.m,
        author: s.server ? authorOfSrc(op.src) : { source: 'collab', userId: s.userId },
      };
      next();
    });
    b.use('afterWrite', (ctx, next) => {
      const op = ctx.op as { op?: unknown; src?: string };
      if (op.op) {
        const s = state(ctx.agent);
        const editor = s.server ? (authorOfSrc(op.src).userId ?? null) : (s.userId ?? null);
        this.#flushes.touch(ctx.collection, ctx.id, s.server ? undefined : editor);
      }
      next();
    });
    b.use('receivePresence', (ctx, next) => {
      const s = state(ctx.agent);
      const p = ctx.presence.p as Record<string, unknown> | null;
      if (s.server || !p || typeof p !== 'object') return next();
      void s.name.then((name) => {
        ctx.presence.p = { ...p, userId: s.userId, name };
        next();
      });
    });
    b.use('reply', (ctx, next) => {
      const req = ctx.request as { a?: string; c?: string; d?: string; b?: unknown };
      if (!(ctx.reply as { error?: unknown }).error && req.c) {
        const ids = req.d ? [req.d] : bulkIds(req.b);
        if (req.a === 's' || req.a === 'bs')
          for (const id of ids) this.#opened(ctx.agent, req.c, id, true);
        if (req.a === 'u' || req.a === 'bu')
          for (const id of ids) this.#opened(ctx.agent, req.c, id, false);
      }
      next();
    });
  }

  /** Checks a client's message before ShareDB handles it (membership, role, documents). */
  async #gate(agent: Agent, data: Record<string, unknown>): Promise<void> {
    const s = state(agent);
    if (s.server) return;
    const a = data.a;
    const c = typeof data.c === 'string' ? data.c : undefined;
    const d = typeof data.d === 'string' ? data.d : undefined;
    switch (a) {
      case 'hs':
      case 'pp':
      case 'u':
      case 'bu':
      case 'qu':
      case 'pu':
        return;
      case 'qf':
      case 'qs':
        throw { code: 'forbidden', message: 'Queries are not available on this channel' };
      case 'f':
      case 's':
        if (!c || d === undefined) return; // ShareDB refuses the malformed message itself
        await this.#requireMember(agent, c);
        await this.#ensure(c, d);
        return;
      case 'nf':
      case 'nt':
        if (c) await this.#requireMember(agent, c);
        return;
      case 'bf':
      case 'bs': {
        if (!c) return;
        await this.#requireMember(agent, c);
        for (const id of bulkIds(data.b)) await this.documents.ensure(c, id);
        return;
      }
      case 'op': {
        if (!c) return;
        const role = await this.#requireMember(agent, c);
        if (data.create || data.del) throw FORBIDDEN_CREATE;
        if (role === 'viewer') throw VIEWER;
        return;
      }
      case 'p': {
        if (!c || d === undefined || data.ch !== `${c}.${d}`) throw NOT_FOUND;
        await this.#requireMember(agent, c);
        return;
      }
      case 'ps':
      case 'pr': {
        const ch = typeof data.ch === 'string' ? data.ch : '';
        const dot = ch.indexOf('.');
        if (dot <= 0) throw NOT_FOUND;
        await this.#requireMember(agent, ch.slice(0, dot));
        return;
      }
      default:
        return;
    }
  }

  async #requireMember(agent: Agent, projectId: string): Promise<Role> {
    // One spelling per project (the canonical lowercase uuid): another would be another document.
    if (projectId !== projectId.toLowerCase()) throw NOT_FOUND;
    const role = await this.#role(agent, projectId);
    if (role === null) throw NOT_FOUND;
    this.#join(agent, projectId);
    return role;
  }

  /** The user's role in a project (null: not a member), cached per connection for a while. */
  #role(agent: Agent, projectId: string): Promise<Role | null> {
    const s = state(agent);
    if (s.only !== undefined && projectId !== s.only) return Promise.resolve(null);
    const cached = s.roles.get(projectId);
    if (cached && Date.now() - cached.at < ROLE_TTL_MS) return cached.role;
    const role = this.#lookupRole(projectId, s.userId ?? '').catch((err: unknown) => {
      s.roles.delete(projectId);
      throw err;
    });
    s.roles.set(projectId, { role, at: Date.now() });
    return role;
  }

  /** The user's role read now (null: not a member); one query for concurrent askers. */
  #lookupRole(projectId: string, userId: string): Promise<Role | null> {
    return shared(this.#rolesInFlight, `${projectId}/${userId}`, () =>
      this.#projects.requireRole(projectId, userId, 'viewer').then(
        (r) => r.role,
        (err: unknown) => {
          if (err instanceof AppError && (err.code === 'not_found' || err.code === 'forbidden')) {
            return null;
          }
          throw err;
        },
      ),
    );
  }

  /**
   * Makes sure a file's document exists and holds the file's changes before a client reads it.
   * A document already open on this instance is not checked again while only its typists
   * change it: its first opener checked it, and this instance hears every other writer's
   * change (it listens to the project while a connection uses it) and has the next opener
   * check again. So a class opening one file reads the file once, not once per student.
   */
  async #ensure(projectId: string, path: string): Promise<void> {
    const key = docKey(projectId, path);
    if (this.#openDocs.has(key) && !this.#unfiled.has(key)) return;
    await this.documents.ensure(projectId, path);
    this.#unfiled.delete(key);
  }

  // ───────────────────────── other writers ─────────────────────────

  /** Listens to a project's file events while a connection here uses the project. */
  #join(agent: Agent, projectId: string): void {
    const s = state(agent);
    if (s.projects.includes(projectId)) return;
    s.projects.push(projectId);
    let room = this.#rooms.get(projectId);
    if (!room) {
      const unsubscribe = this.#bus.subscribe(projectChannel(projectId), (message: unknown) =>
        this.#onProjectEvent(projectId, message),
      );
      unsubscribe.catch((err: unknown) =>
        this.#log.warn({ err, projectId }, 'collab: bus subscribe failed'),
      );
      room = { agents: new Set(), unsubscribe };
      this.#rooms.set(projectId, room);
    }
    room.agents.add(agent);
  }

  #onProjectEvent(projectId: string, message: unknown): void {
    const presence = message as { type?: string; data?: { event?: string } };
    if (presence?.type === 'presence' && presence.data?.event === 'join') {
      // Someone opened the project: tell them which files people here have open.
      for (const agent of this.#rooms.get(projectId)?.agents ?? []) {
        for (const key of state(agent).open) {
          const [id, path] = key.split('\u0000') as [string, string];
          if (id === projectId) this.#announceFile(agent, projectId, path, true);
        }
      }
      return;
    }
    // `file_changed`, or each file of a `files_changed` (a restore).
    for (const change of fileChangesOf(message as ProjectEvent))
      this.#onFileChanged(projectId, change);
  }

  #onFileChanged(projectId: string, change: FileChangedEvent['data']): void {
    const { path, operation, source, from, userId } = change;
    if (source === 'collab') return;
    const author = { source, userId: userId ?? null };
    // The next opener here checks the document again (the file may be gone, binary, too big).
    for (const changed of [path, from]) {
      const key = changed === undefined ? undefined : docKey(projectId, changed);
      if (key && this.#openDocs.has(key)) this.#unfiled.add(key);
    }
    const work = async () => {
      if (operation === 'delete') await this.documents.remove(projectId, path, author);
      else if (operation === 'move') {
        if (from) await this.documents.remove(projectId, from, author);
        await this.documents.sync(projectId, path);
      } else await this.documents.sync(projectId, path);
    };
    work().catch((err: unknown) =>
      this.#log.warn({ err, projectId, path }, 'collab: file change not applied to its document'),
    );
  }

  // ───────────────────────── presence on the project socket ─────────────────────────

  #opened(agent: Agent, projectId: string, path: string, open: boolean): void {
    const s = state(agent);
    const key = docKey(projectId, path);
    if (open === s.open.has(key)) return;
    if (open) s.open.add(key);
    else s.open.delete(key);
    const subscribers = (this.#openDocs.get(key) ?? 0) + (open ? 1 : -1);
    if (subscribers > 0) this.#openDocs.set(key, subscribers);
    else {
      this.#openDocs.delete(key);
      this.#unfiled.delete(key);
    }
    this.#metrics?.collabDocuments.set(this.#openDocs.size);
    this.#announceFile(agent, projectId, path, open);
  }

  /** `presence` `{event: 'file', userId, name, path, open}` on the project socket. */
  #announceFile(agent: Agent, projectId: string, path: string, open: boolean): void {
    const s = state(agent);
    // Through the name's promise, so an open and its close go out in the order they happened.
    s.name
      .then((name) =>
        publishProjectEvent(this.#bus, projectId, 'presence', {
          event: 'file',
          userId: s.userId ?? '',
          name,
          path,
          open,
        }),
      )
      .catch((err: unknown) => this.#log.debug({ err }, 'collab presence not published'));
  }

  /** A client's socket closed: what it had open is closed, its projects' rooms left. */
  readonly #streamClosed = (stream: SocketStream): void => {
    const agent = this.#agents.get(stream);
    if (!agent) return;
    this.#agents.delete(stream);
    this.#metrics?.websocketConnections.dec({ channel: 'collab' });
    const s = state(agent);
    if (!this.#closed) {
      for (const key of [...s.open]) {
        const [projectId, path] = key.split('\u0000') as [string, string];
        this.#opened(agent, projectId, path, false);
      }
    }
    for (const projectId of s.projects) {
      const room = this.#rooms.get(projectId);
      if (!room) continue;
      room.agents.delete(agent);
      if (room.agents.size === 0) {
        this.#rooms.delete(projectId);
        void room.unsubscribe
          .then((stop) => stop())
          .catch((err: unknown) => this.#log.debug({ err }, 'collab: bus unsubscribe failed'));
      }
    }
  };

  #heartbeat(): void {
    for (const stream of this.#agents.keys()) {
      const ws = stream.ws;
      if (!stream.alive) {
        ws.terminate();
        continue;
      }
      stream.alive = false;
      if (ws.readyState === WebSocket.OPEN) ws.ping();
    }
  }
}

const VIEWER: CollabError = {
  code: 'forbidden',
  message: 'Viewers cannot edit this project; ask an owner for the editor role',
};
const FORBIDDEN_CREATE: CollabError = {
  code: 'forbidden',
  message: 'Documents are made from files: create, delete or move the file instead',
};

/** A document's key in this instance's maps: `projectId\0path`. */
function docKey(projectId: string, path: string): string {
  return `${projectId}\u0000${path}`;
}

/** A client connection's WebSocket (none for the server's own agent). */
function socketOf(agent: Agent): WebSocket | undefined {
  return agent.stream instanceof SocketStream ? agent.stream.ws : undefined;
}

/** `start()`'s promise, shared with whoever asks for the same `key` while it runs. */
function shared<T>(
  inFlight: Map<string, Promise<T>>,
  key: string,
  start: () => Promise<T>,
): Promise<T> {
  let running = inFlight.get(key);
  if (!running) {
    running = start().finally(() => inFlight.delete(key));
    inFlight.set(key, running);
  }
  return running;
}

function state(agent: Agent): AgentState {
  return agent.custom as AgentState;
}

function hasCompact(
  db: unknown,
): db is { compact(c: string, id: string, keepFromVersion: number): Promise<number> } {
  return typeof (db as { compact?: unknown }).compact === 'function';
}

function bulkIds(b: unknown): string[] {
  if (Array.isArray(b)) return b.filter((x): x is string => typeof x === 'string');
  if (b && typeof b === 'object') return Object.keys(b);
  return [];
}

/** The author a server-submitted op's `src` names (`vf:<source>:<userId|->:<nonce>`). */
export function authorOfSrc(src: string | undefined): { source: string; userId?: string } {
  const [vf, source, userId] = (src ?? '').split(':');
  if (vf !== 'vf' || !source) return { source: 'collab' };
  return { source, ...(userId && userId !== '-' ? { userId } : {}) };
}

/** Errors a client may see: the contract's code and message, nothing internal. */
function toClientError(err: unknown, log: Logger): CollabError {
  if (err instanceof AppError) return { code: err.code, message: err.message };
  if (
    err &&
    typeof err === 'object' &&
    'code' in err &&
    'message' in err &&
    !(err instanceof Error)
  ) {
    return err as CollabError;
  }
  log.warn({ err }, 'collab request failed');
  return { code: 'internal', message: 'Something went wrong on our side' };
}
