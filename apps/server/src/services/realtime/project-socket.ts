import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { AppError } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import type { AuthService } from '../auth/index.ts';
import type { Metrics } from '../monitoring/index.ts';
import type { ProjectsService, Role } from '../projects/index.ts';
import type { EventBus } from './bus.ts';
import { requireIdeOrigin } from './socket-origin.ts';

/** The bus channel a project's events travel on: `project:<projectId>`. */
export function projectChannel(projectId: string): string {
  return `project:${projectId}`;
}

/** A project event as published on the bus and delivered to sockets: `{type, data}`. */
export interface ProjectEvent {
  type: string;
  data?: unknown;
}

interface Client {
  ws: WebSocket;
  projectId: string;
  userId: string;
  sessionId: string;
  role: Role;
  alive: boolean;
}

interface Room {
  clients: Set<Client>;
  unsubscribe: Promise<() => Promise<void>>;
}

const PATH = /^\/api\/projects\/([^/]+)\/ws\/?$/;
/** A client that cannot keep up (this much unsent) is dropped rather than buffered without end. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

/**
 * `WS /api/projects/:id/ws`: delivers every event published on the project's bus channel
 * (`file_changed`, `container_status`, `claude-*`, …) as JSON `{type, data}` to each connected
 * member, viewers included, on every instance (the bus is Redis when REDIS_URL is set). Also
 * `presence` (`join`/`leave`, and a `snapshot` of who is connected here on connect).
 *
 * Auth: `?token=` or `Authorization: Bearer`; a browser's Origin must be the IDE's (403).
 * Strangers get 404, like every route. A socket closes when its session is revoked (4401) or
 * its member leaves the project (4404), at once on every instance; a member whose role changes
 * gets `membership` `{role}` on their own sockets.
 */
