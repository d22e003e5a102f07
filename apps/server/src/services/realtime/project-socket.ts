import {
  parseProjectEvent,
  projectEventOf,
  projectSocketClientMessage,
  type ProjectEvent,
} from '@vaporform/sdk';
import { WebSocket } from 'ws';
import type { EventBus } from '../../common/bus.ts';
import { AppError } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import { projectChannel, publishProjectEvent } from '../../common/project-events.ts';
import type { AuthService } from '../auth/index.ts';
import type { Metrics } from '../monitoring/index.ts';
import type { ProjectsService, Role } from '../projects/index.ts';

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
  /** Sockets accepted but not open yet: the room (and its subscription) waits for them. */
  pending: number;
  unsubscribe: Promise<() => Promise<void>>;
}

/** A client that cannot keep up (this much unsent) is dropped rather than buffered without end. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
/** The largest message a client may send (a ping is a few bytes). */
const MAX_CLIENT_MESSAGE_BYTES = 16 * 1024;

/**
 * The sockets of `WS /api/projects/:id/ws` (the route is routes.ts): delivers every event
 * published on the project's bus channel (`file_changed`, `container_status`, `claude-*`, …, the
 * contract's union in @vaporform/sdk) as JSON `{type, data}` to each connected member, viewers
 * included, on every instance (the bus is Redis when REDIS_URL is set). Also `presence`
 * (`join`/`leave`, and a `snapshot` of who is connected here on connect).
 *
 * A socket closes when its session is revoked (4401) or its member leaves the project (4404),
 * at once on every instance; a member whose role changes gets `membership` `{role}` on their
 * own sockets.
 */
export class ProjectSocketHub {
  readonly #rooms = new Map<string, Room>();
  readonly #bus: EventBus;
  readonly #auth: AuthService;
  readonly #projects: ProjectsService;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #stopRevocations: () => void;
  readonly #stopMembership: () => void;
  #closed = false;

