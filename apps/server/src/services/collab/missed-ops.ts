import type pg from 'pg';
import type ShareDB from 'sharedb';
import type { Logger } from '../../common/logger.ts';

/** The parts of ShareDB's PubSub this repair uses (its streams per channel, and `_emit`). */
interface PubSubInternals {
  prefix?: string;
  streams: Record<string, Record<string, unknown>>;
  _emit(channel: string, data: unknown): void;
}

interface Gap {
  /** The database's version when the gap was first seen. */
  version: number;
  at: number;
}

/**
 * Delivers the ops that pub/sub lost. Redis pub/sub is at most once (a reconnect, a failed
 * publish): a client that misses an op notices only when a later op shows it the gap, and never
 * when the lost op was the last one typed. So, every `intervalMs`, the documents that this
 * instance's clients are subscribed to are looked up in PostgreSQL (one query per project); ops
 * that are committed but have not reached this instance's streams for a whole interval are read
 * from the database and handed to those streams. A client ignores an op it already has, so an
 * op that was only late does no harm.
 */
export class MissedOps {
  readonly #pubsub: PubSubInternals;
  readonly #db: ShareDB.DB;
  readonly #pool: pg.Pool;
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #timer: NodeJS.Timeout;
  /** The version that a doc channel's streams have been brought to (last op seen + 1). */
  readonly #seen = new Map<string, number>();
  readonly #gaps = new Map<string, Gap>();
  #checking = false;
  /** Ops handed to streams by this repair (for tests and logs). */
  delivered = 0;

  constructor(deps: {
    backend: ShareDB;
    pool: pg.Pool;
    log: Logger;
    /** How often the versions are compared; an op must be missing that long to be delivered. */
    intervalMs: number;
  }) {
    this.#pubsub = deps.backend.pubsub as unknown as PubSubInternals;
    this.#db = deps.backend.db;
    this.#pool = deps.pool;
    this.#log = deps.log;
    this.#intervalMs = deps.intervalMs;
    const emit = this.#pubsub._emit.bind(this.#pubsub);
    this.#pubsub._emit = (channel: string, data: unknown) => {
      const v = (data as { v?: unknown } | null)?.v;
      if (typeof v === 'number' && v + 1 > (this.#seen.get(channel) ?? 0)) {
        this.#seen.set(channel, v + 1);
      }
      emit(channel, data);
    };
    this.#timer = setInterval(() => void this.check(), deps.intervalMs).unref();
  }

  close(): void {
    clearInterval(this.#timer);
  }

  /** One comparison of every subscribed document (also run by the timer). */
  async check(now = Date.now()): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      const byCollection = new Map<string, Map<string, string>>();
      const prefix = this.#pubsub.prefix ? `${this.#pubsub.prefix} ` : '';
      for (const channel of Object.keys(this.#pubsub.streams)) {
        if (!channel.startsWith(prefix)) continue;
        // A document's channel is `collection.id` (a project id has no dot); a collection's has none.
        const name = channel.slice(prefix.length);
        const dot = name.indexOf('.');
        if (dot < 0 || name.startsWith('$')) continue; // a collection's, or presence ($presence.…)
        const collection = name.slice(0, dot);
        const ids = byCollection.get(collection) ?? new Map<string, string>();
        ids.set(name.slice(dot + 1), channel);
        byCollection.set(collection, ids);
      }
      for (const channel of this.#seen.keys()) {
        if (!this.#pubsub.streams[channel]) {
          this.#seen.delete(channel);
          this.#gaps.delete(channel);
        }
      }
      for (const [collection, ids] of byCollection) {
        const { rows } = await this.#pool.query<{ doc_id: string; version: number }>(
          `SELECT doc_id, version FROM collab_snapshots
            WHERE collection = $1 AND doc_id = ANY($2::text[])`,
          [collection, [...ids.keys()]],
        );
        for (const { doc_id: id, version } of rows) {
          await this.#compare(collection, id, ids.get(id)!, version, now);
        }
      }
    } catch (err) {
      this.#log.warn({ err }, 'collab: could not look for ops that pub/sub lost');
    } finally {
      this.#checking = false;
    }
  }

  async #compare(
    collection: string,
    id: string,
    channel: string,
    version: number,
    now: number,
  ): Promise<void> {
    const seen = this.#seen.get(channel);
    if (seen === undefined) {
      // First look: the subscribers were given the ops up to here when they subscribed.
      this.#seen.set(channel, version);
      return;
    }
    if (version <= seen) {
      this.#gaps.delete(channel);
      return;
    }
    const gap = this.#gaps.get(channel);
    if (!gap) {
      this.#gaps.set(channel, { version, at: now });
      return;
    }
    if (now - gap.at < this.#intervalMs) return;
    // Missing for a whole interval: lost, not late. Up to what was committed when first seen.
    const ops = await new Promise<ShareDB.Op[]>((resolve, reject) =>
      this.#db.getOps(collection, id, seen, gap.version, null, (err, result) =>
        err ? reject(err) : resolve(result ?? []),
      ),
    ).catch((err: unknown) => {
      // Compacted meanwhile: clients that far behind fetch the document again (ShareDB's
      // "missing ops" error). Nothing to deliver from here.
      this.#log.debug({ err, collection, id }, 'collab: missed ops no longer in the log');
      return [] as ShareDB.Op[];
    });
    this.#gaps.delete(channel);
    if (!this.#pubsub.streams[channel]) return;
    for (const op of ops) this.#pubsub._emit(channel, { ...op, c: collection, d: id });
    if (ops.length === 0) this.#seen.set(channel, Math.max(seen, gap.version));
    this.delivered += ops.length;
    this.#log.info(
      { collection, id, from: seen, to: gap.version, ops: ops.length },
      'collab: delivered ops that pub/sub lost',
    );
  }
}