export class ProjectSocketHub {
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 });
  readonly #rooms = new Map<string, Room>();
  readonly #bus: EventBus;
  readonly #auth: AuthService;
  readonly #projects: ProjectsService;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #stopRevocations: () => void;
  readonly #stopMembership: () => void;
  readonly #origin: string;
  #closed = false;

  constructor(deps: {
    bus: EventBus;
    auth: AuthService;
    projects: ProjectsService;
    log: Logger;
    metrics: Metrics;
    /** The IDE's base URL: a browser's Origin header must be its origin. */
    publicUrl: string;
    /** How often to ping clients and re-check their membership (ms). */
    heartbeatMs?: number;
  }) {
    this.#bus = deps.bus;
    this.#auth = deps.auth;
    this.#projects = deps.projects;
    this.#log = deps.log;
    this.#metrics = deps.metrics;
    this.#origin = new URL(deps.publicUrl).origin;
    const every = deps.heartbeatMs ?? 30_000;
    this.#timers.push(setInterval(() => void this.#heartbeat(), every).unref());
    this.#stopRevocations = this.#auth.onSessionsRevoked((sessionIds) => {
      const ended = new Set(sessionIds);
      for (const client of this.#clients()) {
        if (ended.has(client.sessionId)) client.ws.close(4401, 'session ended');
      }
    });
    this.#stopMembership = this.#projects.onMembershipChanged((change) => {
      for (const client of this.#rooms.get(change.projectId)?.clients ?? []) {
        if (client.userId !== change.userId) continue;
        if (change.role === null) {
          client.ws.close(4404, 'no longer a member');
        } else {
          client.role = change.role;
          // The open IDE turns read-only (or back) at once.
          send(client, JSON.stringify({ type: 'membership', data: { role: change.role } }));
        }
      }
    });
  }

  /** The upgrade handler to register with `UpgradeRouter.add`. */
  readonly handleUpgrade = async (
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
  ): Promise<boolean> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const match = PATH.exec(url.pathname);
    if (!match) return false;
    if (this.#closed) throw new AppError('unavailable', 'The server is shutting down');
    requireIdeOrigin(req, this.#origin);
    const token = url.searchParams.get('token') ?? bearer(req.headers.authorization);
    const claims = await this.#auth.authenticate(token ?? undefined);
    const projectId = safeDecode(match[1]!);
    const { role } = await this.#projects.requireRole(projectId, claims.userId, 'viewer');
    const room = this.#room(projectId);
    await room.unsubscribe; // subscribed before accepting: no event falls in between
    this.#wss.handleUpgrade(req, socket, head, (ws) =>
      this.#accept({
        ws,
        projectId,
        userId: claims.userId,
        sessionId: claims.sessionId,
        role,
        alive: true,
      }),
    );
    return true;
  };

  /** How many sockets are open on this instance for `projectId` (all projects when omitted). */
  connections(projectId?: string): number {
    if (projectId) return this.#rooms.get(projectId)?.clients.size ?? 0;
    let n = 0;
    for (const room of this.#rooms.values()) n += room.clients.size;
    return n;
  }

  /** Closes every socket and bus subscription. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    this.#stopRevocations();
    this.#stopMembership();
    for (const client of this.#clients()) client.ws.terminate();
    const rooms = [...this.#rooms.values()];
    this.#rooms.clear();
    await Promise.all(
      rooms.map(async (r) => (await r.unsubscribe.catch(() => async () => undefined))()),
    );
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    this.#metrics.projectSockets.set(0);
  }

  #accept(client: Client): void {
    const room = this.#room(client.projectId);
    room.clients.add(client);
    this.#metrics.projectSockets.inc();
    const { ws } = client;
    ws.on('pong', () => (client.alive = true));
    ws.on('message', (raw, isBinary) => {
      if (isBinary) return;
      try {
        const msg = JSON.parse(raw.toString()) as { type?: unknown };
        if (msg.type === 'ping') send(client, JSON.stringify({ type: 'pong', data: {} }));
      } catch {
        // Not JSON: nothing a client may say here needs an answer.
      }
    });
    ws.on('error', () => ws.terminate());
    ws.on('close', () => void this.#leave(client));
    void this.#announce(client, 'join');
  }

  async #announce(client: Client, event: 'join' | 'leave'): Promise<void> {
    try {
      const [user] = await this.#auth.usersByIds([client.userId]);
      if (event === 'join') {
        const ids = [...new Set([...this.#room(client.projectId).clients].map((c) => c.userId))];
        const users = await this.#auth.usersByIds(ids);
        send(
          client,
          JSON.stringify({
            type: 'presence',
            data: { event: 'snapshot', users: users.map((u) => ({ userId: u.id, name: u.name })) },
          }),
        );
      }
      await this.#bus.publish(projectChannel(client.projectId), {
        type: 'presence',
        data: { event, userId: client.userId, name: user?.name ?? '' },
      });
    } catch (err) {
      this.#log.debug({ err, projectId: client.projectId }, 'presence not announced');
    }
  }

  async #leave(client: Client): Promise<void> {
    const room = this.#rooms.get(client.projectId);
    if (!room?.clients.delete(client)) return;
    this.#metrics.projectSockets.dec();
    if (!this.#closed) await this.#announce(client, 'leave');
    if (room.clients.size === 0 && this.#rooms.get(client.projectId) === room) {
      this.#rooms.delete(client.projectId);
      try {
        await (
          await room.unsubscribe
        )();
      } catch (err) {
        this.#log.debug({ err }, 'bus unsubscribe failed');
      }
    }
  }

  #room(projectId: string): Room {
    let room = this.#rooms.get(projectId);
    if (!room) {
      const clients = new Set<Client>();
      const unsubscribe = this.#bus.subscribe(projectChannel(projectId), (message) =>
        this.#deliver(clients, message),
      );
      unsubscribe.catch((err: unknown) =>
        this.#log.warn({ err, projectId }, 'bus subscribe failed'),
      );
      room = { clients, unsubscribe };
      this.#rooms.set(projectId, room);
    }
    return room;
  }

  #deliver(clients: Set<Client>, message: unknown): void {
    if (!isEvent(message)) return;
    const text = JSON.stringify(message);
    for (const client of clients) send(client, text);
  }

  #clients(): Client[] {
    return [...this.#rooms.values()].flatMap((r) => [...r.clients]);
  }

  /** Pings every client (dropping those that did not answer the last ping) and re-checks roles. */
  async #heartbeat(): Promise<void> {
    for (const client of this.#clients()) {
      if (!client.alive) {
        client.ws.terminate();
        continue;
      }
      client.alive = false;
      client.ws.ping();
      try {
        client.role = (
          await this.#projects.requireRole(client.projectId, client.userId, 'viewer')
        ).role;
      } catch (err) {
        if (err instanceof AppError && (err.code === 'not_found' || err.code === 'forbidden')) {
          client.ws.close(4404, 'no longer a member');
        }
      }
    }
  }
}

function send(client: Client, text: string): void {
  const { ws } = client;
  if (ws.readyState !== WebSocket.OPEN) return;
  if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
    ws.terminate();
    return;
  }
  ws.send(text);
}

function isEvent(message: unknown): message is ProjectEvent {
  return (
    typeof message === 'object' &&
    message !== null &&
    typeof (message as { type?: unknown }).type === 'string'
  );
}

function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  return m?.[1];
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
