import type pg from 'pg';
import ShareDB from 'sharedb';

/** A ShareDB snapshot as the adapter hands it back (ShareDB's own Snapshot shape). */
export interface CollabSnapshot {
  id: string;
  v: number;
  type: string | null;
  data: unknown;
  m: Record<string, unknown> | null;
}

/** A committed op as stored: ShareDB's op object (src, seq, v, op|create|del, m). */
export interface CollabOp {
  v: number;
  src?: string;
  seq?: number;
  m?: Record<string, unknown>;
  [key: string]: unknown;
}

type Callback<T> = (err: Error | null, result?: T) => void;

interface SnapshotRow {
  doc_id: string;
  version: number;
  doc_type: string | null;
  data: unknown;
  metadata?: Record<string, unknown> | null;
}

interface OpRow {
  doc_id: string;
  version: number;
  operation: CollabOp;
}

const UNIQUE_VIOLATION = '23505';
const DEADLOCK_DETECTED = '40P01';

// One statement, so one implicit transaction and no session state (PgBouncer's transaction mode
// is fine): the snapshot moves from v-1 to v (or is created at v = 1) and the op at v-1 is
// inserted only if it did. A concurrent writer at the same version either finds the row already
// moved on (the UPDATE re-checks its WHERE after the row lock) or the row already inserted (ON
// CONFLICT DO NOTHING), so exactly one commit per version succeeds; the op's primary key backs
// that up (a duplicate is a unique violation, answered as "not committed").
const COMMIT_SQL = `
WITH updated AS (
  UPDATE collab_snapshots
     SET doc_type = $3, version = $4, data = $5::jsonb, metadata = $6::jsonb
   WHERE collection = $1 AND doc_id = $2 AND version = $4 - 1
  RETURNING version
), created AS (
  INSERT INTO collab_snapshots (collection, doc_id, doc_type, version, data, metadata)
  SELECT $1, $2, $3, $4, $5::jsonb, $6::jsonb WHERE $4::integer = 1
  ON CONFLICT (collection, doc_id) DO NOTHING
  RETURNING version
), op AS (
  INSERT INTO collab_ops (collection, doc_id, version, operation)
  SELECT $1, $2, s.version - 1, $7::jsonb
    FROM (SELECT version FROM updated UNION ALL SELECT version FROM created) AS s
  RETURNING version
)
SELECT count(*)::integer AS committed FROM op`;

/**
 * ShareDB 7 database adapter on PostgreSQL (tables of migration 090_collab_ops.sql).
 *
 * Every query is a single statement on the pool, needing nothing from an earlier one (no named
 * prepared statements, no advisory locks, no SET/LISTEN), so it works through PgBouncer in
 * transaction mode. A commit is durable when its callback says so: ShareDB acknowledges an op
 * only after that. Committed ops this instance has seen are kept (bounded) for transforms. Queries are not supported (the
 * collab service opens documents by id); ShareDB answers a query with its "not implemented"
 * error. Document data is jsonb, so text containing U+0000 or a lone surrogate cannot be stored
 * (PostgreSQL refuses it and the commit fails): such files are not OT documents.
 */
export class PostgresDB extends ShareDB.DB {
  readonly #pool: pg.Pool;
  readonly #recentOps = new RecentOps();
  #closed = false;

  constructor(pool: pg.Pool) {
    super();
    this.#pool = pool;
  }

  /** Marks the adapter closed; the pool belongs to the caller and stays open. */
  override close(callback?: (err?: Error) => void): void {
    this.#closed = true;
    if (callback) process.nextTick(callback);
  }

