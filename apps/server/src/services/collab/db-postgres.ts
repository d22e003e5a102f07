import type pg from 'pg';
import ShareDB from 'sharedb';
import { Recently } from './recently.ts';

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
/** How long a document's committed tip stays in memory after its last commit. */
const IDLE_CHAIN_MS = 5000;
/** How long a document whose versions another instance took has every submit read first. */
const CONTENDED_MS = 10_000;
const DEADLOCK_DETECTED = '40P01';

// One statement, so one implicit transaction and no session state (PgBouncer's transaction mode
// is fine), for a batch of consecutive ops of one document (group commit: one WAL flush for all
// of them): the snapshot moves from the first op's base version $7 to the last op's result $4
// (or is created, when $7 = 0) and the ops at $7, $7 + 1, … are inserted only if it did. A
// concurrent writer at the same version either finds the row already moved on (the UPDATE
// re-checks its WHERE after the row lock) or the row already inserted (ON CONFLICT DO NOTHING),
// so exactly one commit per version succeeds; the ops' primary key backs that up (a duplicate
// is a unique violation, answered as "not committed").
const COMMIT_SQL = `
WITH updated AS (
  UPDATE collab_snapshots
     SET doc_type = $3, version = $4, data = $5::jsonb, metadata = $6::jsonb
   WHERE collection = $1 AND doc_id = $2 AND version = $7
  RETURNING version
), created AS (
  INSERT INTO collab_snapshots (collection, doc_id, doc_type, version, data, metadata)
  SELECT $1, $2, $3, $4, $5::jsonb, $6::jsonb WHERE $7::integer = 0
  ON CONFLICT (collection, doc_id) DO NOTHING
  RETURNING version
), op AS (
  INSERT INTO collab_ops (collection, doc_id, version, operation)
  SELECT $1, $2, $7 + o.i::integer - 1, o.operation
    FROM jsonb_array_elements($8::jsonb) WITH ORDINALITY AS o(operation, i)
   WHERE EXISTS (SELECT 1 FROM updated UNION ALL SELECT 1 FROM created)
  RETURNING version
)
SELECT count(*)::integer AS committed FROM op`;

/** An op handed to `commit`, waiting for its batch's transaction. */
interface Staged {
  op: CollabOp;
  /** The op's version (its base), as staged: a refused op is put back, `op.v` with it. */
  version: number;
  /** The snapshot right after the op (a copy: ShareDB's own object moves on). */
  snapshot: CollabSnapshot;
  /** The op as stored (JSON). */
  operation: string;
  done: (err: Error | null, committed?: boolean) => void;
}

/**
 * One document's ops accepted by `commit` and not yet committed: a batch in its transaction and
 * the ops that arrived meanwhile, which the next transaction commits together.
 */
interface Chain {
  collection: string;
  id: string;
  /** The snapshot after the last staged op: what the next submit to this document builds on. */
  tip: CollabSnapshot;
  inFlight: Staged[];
  gathering: Staged[];
  /** After a batch failed with an error: one op per transaction, to find the one at fault. */
  single: boolean;
}

/** How the adapter learns about, and tells, the other instances writing a document. */
export interface InstanceCoordination {
  /** Whether other instances published ops of the document lately. */
  othersWrite(collection: string, id: string): boolean;
  /** This instance lost a race for one of the document's versions. */
  lostRace(collection: string, id: string): void;
}

/**
 * What `queueSubmitsPerDocument` gives the adapter so that submits may be pipelined: `staged`
 * releases the document's next submit once an op waits for its commit; `restore` puts an op
 * back as its client sent it (base version, untransformed) before ShareDB retries it.
 */
export interface SubmitPipeline {
  staged(op: CollabOp): void;
  restore(op: CollabOp): boolean;
  /**
   * The op whose turn it is on the document (submits to one are serialised, retries included:
   * see `again`), if `agentCustom` is its connection's.
   */
  submitting(collection: string, id: string, agentCustom: unknown): CollabOp | undefined;
  /**
   * Resolves when a refused op may be retried: at once if its submit still has the document's
   * turn, otherwise once its turn comes again in the document's queue. ShareDB retries a refused
   * op at once and outside the queue, where every chain staged meanwhile refuses it again: with
   * ops arriving back to back it was retried, ever more expensively, for as long as they came.
   */
  again(op: CollabOp): Promise<void>;
}

