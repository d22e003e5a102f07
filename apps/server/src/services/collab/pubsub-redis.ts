import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import ShareDB from 'sharedb';

// ShareDB's typings call errors `ShareDB.Error` ({code, message}); at run time any Error does.
type Callback = (err: ShareDB.Error | null) => void;

/** Options of {@link RedisPubSub}. */
export interface RedisPubSubOptions {
  /** Put before every channel name (ShareDB adds a space): instances of one deployment share it. */
  prefix?: string;
  /** Connection trouble (ioredis reconnects and resubscribes by itself). Default: ignored. */
  onError?: (err: Error) => void;
}

// One round trip and one order for all channels of an op (its document's and its collection's).
const PUBLISH_SCRIPT = "for i = 2, #ARGV do redis.call('publish', ARGV[i], ARGV[1]) end";
/** The field of a message naming the instance that published it (dropped before delivery). */
const FROM = 'vfFrom';

/**
 * ShareDB PubSub over Redis (ioredis): what one instance commits reaches the subscribers of every
 * instance. Two connections, since a subscribed Redis connection can do nothing else. This
 * instance's own subscribers get a message at once, as from ShareDB's in-memory pub/sub, and
 * skip its echo from Redis: co-editors on one instance (a project's sockets, as the load balancer
 * routes them) never wait on the Redis server. Delivery across instances is at most once: an op
 * published while a connection is down is lost; ShareDB's clients catch up from the database
 * when they see a version gap, and `MissedOps` delivers from the database what no later op
 * reveals, so correctness never depends on it.
 */
export class RedisPubSub extends ShareDB.PubSub {
  /** This instance's mark on what it publishes. */
  readonly #id = randomUUID();
  readonly #client: Redis;
  readonly #observer: Redis;
  #closing: Promise<void> | undefined;

  constructor(redisUrl: string, options: RedisPubSubOptions = {}) {
    super(options.prefix ? { prefix: options.prefix } : undefined);
    const onError = options.onError ?? (() => undefined);
    this.#client = new Redis(redisUrl, { maxRetriesPerRequest: 3 });
    this.#observer = new Redis(redisUrl);
    for (const connection of [this.#client, this.#observer]) connection.on('error', onError);
    this.#observer.on('message', (channel: string, message: string) => {
      let data: Record<string, unknown>;
      try {
        data = JSON.parse(message) as Record<string, unknown>;
      } catch {
        onError(new Error(`ignoring a malformed message on ${channel}`));
        return;
      }
      if (data[FROM] === this.#id) return; // delivered here when it was published
      delete data[FROM];
      this._emit(channel, data);
    });
  }

  /** Ends every stream, then both connections. Safe to call more than once. */
  override close(callback?: Callback): void {
    super.close((err) => {
      if (err) return callback?.(err);
      this.#closing ??= Promise.all([
        this.#client.quit().catch(() => this.#client.disconnect()),
        this.#observer.quit().catch(() => this.#observer.disconnect()),
      ]).then(() => undefined);
      settle(this.#closing, callback);
    });
  }

  protected override _subscribe(channel: string, callback: Callback): void {
    settle(this.#observer.subscribe(channel), callback);
  }

  protected override _unsubscribe(channel: string, callback: Callback): void {
    // Streams ended by close() unsubscribe after the connection is gone: nothing left to undo.
    if (this.#closing) return process.nextTick(callback, null);
    settle(this.#observer.unsubscribe(channel), callback);
  }

  protected override _publish(channels: string[], data: unknown, callback: Callback): void {
    if (!this.#closing) {
      process.nextTick(() => {
        for (const channel of channels) this._emit(channel, data as Record<string, unknown>);
      });
    }
    const message = JSON.stringify({ ...(data as object), [FROM]: this.#id });
    settle(this.#client.eval(PUBLISH_SCRIPT, 0, message, ...channels), callback);
  }
}

/** The ShareDB pub/sub of the collab service when REDIS_URL is set. */
export function createRedisPubSub(redisUrl: string, options?: RedisPubSubOptions): RedisPubSub {
  return new RedisPubSub(redisUrl, options);
}

/** Calls a ShareDB callback outside the promise chain, so its exceptions stay its own. */
function settle(promise: Promise<unknown>, callback: Callback | undefined): void {
  promise.then(
    () => process.nextTick(() => callback?.(null)),
    (err: unknown) => {
      const error = err instanceof Error ? err : new Error(String(err));
      process.nextTick(() => callback?.(error as unknown as ShareDB.Error));
    },
  );
}