  /** Commits `op` and the snapshot it produced if nobody committed that version first. */
  override commit(
    collection: string,
    id: string,
    op: CollabOp,
    snapshot: CollabSnapshot,
    _options: unknown,
    callback: Callback<boolean>,
  ): void {
    settle(this.#commit(collection, id, op, snapshot), callback);
  }

  override getSnapshot(
    collection: string,
    id: string,
    fields: Record<string, unknown> | null,
    options: { metadata?: boolean } | null,
    callback: Callback<CollabSnapshot>,
  ): void {
    const metadata = wantsMetadata(fields, options);
    settle(
      this.#snapshots(collection, [id], metadata).then((map) => map[id]!),
      callback,
    );
  }

  override getSnapshotBulk(
    collection: string,
    ids: string[],
    fields: Record<string, unknown> | null,
    options: { metadata?: boolean } | null,
    callback: Callback<Record<string, CollabSnapshot>>,
  ): void {
    settle(this.#snapshots(collection, ids, wantsMetadata(fields, options)), callback);
  }

  /** Ops with versions in [from, to) (to = null: up to the latest), oldest first. */
  override getOps(
    collection: string,
    id: string,
    from: number | null,
    to: number | null,
    options: { metadata?: boolean } | null,
    callback: Callback<CollabOp[]>,
  ): void {
    settle(
      this.#ops(collection, { [id]: from }, to == null ? null : { [id]: to }, options).then(
        (map) => map[id] ?? [],
      ),
      callback,
    );
  }

  override getOpsToSnapshot(
    collection: string,
    id: string,
    from: number | null,
    snapshot: CollabSnapshot | number,
    options: { metadata?: boolean } | null,
    callback: Callback<CollabOp[]>,
  ): void {
    const to = typeof snapshot === 'number' ? snapshot : snapshot.v;
    this.getOps(collection, id, from, to, options, callback);
  }

  override getOpsBulk(
    collection: string,
    fromMap: Record<string, number | null>,
    toMap: Record<string, number | null> | null,
    options: { metadata?: boolean } | null,
    callback: Callback<Record<string, CollabOp[]>>,
  ): void {
    settle(this.#ops(collection, fromMap, toMap, options), callback);
  }

  /**
   * The version at which an op with the same src and seq was committed (a resent op), or
   * undefined. Looks only at ops still in the log (see {@link compact}).
   */
  override getCommittedOpVersion(
    collection: string,
    id: string,
    snapshot: CollabSnapshot,
    op: CollabOp,
    _options: unknown,
    callback: Callback<number | undefined>,
  ): void {
    settle(this.#committedOpVersion(collection, id, snapshot.v, op), callback);
  }

  /**
   * Deletes the ops of one document below `keepFromVersion` (op log compaction). The snapshot is
   * untouched. Only the caller knows what is safe: ShareDB needs the ops from a client's base
   * version to transform (and to recognise a resent op) whatever it submits, so keep every op
   * an unacknowledged or reconnecting client may still be based on (e.g. compact to the version
   * checkpointed into the files service a while ago, minus a margin). A client based on a
   * compacted version gets ShareDB's "missing ops" error and must fetch the document again.
   * @returns the number of ops deleted.
   */
  async compact(collection: string, id: string, keepFromVersion: number): Promise<number> {
    this.#checkOpen();
    this.#recentOps.forget(collection, id, keepFromVersion);
    const result = await this.#pool.query(
      'DELETE FROM collab_ops WHERE collection = $1 AND doc_id = $2 AND version < $3',
      [collection, id, keepFromVersion],
    );
    return result.rowCount ?? 0;
  }

  async #commit(
    collection: string,
    id: string,
    op: CollabOp,
    snapshot: CollabSnapshot,
  ): Promise<boolean> {
    this.#checkOpen();
    if (snapshot.v !== op.v + 1) return false;
    try {
      const operation = JSON.stringify(op);
      const { rows } = await this.#pool.query<{ committed: number }>(COMMIT_SQL, [
        collection,
        id,
        snapshot.type,
        snapshot.v,
        snapshot.type == null ? null : JSON.stringify(snapshot.data ?? null),
        snapshot.m == null ? null : JSON.stringify(snapshot.m),
        operation,
      ]);
      const committed = rows[0]!.committed === 1;
      if (committed) this.#recentOps.put(collection, id, op.v, operation);
      return committed;
    } catch (err) {
      const code = (err as { code?: string }).code;
      // Someone else took this version (or we crossed them): ShareDB transforms and retries.
      if (code === UNIQUE_VIOLATION || code === DEADLOCK_DETECTED) return false;
      throw err;
    }
  }

  async #snapshots(
    collection: string,
    ids: string[],
    metadata: boolean,
  ): Promise<Record<string, CollabSnapshot>> {
    this.#checkOpen();
    const results: Record<string, CollabSnapshot> = Object.create(null);
    if (ids.length === 0) return results;
    const { rows } = await this.#pool.query<SnapshotRow>(
      `SELECT doc_id, version, doc_type, data${metadata ? ', metadata' : ''}
         FROM collab_snapshots WHERE collection = $1 AND doc_id = ANY($2::text[])`,
      [collection, ids],
    );
    for (const row of rows) {
      results[row.doc_id] = {
        id: row.doc_id,
        v: row.version,
        type: row.doc_type,
        data: row.doc_type == null ? undefined : row.data,
        m: metadata && row.doc_type != null ? (row.metadata ?? null) : null,
      };
    }
    for (const id of ids) {
      results[id] ??= { id, v: 0, type: null, data: undefined, m: null };
    }
    return results;
  }

  async #ops(
    collection: string,
    fromMap: Record<string, number | null>,
    toMap: Record<string, number | null> | null,
    options: { metadata?: boolean } | null,
  ): Promise<Record<string, CollabOp[]>> {
    this.#checkOpen();
    const metadata = Boolean(options?.metadata);
    const ids = Object.keys(fromMap);
    const results: Record<string, CollabOp[]> = Object.create(null);
    if (ids.length === 0) return results;
    const froms = ids.map((id) => fromMap[id] ?? 0);
    const tos = ids.map((id) => toMap?.[id] ?? null);
    if (ids.length === 1 && tos[0] != null) {
      // The transform before a commit asks for the ops since the client's base version:
      // usually ops this instance committed a moment ago.
      const cached = this.#recentOps.range(collection, ids[0]!, froms[0]!, tos[0]);
      if (cached) {
        if (!metadata) for (const op of cached) delete op.m;
        results[ids[0]!] = cached;
        return results;
      }
    }
    const { rows } = await this.#pool.query<OpRow>(
      `SELECT o.doc_id, o.version, o.operation
         FROM unnest($2::text[], $3::integer[], $4::integer[]) AS r(doc_id, from_v, to_v)
         JOIN collab_ops o
           ON o.collection = $1 AND o.doc_id = r.doc_id
          AND o.version >= r.from_v AND (r.to_v IS NULL OR o.version < r.to_v)
        ORDER BY o.doc_id, o.version`,
      [collection, ids, froms, tos],
    );
    for (const id of ids) results[id] = [];
    for (const row of rows) {
      const op = row.operation;
      op.v = row.version;
      this.#recentOps.put(collection, row.doc_id, row.version, JSON.stringify(op));
      if (!metadata) delete op.m;
      results[row.doc_id]!.push(op);
    }
    // A hole means compacted ops: answering with fewer ops would let a client think it is up
    // to date, so it is an error, as in ShareDB's MemoryDB.
    const openEnded: string[] = [];
    ids.forEach((id, i) => {
      const ops = results[id]!;
      const from = froms[i]!;
      const to = tos[i];
      const contiguous = ops.every((op, k) => op.v === from + k);
      if (!contiguous || (to != null && to > from && ops.length !== to - from)) {
        throw missingOps(collection, id, from, to ?? null);
      }
      if (to == null && ops.length === 0) openEnded.push(id);
    });
    if (openEnded.length > 0) {
      // Nothing from `from` on: fine if `from` is the current version, a hole if it is older.
      const { rows: versions } = await this.#pool.query<{ doc_id: string; version: number }>(
        `SELECT doc_id, version FROM collab_snapshots
          WHERE collection = $1 AND doc_id = ANY($2::text[])`,
        [collection, openEnded],
      );
      for (const { doc_id: id, version } of versions) {
        const from = fromMap[id] ?? 0;
        if (from < version) throw missingOps(collection, id, from, null);
      }
    }
    return results;
  }

  async #committedOpVersion(
    collection: string,
    id: string,
    before: number,
    op: CollabOp,
  ): Promise<number | undefined> {
    this.#checkOpen();
    if (op.src == null || op.seq == null) return undefined;
    const { rows } = await this.#pool.query<{ version: number }>(
      `SELECT version FROM collab_ops
        WHERE collection = $1 AND doc_id = $2 AND version < $3
          AND operation->>'src' = $4 AND operation->'seq' = $5::jsonb
        ORDER BY version DESC LIMIT 1`,
      [collection, id, before, op.src, JSON.stringify(op.seq)],
    );
    return rows[0]?.version;
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error('PostgresDB is closed');
  }
}

