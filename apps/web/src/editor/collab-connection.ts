import ReconnectingWebSocket from 'reconnecting-websocket';
import { Connection, types, type Doc as ShareDoc, type Presence } from 'sharedb/lib/client';
import { type as textUnicode } from 'ot-text-unicode';
import type { CollabIdentity } from './collab-binding.ts';
import { codePointLength, type TextOp } from './collab-text.ts';

/** What each collaborator's document presence carries (API.md › Realtime). */
export interface CollabPresenceValue {
  /** `[anchor, head]` in code points. */
  sel: [number, number];
  name?: string;
  color?: string;
  userId?: string;
}

/** One shared text document, subscribed. */
export interface CollabDoc {
  doc: ShareDoc<string>;
  presence: Presence<CollabPresenceValue | null>;
  /** This connection's id (ShareDB's `src` of our own ops). */
  connectionId(): string | null;
  /** Unsubscribes (document and presence). */
  release(): void;
}

/** The state of the collab socket. */
export type CollabState = 'connecting' | 'open' | 'closed';

/** Why a file is edited without the OT channel (binary, too big, no socket…). */
export class NotCollaborative extends Error {
  override readonly name = 'NotCollaborative';
}

/**
 * `ot-text-unicode` extended with `transformPresence` (it has none): a remote caret stays put
 * at an insertion point, the author's own caret moves past what they typed. The server
 * registers the same type.
 */
export const collabTextType = {
  ...textUnicode,
  transformPresence(presence: unknown, op: TextOp, isOwnOp: boolean): unknown {
    if (!presence || typeof presence !== 'object') return presence;
    const p = presence as Partial<CollabPresenceValue>;
    if (!Array.isArray(p.sel) || p.sel.length !== 2) return presence;
    const [anchor, head] = p.sel;
    if (typeof anchor !== 'number' || typeof head !== 'number') return presence;
    const sel: [number, number] = isOwnOp
      ? [movePast(anchor, op), movePast(head, op)]
      : (textUnicode.transformSelection([anchor, head], op as never) as [number, number]);
    return { ...p, sel };
  },
};

function movePast(pos: number, op: TextOp): number {
  let at = 0;
  let shift = 0;
  for (const c of op) {
    if (typeof c === 'number') {
      if (pos <= at + c) break;
      at += c;
    } else if (typeof c === 'string') {
      if (at > pos) break;
      shift += codePointLength(c);
    } else {
      const n = typeof c.d === 'number' ? c.d : codePointLength(c.d);
      if (pos <= at) break;
      shift -= Math.min(n, pos - at);
      at += n;
    }
  }
  return Math.max(0, pos + shift);
}

let registered = false;

/** Registers {@link collabTextType} with the ShareDB client (idempotent). */
export function registerCollabType(): void {
  if (registered) return;
  types.register(collabTextType as never);
  registered = true;
}

/**
 * The IDE's connection to `WS /api/collab`: ShareDB's stock client over a reconnecting socket
 * (a fresh access token on every attempt). Opened on the first document; ShareDB queues ops
 * made while it is down and sends them when it is back.
 */
export class CollabClient {
  readonly #url: () => Promise<string>;
  readonly #WebSocketImpl: unknown;
  readonly #identity: () => CollabIdentity;
  #socket: ReconnectingWebSocket | undefined;
  #connection: Connection | undefined;
  #state: CollabState = 'closed';
  #unavailable = false;
  readonly #listeners = new Set<(s: CollabState) => void>();

  /**
   * @param opts.url the socket URL with a current token (called before every attempt).
   * @param opts.WebSocket a WebSocket class (node tests pass `ws`).
   * @param opts.identity our name and cursor colour for the others.
   */
  constructor(opts: {
    url: () => Promise<string>;
    WebSocket?: unknown;
    identity?: () => CollabIdentity;
  }) {
    registerCollabType();
    this.#url = opts.url;
    this.#WebSocketImpl = opts.WebSocket;
    this.#identity = opts.identity ?? (() => ({ name: 'Me', color: '#888888' }));
  }

  /** Who we are to the others. */
  identity(): CollabIdentity {
    return this.#identity();
  }

  get state(): CollabState {
    return this.#state;
  }