  constructor(deps: {
    bus: EventBus;
    auth: AuthService;
    projects: ProjectsService;
    log: Logger;
    metrics: Metrics;
    /** How often to ping clients and re-check their membership (ms). */
    heartbeatMs?: number;
  }) {
    this.#bus = deps.bus;
    this.#auth = deps.auth;
    this.#projects = deps.projects;
    this.#log = deps.log;
    this.#metrics = deps.metrics;
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
          send(client, projectEventOf('membership', { role: change.role }));
        }
      }
    });
  }

  /**
   * Prepares a member's socket (after the route's auth and role checks): the project's bus
   * subscription is live before the socket opens, so no event falls in between. Call `open`
   * with the socket once the handshake is done, or `abandon` when it never opens.
   * @throws AppError unavailable while the server shuts down.
   */
  async prepare(member: {
    projectId: string;
    userId: string;
    sessionId: string;
    role: Role;
  }): Promise<{ open(ws: WebSocket): void; abandon(): void }> {
    if (this.#closed) throw new AppError('unavailable', 'The server is shutting down');
    const room = this.#room(member.projectId);
    room.pending++;
    let settled = false;
    const settle = () => {
      if (settled) return false;
      settled = true;
      room.pending--;
      return true;
    };
    try {
      await room.unsubscribe;
    } catch (err) {
      settle();
      void this.#dropIfEmpty(member.projectId, room);
      throw err;
    }
    return {
      open: (ws) => {
        if (!settle()) return;
        if (this.#closed) {
          ws.terminate();
          return;
        }
        this.#accept({ ws, ...member, alive: true });
      },
      abandon: () => {
        if (settle()) void this.#dropIfEmpty(member.projectId, room);
      },
    };
  }

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
    this.#metrics.projectSockets.set(0);
  }

  #accept(client: Client): void {
    const room = this.#room(client.projectId);
    room.clients.add(client);
    this.#metrics.projectSockets.inc();
    const { ws } = client;
    ws.on('pong', () => (client.alive = true));
    ws.on('message', (raw, isBinary) => {
      const text = raw.toString();
      if (text.length > MAX_CLIENT_MESSAGE_BYTES) {
        ws.close(1009, 'message too big');
        return;
      }
      if (isBinary) return;
      try {
        const msg = projectSocketClientMessage.safeParse(JSON.parse(text));
        if (msg.success && msg.data.type === 'ping') send(client, projectEventOf('pong', {}));
      } catch {
        // Not JSON: nothing a client may say here needs an answer.
      }
    });
    ws.on('error', () => ws.terminate());
    // The leave waits for the join and says the name the join read: a socket closed while its
    // join is still on its way must not leave the others with an avatar that never goes.
    const joined = this.#join(client);
    ws.on('close', () => void this.#leave(client, joined));
  }

  /**
   * Sends the newcomer who is here (`snapshot`) and tells everyone they joined, with one read of
   * the users. @returns their name ('' when it could not be read).
   */
  async #join(client: Client): Promise<string> {
    let name = '';
    try {
      const here = [...this.#room(client.projectId).clients].map((c) => c.userId);
      // Their own id too: the socket may already be gone from the room (then the snapshot
      // goes nowhere).
      const users = await this.#auth.usersByIds([...new Set([...here, client.userId])]);
      name = users.find((u) => u.id === client.userId)?.name ?? '';
      send(
        client,
        projectEventOf('presence', {
          event: 'snapshot',
          users: users.map((u) => ({ userId: u.id, name: u.name })),
        }),
      );
      await this.#publishPresence(client, 'join', name);
    } catch (err) {
      this.#log.debug({ err, projectId: client.projectId }, 'presence not announced');
    }
    return name;
  }

  async #publishPresence(client: Client, event: 'join' | 'leave', name: string): Promise<void> {
    await publishProjectEvent(this.#bus, client.projectId, 'presence', {
      event,
      userId: client.userId,
      name,
    });
  }

  async #leave(client: Client, joined: Promise<string>): Promise<void> {
    const room = this.#rooms.get(client.projectId);
    if (!room?.clients.delete(client)) return;
    this.#metrics.projectSockets.dec();
    const name = await joined;
    if (!this.#closed) {
      await this.#publishPresence(client, 'leave', name).catch((err: unknown) =>
        this.#log.debug({ err, projectId: client.projectId }, 'presence not announced'),
      );
    }
    await this.#dropIfEmpty(client.projectId, room);
  }

  /** Ends the room's bus subscription once no socket is in it or on its way. */
  async #dropIfEmpty(projectId: string, room: Room): Promise<void> {
    if (room.clients.size > 0 || room.pending > 0 || this.#rooms.get(projectId) !== room) return;
    this.#rooms.delete(projectId);
    try {
      await (
        await room.unsubscribe
      )();
    } catch (err) {
      this.#log.debug({ err }, 'bus unsubscribe failed');
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
      room = { clients, pending: 0, unsubscribe };
      this.#rooms.set(projectId, room);
    }
    return room;
  }

  #deliver(clients: Set<Client>, message: unknown): void {
    if (clients.size === 0) return;
    // Published through publishProjectEvent, so typed; checked again for what another
    // instance (an older version) may have put on the channel.
    const parsed = parseProjectEvent(message);
    if (!parsed.ok) {
      this.#log.warn({ error: parsed.error }, 'a project event outside the contract was dropped');
      return;
    }
    const text = JSON.stringify(message);
    for (const client of clients) sendText(client, text);
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

function send(client: Client, event: ProjectEvent): void {
  sendText(client, JSON.stringify(event));
}

function sendText(client: Client, text: string): void {
  const { ws } = client;
  if (ws.readyState !== WebSocket.OPEN) return;
  if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
    ws.terminate();
    return;
  }
  ws.send(text);
}

/** @deprecated moved to common/project-events.ts; kept for code that still imports it here. */
export { projectChannel };