/**
 * Makes one backend submit the ops of a document one at a time (others on the same document
 * wait in the `submit` middleware until the previous submit has ended).
 *
 * ShareDB does not queue submits: every concurrent submit to a document reads the snapshot,
 * only one commit per version wins, and each loser starts over (read, fetch ops, transform,
 * commit). With n people typing on one document that is ~n²/2 database round trips per round;
 * queued, it is n. Concurrency then remains only between instances. Register it before any
 * middleware that could submit to the same document from inside a submit (that would wait on
 * itself).
 */
export function queueSubmitsPerDocument(backend: ShareDB): void {
  const tails = new Map<string, Promise<void>>();
  const releases = new WeakMap<object, () => void>();
  backend.use('submit', (request, next) => {
    const key = `${request.collection}\u0000${request.id}`;
    const previous = tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => done);
    tails.set(key, tail);
    releases.set(request, () => {
      release();
      if (tails.get(key) === tail) tails.delete(key);
    });
    void previous.then(() => next());
  });
  backend.on('submitRequestEnd', (_err, request) => {
    releases.get(request)?.();
    releases.delete(request);
  });
}

/**
 * The latest ops of recently used documents, as committed (JSON). A committed op never changes
 * (its version is its primary key), so serving one from here is always right; only which
 * versions exist is asked of the database. Bounded: 256 ops per document, 1,000 documents.
 */