/**
 * ShareDB 7 database adapter on PostgreSQL (tables of migration 090_collab_ops.sql).
 *
 * Every query is a single statement on the pool, needing nothing from an earlier one (no named
 * prepared statements, no advisory locks, no SET/LISTEN), so it works through PgBouncer in
 * transaction mode. A commit is durable when its callback says so: ShareDB acknowledges an op
 * only after that. Committed ops this instance has seen are kept (bounded) for transforms.
 * Queries are not supported (the collab service opens documents by id); ShareDB answers a query
 * with its "not implemented" error. Document data is jsonb, so text containing U+0000 or a lone
 * surrogate cannot be stored (PostgreSQL refuses it and the commit fails): such files are not OT
 * documents.
 *
 * Group commit (with {@link queueSubmitsPerDocument}): while one transaction of a document is
 * in flight, the document's next submits build on the staged ops (`getSnapshot` for a submit
 * answers the chain's tip, `getOps` its staged ops) and wait; the next transaction commits them
 * all. Each op is still acknowledged only after its own transaction. When a transaction commits
 * nothing (another instance took the version), every op staged on it is put back as its client
 * sent it and ShareDB retries it from the database's state.
 */
export class PostgresDB extends ShareDB.DB {
  readonly #pool: pg.Pool;
  readonly #recentOps = new RecentOps();
  readonly #chains = new Map<string, Chain>();
  /** Documents whose versions another instance took lately. */
  readonly #contended = new Recently<string>(CONTENDED_MS);
  /** What the other instances do to a document (see {@link coordinate}). */
  #others: InstanceCoordination = { othersWrite: () => false, lostRace: () => undefined };
  /** The staged ops a tip handed to a submit was built from (see getSnapshot). */
  readonly #stagedUnder = new WeakMap<object, Staged[]>();
  /** The chain a tip handed to a submit came from (ShareDB commits that same object). */
  readonly #servedFrom = new WeakMap<object, Chain>();
  #pipeline: SubmitPipeline | undefined;
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
    if (this.#closed) return settle(Promise.reject(new Error('PostgresDB is closed')), callback);
    if (snapshot.v !== op.v + 1) return this.#retry(op, callback);
    const key = docKey(collection, id);
    let chain = this.#chains.get(key);
    const builtOn = this.#servedFrom.get(snapshot);
    if (chain && chain.inFlight.length + chain.gathering.length === 0 && builtOn !== chain) {
      // An idle chain this op did not build on: the database decides (its tip may be stale).
      this.#chains.delete(key);
      chain = undefined;
    }
    if (
      (builtOn && builtOn !== chain) ||
      (chain && (!this.#pipeline || snapshot.v !== chain.tip.v + 1))
    ) {
      // Built on a chain that was refused meanwhile (its versions went to another instance),
      // or on a state the chain has moved past: ShareDB transforms and retries.
      this.#contend(collection, id);
      return this.#retry(op, callback);
    }
    const staged: Staged = {
      op,
      version: op.v,
      snapshot: copySnapshot(snapshot),
      operation: JSON.stringify(op),
      done: (err, committed) => process.nextTick(callback, err, committed),
    };
    if (!chain) {
      chain = { collection, id, tip: staged.snapshot, inFlight: [], gathering: [], single: false };
      this.#chains.set(key, chain);
    }
    chain.tip = staged.snapshot;
    chain.gathering.push(staged);
    if (chain.inFlight.length === 0) void this.#flush(key, chain);
    this.#pipeline?.staged(op);
  }

  /**
   * Lets submits to a document build on ops still waiting for their commit (see the class
   * comment); set by {@link queueSubmitsPerDocument}, which serialises them per document.
   */
  pipeline(hooks: SubmitPipeline): void {
    this.#pipeline = hooks;
  }

  /**
   * Connects the adapter with the other instances (through pub/sub): submits to documents they
   * write too are checked against the database before they build on the staged tip, as for 10 s
   * after another instance took one of a document's versions here; and a race lost here is told
   * to them. Without the check the instance that gets ahead commits back to back and the
   * other's submits lose every race: its ops stop reaching the first, which then never checks.
   */
  coordinate(hooks: InstanceCoordination): void {
    this.#others = hooks;
  }

  override getSnapshot(
    collection: string,
    id: string,
    fields: Record<string, unknown> | null,
    options: { metadata?: boolean } | null,
    callback: Callback<CollabSnapshot>,
  ): void {
    const metadata = wantsMetadata(fields, options);
    const key = docKey(collection, id);
    // A submit builds on the ops already staged for the document (group commit).
    const chain = fields?.$submit ? this.#chains.get(key) : undefined;
    if (chain && this.#pipeline && !this.#closed) {
      const tip = copySnapshot(chain.tip);
      const staged = [...chain.inFlight, ...chain.gathering];
      const base = staged[0]?.version ?? tip.v;
      const agentCustom = (options as { agentCustom?: unknown } | null)?.agentCustom;
      const submitted = this.#pipeline.submitting(collection, id, agentCustom)?.v;
      if (
        typeof submitted === 'number' &&
        submitted <= base &&
        !this.#contended.has(key) &&
        !this.#others.othersWrite(collection, id)
      ) {
        // The op's client knows the state the chain starts from or an older one: committed
        // history, which the tip builds on. So the op transforms over ops that lead to the
        // tip's text, and no database read sits in every submit of the queue (with 32 typists
        // its tail latency was those reads). If another instance took one of the chain's
        // versions meanwhile, the chain's next transaction commits nothing and every op staged
        // on it, this one too, is put back and retried from the database's state. While
        // instances share a document (its clients on several instances) the read goes on: it
        // finds the race before ops are staged on a doomed chain, and leaves the others' submits
        // a chance between ours.
        this.#stagedUnder.set(tip, staged);
        this.#servedFrom.set(tip, chain);
        return process.nextTick(callback, null, tip);
      }
      // A client past the chain's start saw our batch in flight just committed, or another
      // instance's op at one of the chain's versions: that op leaves the database at or below
      // the tip with other text, and an op based on it must not be applied to this tip. So the
      // tip only while the database is where the chain starts or just past the batch in flight
      // with our op at its base (a batch commits whole); otherwise the database's snapshot
      // (the chain will be refused: its versions are taken).
      const inFlightEnd = base + chain.inFlight.length;
      const answer = this.#pool
        .query<{ version: number; ours: boolean | null }>(
          `SELECT s.version, o.operation = $4::jsonb AS ours
             FROM collab_snapshots s
             LEFT JOIN collab_ops o
               ON o.collection = s.collection AND o.doc_id = s.doc_id AND o.version = $3
            WHERE s.collection = $1 AND s.doc_id = $2`,
          [collection, id, base, staged[0]?.operation ?? null],
        )
        .then(async ({ rows }) => {
          const version = rows[0]?.version ?? 0;
          if (version === base || (version === inFlightEnd && rows[0]?.ours === true)) {
            // The ops under this tip, for the transform that follows, even if the chain is
            // refused meanwhile (then the commit is refused too, and ShareDB retries).
            this.#stagedUnder.set(tip, staged);
            this.#servedFrom.set(tip, chain);
            return tip;
          }
          this.#contend(collection, id);
          return (await this.#snapshots(collection, [id], metadata))[id]!;
        });
      return settle(answer, callback);
    }
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
    // Committed ops only: staged ones are served to the submit whose snapshot they are under.
    this.#opsWithStaged(collection, id, from, to, options, [], callback);
  }

  /** getOps, serving versions at or above the first staged op from `staged`. */
  #opsWithStaged(
    collection: string,
    id: string,
    from: number | null,
    to: number | null,
    options: { metadata?: boolean } | null,
    staged: Staged[],
    callback: Callback<CollabOp[]>,
  ): void {
    const base = staged[0]?.version;
    if (base !== undefined && to != null && to > base) {
      // A submit transforms over ops staged for the same transaction (group commit).
      const start = from ?? 0;
      const pending = staged
        .filter((s) => s.version >= start && s.version < to)
        .map((s) => {
          const op = { ...(JSON.parse(s.operation) as CollabOp), v: s.version };
          if (!options?.metadata) delete op.m;
          return op;
        });
      const before =
        start < base
          ? this.#ops(collection, { [id]: start }, { [id]: base }, options)
          : Promise.resolve({ [id]: [] as CollabOp[] });
      settle(
        before.then((map) => [...(map[id] ?? []), ...pending]),
        callback,
      );
      return;
    }
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
    const staged = typeof snapshot === 'object' ? this.#stagedUnder.get(snapshot) : undefined;
    if (staged) this.#opsWithStaged(collection, id, from, to, options, staged, callback);
    else this.getOps(collection, id, from, to, options, callback);
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

  /** Commits the chain's gathered ops in one transaction, then the ones that came meanwhile. */
  async #flush(key: string, chain: Chain): Promise<void> {
    const batch = chain.single ? chain.gathering.splice(0, 1) : chain.gathering.splice(0);
    chain.inFlight = batch;
    let committed: boolean;
    try {
      committed = await this.#write(chain.collection, chain.id, batch);
    } catch (err) {
      if (batch.length > 1) {
        // Which op is at fault (e.g. text PostgreSQL cannot store)? One per transaction.
        chain.gathering.unshift(...batch);
        chain.single = true;
        return this.#flush(key, chain);
      }
      this.#chains.delete(key);
      batch[0]!.done(err instanceof Error ? err : new Error(String(err)));
      this.#refuse(chain.gathering); // built on the op that failed
      return;
    }
    if (!committed) {
      this.#chains.delete(key);
      this.#contend(chain.collection, chain.id);
      this.#refuse([...batch, ...chain.gathering]);
      return;
    }
    for (const s of batch) {
      this.#recentOps.put(chain.collection, chain.id, s.version, s.operation);
      s.done(null, true);
    }
    chain.inFlight = [];
    if (chain.gathering.length > 0) return this.#flush(key, chain);
    if (!this.#pipeline) {
      this.#chains.delete(key);
      return;
    }
    // Kept a while, empty: its tip is the committed state, which submits in progress were
    // given; dropped once the document is quiet.
    setTimeout(() => {
      if (this.#chains.get(key) === chain && chain.inFlight.length + chain.gathering.length === 0) {
        this.#chains.delete(key);
      }
    }, IDLE_CHAIN_MS).unref();
  }

  /** Notes that another instance took one of the document's versions. */
  #contend(collection: string, id: string): void {
    this.#others.lostRace(collection, id);
    this.#contended.mark(docKey(collection, id));
  }

  /** Answers "not committed" when the op's turn comes: ShareDB retries it from the database. */
  #retry(op: CollabOp, callback: Callback<boolean>): void {
    this.#pipeline?.restore(op);
    settle(
      (this.#pipeline?.again(op) ?? Promise.resolve()).then(() => false),
      callback,
    );
  }

  /** {@link #retry} for ops staged on a chain that committed nothing, in their order. */
  #refuse(staged: Staged[]): void {
    for (const s of staged) {
      this.#pipeline?.restore(s.op);
      void (this.#pipeline?.again(s.op) ?? Promise.resolve()).then(() => s.done(null, false));
    }
  }

  /** One statement: the ops (consecutive versions) and the snapshot after the last. */
  async #write(collection: string, id: string, batch: Staged[]): Promise<boolean> {
    const last = batch[batch.length - 1]!.snapshot;
    try {
      const { rows } = await this.#pool.query<{ committed: number }>(COMMIT_SQL, [
        collection,
        id,
        last.type,
        last.v,
        last.type == null ? null : JSON.stringify(last.data ?? null),
        last.m == null ? null : JSON.stringify(last.m),
        batch[0]!.version,
        `[${batch.map((s) => s.operation).join(',')}]`,
      ]);
      return rows[0]!.committed === batch.length;
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
        if (from >= version) continue;
        // Either compacted, or committed between the two reads (a commit moves the snapshot and
        // inserts its ops in one statement): read again up to that version, which throws only
        // if they are really gone. A subscribe racing a commit got "missing ops" here before.
        results[id] = (await this.#ops(collection, { [id]: from }, { [id]: version }, options))[
          id
        ]!;
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

/** What the queue keeps of a ShareDB SubmitRequest. */
interface QueuedRequest {
  collection: string;
  id: string;
  op: object;
  ops: unknown[];
  agent: { custom: unknown };
}

/**
 * Makes one backend submit the ops of a document one at a time (others on the same document
 * wait in the `submit` middleware until the previous one is staged for its commit).
 *
 * ShareDB does not queue submits: every concurrent submit to a document reads the snapshot,
 * only one commit per version wins, and each loser starts over (read, fetch ops, transform,
 * commit). With n people typing on one document that is ~n²/2 database round trips per round;
 * queued, it is n. With the PostgreSQL adapter the queue moves on as soon as an op is staged
 * (not committed): the next submit builds on it and the adapter commits the ops that gathered
 * meanwhile in one transaction (group commit, see {@link PostgresDB}); each is acknowledged
 * after its own commit. Concurrency then remains only between instances. Register it before
 * any middleware that could submit to the same document from inside a submit (that would wait
 * on itself).
 */
export function queueSubmitsPerDocument(backend: ShareDB): void {
  const tails = new Map<string, Promise<void>>();
  const releases = new WeakMap<object, () => void>();
  /** Each queued op as its client sent it, and its request (see SubmitPipeline.restore). */
  const sent = new WeakMap<object, { request: QueuedRequest; original: CollabOp }>();
  /** The request whose turn it is, per document (until it is staged or ends). */
  const current = new Map<string, QueuedRequest>();
  /** Queues `request` on its document; resolves when its turn comes (it has the slot then). */
  const take = (key: string, request: QueuedRequest): Promise<void> => {
    const previous = tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => done);
    tails.set(key, tail);
    const releaseOnce = () => {
      release();
      if (current.get(key) === request) current.delete(key);
      if (tails.get(key) === tail) tails.delete(key);
    };
    releases.set(request, releaseOnce);
    releases.set(request.op, releaseOnce);
    return previous.then(() => void current.set(key, request));
  };
  backend.use('submit', (request, next) => {
    const key = docKey(request.collection, request.id);
    const queued = request as unknown as QueuedRequest;
    sent.set(request.op, {
      request: queued,
      original: structuredClone({ ...request.op, m: undefined }) as CollabOp,
    });
    void take(key, queued).then(() => next());
  });
  backend.on('submitRequestEnd', (_err, request) => {
    releases.get(request)?.();
    releases.delete(request);
  });
  if (backend.db instanceof PostgresDB) {
    backend.db.pipeline({
      staged: (op) => releases.get(op)?.(),
      restore: (op) => {
        const entry = sent.get(op);
        if (!entry) return false;
        const fields = op as Record<string, unknown>;
        const original = entry.original as Record<string, unknown>;
        for (const field of ['v', 'op', 'create', 'del']) {
          if (field in original) fields[field] = structuredClone(original[field]);
          else delete fields[field];
        }
        // The ops it was transformed over: ShareDB sends them to the client with the ack.
        entry.request.ops = [];
        return true;
      },
      again: (op) => {
        const request = sent.get(op)?.request;
        if (!request) return Promise.resolve();
        const key = docKey(request.collection, request.id);
        return current.get(key) === request ? Promise.resolve() : take(key, request);
      },
      submitting: (collection, id, agentCustom) => {
        const key = docKey(collection, id);
        const turn = current.get(key);
        return turn && turn.agent.custom === agentCustom ? (turn.op as CollabOp) : undefined;
      },
    });
  }
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

function docKey(collection: string, id: string): string {
  return `${collection}\u0000${id}`;
}

/** A copy a caller may change (ShareDB applies ops to the snapshot it is given, in place). */
function copySnapshot(snapshot: CollabSnapshot): CollabSnapshot {
  return {
    id: snapshot.id,
    v: snapshot.v,
    type: snapshot.type,
    data: typeof snapshot.data === 'object' ? structuredClone(snapshot.data) : snapshot.data,
    m: snapshot.m == null ? snapshot.m : structuredClone(snapshot.m),
  };
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
