import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import type { Logger } from './logger.ts';

/** Fan-out of JSON messages by channel: in-process, or across instances through Redis. */
export interface EventBus {
  publish(channel: string, message: unknown): Promise<void>;
  /** @returns a function that unsubscribes. */
  subscribe(channel: string, handler: (message: unknown) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** Delivers to subscribers in this process only (the default without REDIS_URL). */
export class InProcessBus implements EventBus {
  readonly #emitter = new EventEmitter().setMaxListeners(0);

  async publish(channel: string, message: unknown): Promise<void> {
    // Deliver asynchronously, as Redis would, so publishers never run subscriber code inline.
    const copy = structuredClone(message);
    queueMicrotask(() => this.#emitter.emit(channel, copy));
  }

  async subscribe(
    channel: string,
    handler: (message: unknown) => void,
  ): Promise<() => Promise<void>> {
    this.#emitter.on(channel, handler);
    return async () => {
      this.#emitter.off(channel, handler);
    };
  }

  async close(): Promise<void> {
    this.#emitter.removeAllListeners();
  }
}

/** Redis pub/sub: every instance subscribed to a channel receives every message. */
export class RedisBus implements EventBus {
  readonly #pub: Redis;
  readonly #sub: Redis;
  readonly #handlers = new Map<string, Set<(message: unknown) => void>>();
  readonly #prefix: string;

  constructor(url: string, log: Logger, prefix = 'vaporform:') {
    this.#prefix = prefix;
    this.#pub = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 3 });
    this.#sub = new Redis(url, { lazyConnect: false });
    for (const client of [this.#pub, this.#sub]) {
      client.on('error', (err: Error) => log.warn({ err: err.message }, 'redis connection error'));
    }
    this.#sub.on('message', (channel: string, raw: string) => {
      const handlers = this.#handlers.get(channel.slice(this.#prefix.length));
      if (!handlers) return;
      let message: unknown;
      try {
        message = JSON.parse(raw);
      } catch {
        log.warn({ channel }, 'ignoring a malformed bus message');
        return;
      }
      for (const handler of handlers) handler(message);
    });
  }

  async publish(channel: string, message: unknown): Promise<void> {
    await this.#pub.publish(this.#prefix + channel, JSON.stringify(message));
  }

  async subscribe(
    channel: string,
    handler: (message: unknown) => void,
  ): Promise<() => Promise<void>> {
    let handlers = this.#handlers.get(channel);
    if (!handlers) {
      handlers = new Set();
      this.#handlers.set(channel, handlers);
      await this.#sub.subscribe(this.#prefix + channel);
    }
    handlers.add(handler);
    return async () => {
      handlers.delete(handler);
      if (handlers.size === 0 && this.#handlers.get(channel) === handlers) {
        this.#handlers.delete(channel);
        await this.#sub.unsubscribe(this.#prefix + channel);
      }
    };
  }

  async close(): Promise<void> {
    this.#handlers.clear();
    this.#sub.disconnect();
    await this.#pub.quit().catch(() => undefined);
  }
}

/** Redis when a URL is given, otherwise in-process. */
export function createEventBus(redisUrl: string | undefined, log: Logger): EventBus {
  return redisUrl ? new RedisBus(redisUrl, log) : new InProcessBus();
}