class RecentOps {
  readonly #docs = new Map<string, Map<number, string>>();

  put(collection: string, id: string, version: number, operation: string): void {
    const key = `${collection}\u0000${id}`;
    let ops = this.#docs.get(key);
    if (ops) this.#docs.delete(key); // re-inserted below: most recently used last
    ops ??= new Map();
    this.#docs.set(key, ops);
    ops.set(version, operation);
    if (ops.size > 256) ops.delete(Math.min(...ops.keys()));
    if (this.#docs.size > 1000) this.#docs.delete(this.#docs.keys().next().value!);
  }

  /** Drops the ops below `version` (compacted: the database no longer has them either). */
  forget(collection: string, id: string, version: number): void {
    const ops = this.#docs.get(`${collection}\u0000${id}`);
    for (const v of ops?.keys() ?? []) if (v < version) ops!.delete(v);
  }

  /** Fresh copies of the ops in [from, to), or undefined unless every one is here. */
  range(collection: string, id: string, from: number, to: number): CollabOp[] | undefined {
    const ops = this.#docs.get(`${collection}\u0000${id}`);
    if (!ops || to - from > ops.size) return undefined;
    const result: CollabOp[] = [];
    for (let v = from; v < to; v++) {
      const json = ops.get(v);
      if (json === undefined) return undefined;
      result.push({ ...(JSON.parse(json) as CollabOp), v });
    }
    return result;
  }
}

/** The ShareDB database of the collab service on the server's pool. */
export function createPostgresShareDb(pool: pg.Pool): PostgresDB {
  return new PostgresDB(pool);
}

function wantsMetadata(
  fields: Record<string, unknown> | null,
  options: { metadata?: boolean } | null,
): boolean {
  return Boolean(fields?.$submit || options?.metadata);
}

function missingOps(collection: string, id: string, from: number, to: number | null): Error {
  return new Error(
    `Missing ops of ${collection}/${id} from version ${from}${to == null ? '' : ` to ${to}`} (compacted)`,
  );
}

/** Calls a ShareDB-style callback outside the promise chain, so its exceptions stay its own. */
function settle<T>(promise: Promise<T>, callback: Callback<T>): void {
  promise.then(
    (value) => process.nextTick(callback, null, value),
    (err: unknown) =>
      process.nextTick(callback, err instanceof Error ? err : new Error(String(err))),
  );
}
