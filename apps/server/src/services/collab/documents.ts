import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type ShareDB from 'sharedb';
import type Agent from 'sharedb/lib/agent.js';
import { AppError } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import type { FileContent, FileSource, FilesService } from '../files/index.ts';
import { textDiffOp } from './diff.ts';
import { COLLAB_TYPE_URI, type TextOp } from './type.ts';

/** An error as ShareDB sends it to a client: `{code, message}`, no stack. */
export interface CollabError {
  code: string;
  message: string;
}

/** What a missing document, a missing file and someone else's project all answer. */
export const NOT_FOUND: CollabError = { code: 'not_found', message: 'Document not found' };

/** Who made a server-side op: the files service's source and the user behind it. */
export interface Author {
  source: FileSource;
  userId?: string | null;
}

interface Row {
  file_version: number;
  doc_version: number | null;
}

interface Snapshot {
  v: number;
  type: string | null;
  data?: unknown;
}

/** Ops kept below the latest checkpoint at least (see FileDocuments.#compactBelow). */
const KEEP_OPS = 1000;

/** First key of the documents' advisory locks (`pg_try_advisory_lock(key1, hashtext(…))`). */
const LOCK_KEY = 0x636f6c6c; // 'coll'

/**
 * The `src` of an op the server submits for another writer: `vf:<source>:<userId|->:<nonce>`.
 * Clients see it as the third argument of a document's `op` event (the author of the change).
 */
export function writerSrc(author: Author): string {
  return `vf:${author.source}:${author.userId ?? '-'}:${randomUUID()}`;
}

/**
 * The file-backed side of collaboration: documents are created from files, other writers'
 * changes become ops, and document text is written back to files (flush). Every step that
 * reads and then changes a document against its file runs under the document's advisory lock
 * (one instance at a time), and records in `collab_files` which file version the document has
 * absorbed — and, when known exactly, at which document version its text equals that file.
 */
export class FileDocuments {
  readonly #backend: ShareDB;
  readonly #agent: () => Agent;
  readonly #files: FilesService;
  readonly #pool: pg.Pool;
  readonly #log: Logger;
  readonly #maxBytes: number;
  readonly #compact?: (projectId: string, path: string, keepFromVersion: number) => Promise<number>;
  /** Asks for a flush of a document later (the scheduler in server.ts). */
  readonly #scheduleFlush: (projectId: string, path: string) => void;

  constructor(deps: {
    backend: ShareDB;
    agent: () => Agent;
    files: FilesService;
    pool: pg.Pool;
    log: Logger;
    maxBytes: number;
    /** Op log compaction (the PostgreSQL adapter's `compact`), run after checkpoints. */
    compact?: (projectId: string, path: string, keepFromVersion: number) => Promise<number>;
    scheduleFlush: (projectId: string, path: string) => void;
  }) {
    this.#compact = deps.compact;
    this.#backend = deps.backend;
    this.#agent = deps.agent;
    this.#files = deps.files;
    this.#pool = deps.pool;
    this.#log = deps.log;
    this.#maxBytes = deps.maxBytes;
    this.#scheduleFlush = deps.scheduleFlush;
  }

  // ───────────────────────── opening ─────────────────────────

  /**
   * Makes sure the document of a file exists before a client fetches or subscribes to it:
   * created from the file's stored content the first time; brought up to date with the file
   * when another writer changed it while nobody had it open.
   * @throws CollabError not_found (no such file), invalid_request (binary), too_large.
   */
  async ensure(projectId: string, path: string): Promise<void> {
    const snap = await this.fetch(projectId, path);
    if (snap.type) {
      const row = await this.#row(projectId, path);
      const file = await this.#readFile(projectId, path);
      if (row && file && file.version <= row.file_version) {
        // Ops not yet in the file (e.g. the instance that took them died before flushing).
        if (row.doc_version !== snap.v) this.#scheduleFlush(projectId, path);
        return;
      }
      await this.sync(projectId, path, { known: true });
      if (!file) throw NOT_FOUND;
      this.#checkEditable(file);
      if (!(await this.fetch(projectId, path)).type) throw NOT_FOUND;
      return;
    }
    const file = await this.#readFile(projectId, path);
    if (!file) throw NOT_FOUND;
    this.#checkEditable(file);
    // The record goes first: a document never exists without one (nothing would flush it or
    // bring other writers' changes into it). A crash before the create leaves a record without
    // a document (the next open creates it); a crash after it, a record whose doc_version is
    // unknown (null): the next open schedules a flush, which writes the text back if needed.
    await this.#record(projectId, path, file.version, null);
    try {
      await this.submit(
        projectId,
        path,
        { v: snap.v, create: { type: COLLAB_TYPE_URI, data: file.content } },
        { source: 'collab' },
      );
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_DOC_ALREADY_CREATED') return;
      throw err;
    }
    await this.#record(projectId, path, file.version, snap.v + 1);
  }

  // ───────────────────────── other writers ─────────────────────────

