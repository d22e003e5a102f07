import type { Redis } from 'ioredis';
import {
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import type { EventBus } from '../../common/bus.ts';
import { errors } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import { projectChannel } from '../../common/project-events.ts';
import type { Db } from '../../db/index.ts';
import type { AuthService } from '../auth/index.ts';
import { MessagesStore, type MessageCursor, type MessageRow } from './store.ts';

/** A message of a project's session chat, as the API shows it. */
export interface SessionMessage {
  id: string;
  /** Null when the author's account is gone. */
  userId: string | null;
  /** The author's name (current, or as it was when the account is gone). */
  name: string;
  text: string;
  createdAt: string;
}

/** How many messages one person may post (on all projects together) per window. */
export interface ChatLimits {
  perWindow: number;
  windowSeconds: number;
}

/** Enough for a lively conversation; a script pasting lines in a loop is stopped. */
export const defaultChatLimits: ChatLimits = { perWindow: 20, windowSeconds: 15 };

export interface MessagesServiceDeps {
  db: Db;
  auth: AuthService;
  bus: EventBus;
  log: Logger;
  limits?: ChatLimits;
  /** With REDIS_URL the limit holds across instances. */
  redis?: Redis;
}

/** Paging of `list`: at most this many messages per page, and the default. */
export const pageLimits = { default: 50, max: 200 } as const;

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Session chat between the members of a project: messages stored in PostgreSQL and pushed to
 * the project's sockets as `chat` events `{message}`. Membership is checked by the routes
 * (viewers may chat: it is talk, not edits); this class trusts its caller.
 */
export class MessagesService {
  readonly #store: MessagesStore;
  readonly #auth: AuthService;
  readonly #bus: EventBus;
  readonly #log: Logger;
  readonly #limiter: RateLimiterAbstract;

  constructor(deps: MessagesServiceDeps) {
    this.#store = new MessagesStore(deps.db);
    this.#auth = deps.auth;
    this.#bus = deps.bus;
    this.#log = deps.log;
    const limits = deps.limits ?? defaultChatLimits;
    const options = {
      keyPrefix: 'vf_chat_user',
      points: limits.perWindow,
      duration: limits.windowSeconds,
    };
    this.#limiter = deps.redis
      ? new RateLimiterRedis({ storeClient: deps.redis, ...options })
      : new RateLimiterMemory(options);
  }

  /**
   * Stores `text` as `userId`'s message and pushes it to every member's project socket.
   * @throws AppError rate_limited (429, Retry-After) when the author posted too much lately.
   */
  async post(projectId: string, userId: string, text: string): Promise<SessionMessage> {
    try {
      await this.#limiter.consume(userId);
    } catch (err) {
      if (err instanceof RateLimiterRes) throw errors.rateLimited(err.msBeforeNext / 1000);
      throw err;
    }
    const [author] = await this.#auth.usersByIds([userId]);
    const row = await this.#store.insert({
      projectId,
      userId,
      authorName: author?.name ?? '',
      body: text,
    });
    const message = toMessage(row, author?.name);
    // Stored is what counts: a client that missed the event reads it back (GET ?after=).
    await this.#bus
      .publish(projectChannel(projectId), { type: 'chat', data: { message } })
      .catch((err: unknown) => this.#log.warn({ err, projectId }, 'chat event not published'));
    return message;
  }

  /**
   * A page of the project's messages, oldest first: the newest `limit` before `before` (or
   * the newest of all), or the oldest `limit` after `after` (what a client missed). Cursors are
   * a message id or an ISO-8601 timestamp.
   * @throws AppError invalid_request for a malformed cursor or a message id not in this project.
   */
  async list(
    projectId: string,
    options: { before?: string; after?: string; limit?: number } = {},
  ): Promise<SessionMessage[]> {
    const before = parseCursor('before', options.before);
    const after = parseCursor('after', options.after);
    const limit = Math.min(Math.max(1, options.limit ?? pageLimits.default), pageLimits.max);
    const page = await this.#store.page(projectId, { before, after, limit });
    if ('missing' in page) {
      throw errors.invalid('The request is not valid', [
        { field: page.missing, message: 'no such message in this project' },
      ]);
    }
    const rows = page.rows;
    const ids = [...new Set(rows.flatMap((r) => (r.user_id ? [r.user_id] : [])))];
    const names = new Map((await this.#auth.usersByIds(ids)).map((u) => [u.id, u.name]));
    return rows.map((r) => toMessage(r, r.user_id ? names.get(r.user_id) : undefined));
  }
}

function parseCursor(field: string, value: string | undefined): MessageCursor | undefined {
  if (value === undefined || value === '') return undefined;
  if (uuidPattern.test(value)) return { id: value.toLowerCase() };
  // Only ISO-8601-looking strings: Date.parse accepts many things that are not timestamps.
  const at = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value)
    ? new Date(value)
    : undefined;
  if (!at || Number.isNaN(at.getTime())) {
    throw errors.invalid('The request is not valid', [
      { field, message: 'must be a message id or an ISO-8601 timestamp' },
    ]);
  }
  return { at };
}

function toMessage(row: MessageRow, currentName: string | undefined): SessionMessage {
  return {
    id: row.id,
    userId: row.user_id,
    name: currentName ?? row.author_name,
    text: row.body,
    createdAt: row.created_at.toISOString(),
  };
}
