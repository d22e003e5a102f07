import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import ShareDB from 'sharedb';
import { Recently } from './recently.ts';

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
/**
 * Fields of a message, dropped before delivery: the instance that published it, and whether that
 * instance delivered it to its own streams then (and so drops its echo).
 */
const FROM = 'vfFrom';
const DELIVERED = 'vfDelivered';
/** A message that is not an op: its instance shares the channel (see {@link RedisPubSub.share}). */
const SHARING = 'vfSharing';
/** How long a channel counts as shared after a message from another instance arrived on it. */
const SHARED_MS = 10_000;

/**
 * ShareDB PubSub over Redis (ioredis): what one instance commits reaches the subscribers of every
 * instance. Two connections, since a subscribed Redis connection can do nothing else. On a
 * channel that only this instance publishes to (a project's sockets share one instance, as the
 * load balancer routes them) its own subscribers get a message at once, as from ShareDB's
 * in-memory pub/sub, and skip its echo: co-editors never wait on the Redis server. On a channel
 * that other instances published to lately everything goes through Redis, whose one order all
 * instances see (delivered out of order, ops make clients fetch). Delivery across instances is
 * at most once: an op published while a connection is down is lost; ShareDB's clients catch up
 * from the database when they see a version gap, and `MissedOps` delivers from the database what
 * no later op reveals, so correctness never depends on it.
 */
export class RedisPubSub extends ShareDB.PubSub {
  /** This instance's mark on what it publishes. */
  readonly #id = randomUUID();
  readonly #client: Redis;
  readonly #observer: Redis;
  /** Channels another instance published on lately. */
  readonly #shared = new Recently<string>(SHARED_MS);
  /** Channels this instance told lately that it shares them (at most once a second). */
  readonly #told = new Recently<string>(1000);
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
      const ours = data[FROM] === this.#id;
      if (!ours) this.#shared.mark(channel);
      if (data[SHARING] || (ours && data[DELIVERED])) return; // or: delivered when published
      delete data[FROM];
      delete data[DELIVERED];
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
    const local = !this.#closing && !channels.some((c) => this.#shared.has(c));
    if (local) {
      process.nextTick(() => {
        for (const channel of channels) this._emit(channel, data as Record<string, unknown>);
      });
    }
    const message = JSON.stringify({ ...(data as object), [FROM]: this.#id, [DELIVERED]: local });
    settle(this.#client.eval(PUBLISH_SCRIPT, 0, message, ...channels), callback);
  }

  /** Whether another instance published ops of a document in the last 10 s. */
  othersPublished(collection: string, id: string): boolean {
    return this.#shared.has(this.#docChannel(collection, id));
  }

  /**
   * Tells the other instances with subscribers to a document that this one writes it too,
   * without an op to carry that (its writes lose the races there). At most once a second.
   */
  share(collection: string, id: string): void {
    const channel = this.#docChannel(collection, id);
    if (this.#closing || this.#told.has(channel)) return;
    this.#told.mark(channel);
    const message = JSON.stringify({ [FROM]: this.#id, [SHARING]: true });
    this.#client.publish(channel, message).catch(() => undefined); // at most once, like the rest
  }

  /** ShareDB's channel of a document (`collection.id`), with the prefix. */
  #docChannel(collection: string, id: string): string {
    const channel = `${collection}.${id}`;
    return this.prefix ? `${this.prefix} ${channel}` : channel;
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