  /**
   * Brings an existing document up to date with its file after another writer (API, assistant,
   * restore, import, container) changed it: the difference becomes one op authored by that
   * writer. Three-way when the document's text at a known version equals the file's previous
   * absorbed version (then concurrent typing is kept, transformed by ShareDB); otherwise the
   * current text is diffed against the file. A deleted, binary or oversized file deletes the
   * document. Retries while another instance holds the document.
   */
  async sync(projectId: string, path: string, opts: { known?: boolean } = {}): Promise<void> {
    // Most changed files have no document (a zip import, a template): one indexed read.
    if (!opts.known && !(await this.#row(projectId, path))) return;
    await this.#withLockRetrying(projectId, path, () => this.#syncLocked(projectId, path));
  }

  /** Deletes the document of a path that was deleted or moved away (clients get `del`). */
  async remove(projectId: string, path: string, author: Author): Promise<void> {
    if (!(await this.#row(projectId, path))) return;
    await this.#withLockRetrying(projectId, path, async () => {
      await this.#deleteDoc(projectId, path, author);
    });
  }

  async #syncLocked(projectId: string, path: string): Promise<void> {
    const snap = await this.fetch(projectId, path);
    if (!snap.type) {
      await this.#forget(projectId, path);
      return;
    }
    const file = await this.#readFile(projectId, path);
    if (!file) {
      await this.#deleteDoc(projectId, path, { source: 'user' });
      return;
    }
    const author: Author = { source: file.source, userId: file.updatedBy ?? null };
    if (file.isBinary || Buffer.byteLength(file.content) > this.#maxBytes) {
      await this.#deleteDoc(projectId, path, author);
      return;
    }
    const row = await this.#row(projectId, path);
    if (row && file.version <= row.file_version) return;
    if (row && file.source === 'collab') {
      // A flush whose record was lost (its instance died): the document has that text already.
      await this.#record(projectId, path, file.version, null);
      this.#scheduleFlush(projectId, path);
      return;
    }
    let base: { text: string; v: number } = { text: String(snap.data ?? ''), v: snap.v };
    if (row && row.doc_version !== null && row.doc_version <= snap.v) {
      try {
        const old = await this.#files.readVersion(projectId, path, row.file_version);
        if (old.encoding === 'utf-8' && old.operation !== 'delete') {
          base = { text: old.content, v: row.doc_version };
        }
      } catch {
        // No such version any more: diff against the current text.
      }
    }
    let docVersion: number | null;
    const op = textDiffOp(base.text, file.content);
    if (op.length === 0) {
      docVersion = base.v;
    } else {
      let committed: number;
      let at = base.v;
      try {
        committed = await this.submit(projectId, path, { v: base.v, op }, author);
      } catch (err) {
        if (base.v === snap.v) throw err;
        // The three-way base is unusable (e.g. the op log was compacted): two-way, now.
        const now = await this.fetch(projectId, path);
        at = now.v;
        committed = await this.submit(
          projectId,
          path,
          { v: now.v, op: textDiffOp(String(now.data ?? ''), file.content) },
          author,
        );
      }
      // Untransformed: the document's text right after the op is exactly the file's.
      docVersion = committed === at ? committed + 1 : null;
    }
    await this.#record(projectId, path, file.version, docVersion);
    if (docVersion === null) this.#scheduleFlush(projectId, path);
  }

  // ───────────────────────── flushing ─────────────────────────

  /**
   * Writes the document's current text to the files service (a new file version, source
   * `collab`, author the last editor) unless the file already holds it. Only one instance
   * flushes a document at a time (advisory lock), only if the document moved past what the file
   * holds, and only over the file version the document has absorbed (`baseVersion`): a file
   * changed meanwhile by another writer is merged into the document first.
   * @returns false when it should be tried again later (another instance holds the document,
   *   or the file changed underneath).
   */
  async flush(projectId: string, path: string, editor: string | null): Promise<boolean> {
    const result = await this.#withLock(projectId, path, async () => {
      const snap = await this.fetch(projectId, path);
      const row = await this.#row(projectId, path);
      if (!snap.type || !row) return true;
      if (row.doc_version === snap.v) return true;
      const file = await this.#readFile(projectId, path);
      if (!file) return true; // the delete event removes the document
      let fileVersion = row.file_version;
      if (file.version !== row.file_version) {
        if (file.source !== 'collab') {
          await this.#syncLocked(projectId, path);
          return false;
        }
        fileVersion = file.version;
      }
      const text = String(snap.data ?? '');
      if (text === file.content && file.version === fileVersion) {
        // Nothing to write (e.g. an open after a crash between create and record).
        await this.#record(projectId, path, file.version, snap.v);
        return true;
      }
      try {
        const outcome = await this.#files.write(projectId, path, text, {
          source: 'collab',
          userId: editor,
          baseVersion: fileVersion,
        });
        await this.#record(projectId, path, outcome.version, snap.v);
        await this.#compactBelow(projectId, path, row.doc_version, snap.v);
      } catch (err) {
        if (err instanceof AppError && err.code === 'conflict') return false;
        if (err instanceof AppError && err.code === 'too_large') {
          this.#log.warn({ projectId, path }, 'collab document too large to write back');
          return true;
        }
        throw err;
      }
      return true;
    });
    return result ?? false;
  }

  /**
   * Checkpointed: the op log keeps the ops since the previous checkpoint and at least
   * {@link KEEP_OPS} more (what reconnecting clients and three-way merges are based on); older
   * ones go. A client based on a compacted version gets "missing ops" and fetches again.
   */
  async #compactBelow(
    projectId: string,
    path: string,
    previous: number | null,
    now: number,
  ): Promise<void> {
    if (!this.#compact || previous === null) return;
    const keepFrom = Math.min(previous, now - KEEP_OPS);
    if (keepFrom <= 0) return;
    try {
      await this.#compact(projectId, path, keepFrom);
    } catch (err) {
      this.#log.warn({ err, projectId, path }, 'collab op log not compacted');
    }
  }

  // ───────────────────────── ShareDB access ─────────────────────────

  /** The current snapshot, read as the server. */
  fetch(projectId: string, path: string): Promise<Snapshot> {
    return new Promise((resolve, reject) => {
      this.#backend.fetch(this.#agent(), projectId, path, (err, snapshot) => {
        if (err) reject(err);
        else resolve(snapshot as unknown as Snapshot);
      });
    });
  }

  /**
   * Submits an op as the server, for `author` (its `src` names them, see {@link writerSrc}).
   * @returns the version the op was committed at (after transformation).
   */
  submit(
    projectId: string,
    path: string,
    op: { v: number; op?: TextOp; create?: { type: string; data: string }; del?: true },
    author: Author,
  ): Promise<number> {
    const src = writerSrc(author);
    return new Promise((resolve, reject) => {
      this.#backend.submit(
        this.#agent(),
        projectId,
        path,
        { ...op, src, seq: 1 } as never,
        null,
        (err, _ops, request) => {
          if (err) reject(err);
          else resolve((request?.op as { v: number } | undefined)?.v ?? op.v);
        },
      );
    });
  }

  // ───────────────────────── helpers ─────────────────────────

  async #deleteDoc(projectId: string, path: string, author: Author): Promise<void> {
    const snap = await this.fetch(projectId, path);
    if (snap.type) {
      try {
        await this.submit(projectId, path, { v: snap.v, del: true }, author);
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_DOC_DOES_NOT_EXIST') throw err;
      }
    }
    await this.#forget(projectId, path);
  }

  async #forget(projectId: string, path: string): Promise<void> {
    await this.#pool.query('DELETE FROM collab_files WHERE project_id = $1 AND path = $2', [
      projectId,
      path,
    ]);
  }

  #checkEditable(file: FileContent): void {
    if (file.isBinary) {
      throw {
        code: 'invalid_request',
        message: `${file.path} is a binary file; only text files can be edited together`,
      } satisfies CollabError;
    }
    if (Buffer.byteLength(file.content) > this.#maxBytes) {
      throw {
        code: 'too_large',
        message: `${file.path} is larger than ${this.#maxBytes} bytes; it cannot be edited together`,
      } satisfies CollabError;
    }
  }

  async #readFile(projectId: string, path: string): Promise<FileContent | undefined> {
    try {
      return await this.#files.read(projectId, path);
    } catch (err) {
      if (err instanceof AppError && (err.code === 'not_found' || err.code === 'invalid_request')) {
        return undefined;
      }
      throw err;
    }
  }

  async #row(projectId: string, path: string): Promise<Row | undefined> {
    const { rows } = await this.#pool.query<Row>(
      'SELECT file_version, doc_version FROM collab_files WHERE project_id = $1 AND path = $2',
      [projectId, path],
    );
    return rows[0];
  }

  async #record(
    projectId: string,
    path: string,
    fileVersion: number,
    docVersion: number | null,
  ): Promise<void> {
    await this.#pool.query(
      `INSERT INTO collab_files (project_id, path, file_version, doc_version, flushed_at)
       VALUES ($1, $2, $3, $4, now())
       ON CONFLICT (project_id, path) DO UPDATE
         SET file_version = EXCLUDED.file_version, doc_version = EXCLUDED.doc_version,
             updated_at = now()
         WHERE collab_files.file_version <= EXCLUDED.file_version`,
      [projectId, path, fileVersion, docVersion],
    );
  }

  /** Runs `fn` holding the document's advisory lock; undefined when another session holds it. */
  async #withLock<T>(
    projectId: string,
    path: string,
    fn: () => Promise<T>,
  ): Promise<T | undefined> {
    const client = await this.#pool.connect();
    const key = `${projectId}:${path}`;
    try {
      const { rows } = await client.query<{ ok: boolean }>(
        'SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok',
        [LOCK_KEY, key],
      );
      if (!rows[0]?.ok) return undefined;
      try {
        return await fn();
      } finally {
        await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [LOCK_KEY, key]);
      }
    } finally {
      client.release();
    }
  }

  async #withLockRetrying(projectId: string, path: string, fn: () => Promise<void>): Promise<void> {
    for (let attempt = 0; attempt < 40; attempt++) {
      const done = await this.#withLock(projectId, path, async () => {
        await fn();
        return true;
      });
      if (done) return;
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
    }
    this.#log.warn({ projectId, path }, 'collab document stayed locked; change not applied now');
  }
}