  /** The ShareDB connection (created on first use). */
  get connection(): Connection {
    if (!this.#connection) {
      this.#socket = new ReconnectingWebSocket(this.#url, [], {
        ...(this.#WebSocketImpl ? { WebSocket: this.#WebSocketImpl } : {}),
        minReconnectionDelay: 300,
        maxReconnectionDelay: 10_000,
        connectionTimeout: 5_000,
      });
      this.#connection = new Connection(this.#socket as never);
      this.#connection.on('state', (s) => {
        this.#setState(s === 'connected' ? 'open' : s === 'connecting' ? 'connecting' : 'closed');
      });
      this.#setState('connecting');
    }
    return this.#connection;
  }

  /** Listens to the socket state; returns an unsubscribe. */
  onState(listener: (s: CollabState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Subscribes to a file's document (collection = project, id = path) and its presence.
   * @throws NotCollaborative when the server refuses it (binary, too big, not a text document)
   *   or does not answer within `timeoutMs`.
   */
  async open(
    projectId: string,
    path: string,
    opts: { timeoutMs?: number } = {},
  ): Promise<CollabDoc> {
    // A server without the channel costs one wait per session, not one per file.
    if (this.#unavailable && this.#state !== 'open')
      throw new NotCollaborative('the collaboration server is not available');
    const connection = this.connection;
    const doc = connection.get(projectId, path) as ShareDoc<string>;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.#state !== 'open') this.#unavailable = true;
        reject(new NotCollaborative('the collaboration server did not answer'));
      }, opts.timeoutMs ?? 4000);
      doc.subscribe((err) => {
        clearTimeout(timer);
        if (err) reject(new NotCollaborative(err.message));
        else resolve();
      });
    }).catch((err: unknown) => {
      doc.destroy();
      throw err;
    });
    if (!doc.type || typeof doc.data !== 'string') {
      doc.destroy();
      throw new NotCollaborative('not a text document');
    }
    const presence = connection.getDocPresence(
      projectId,
      path,
    ) as Presence<CollabPresenceValue | null>;
    presence.subscribe();
    return {
      doc,
      presence,
      connectionId: () => connection.id,
      release: () => {
        presence.destroy();
        doc.destroy();
      },
    };
  }

  /** Closes the socket for good. */
  close(): void {
    this.#connection?.close();
    this.#socket?.close();
    this.#connection = undefined;
    this.#socket = undefined;
    this.#setState('closed');
  }

  #setState(s: CollabState): void {
    if (s === 'open') this.#unavailable = false;
    if (s === this.#state) return;
    this.#state = s;
    for (const l of this.#listeners) l(s);
  }
}

/** A stable colour for a user (the same in every browser). */
export function colorFor(userId: string): string {
  const palette = [
    '#e5484d',
    '#30a46c',
    '#0090ff',
    '#f76b15',
    '#8e4ec6',
    '#12a594',
    '#d6409f',
    '#ad7f58',
  ];
  let h = 0;
  for (let i = 0; i < userId.length; i++) h = (h * 31 + userId.charCodeAt(i)) >>> 0;
  return palette[h % palette.length]!;
}

/** What the browser's collab client needs from the API client (the real Api satisfies it). */
export interface CollabAuth {
  readonly baseUrl: string;
  accessToken(): Promise<string | null>;
  readonly session: { get(): { user: { id: string; name: string; email: string } } | null };
}

/**
 * The IDE's client of `WS /api/collab` on the API's origin, as the signed-in user, for one
 * project's documents (`?project=`: a load balancer sends a project's sockets to one instance).
 */
export function browserCollabClient(api: CollabAuth, projectId: string): CollabClient {
  return new CollabClient({
    url: async () => {
      const token = await api.accessToken();
      if (!token) throw new Error('signed out');
      const url = new URL('/api/collab', api.baseUrl || window.location.origin);
      url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
      url.searchParams.set('token', token);
      url.searchParams.set('project', projectId);
      return url.toString();
    },
    identity: () => {
      const user = api.session.get()?.user;
      return {
        name: user?.name || user?.email || 'Someone',
        color: colorFor(user?.id ?? 'anonymous'),
      };
    },
  });
}
