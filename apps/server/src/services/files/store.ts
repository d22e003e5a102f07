import { sql, type Generated, type Kysely, type Selectable } from 'kysely';
import type { Db } from '../../db/index.ts';

interface ProjectFilesTable {
  id: Generated<string>;
  project_id: string;
  file_path: string;
  file_name: string;
  file_type: string | null;
  mime_type: string | null;
  content: string;
  content_hash: string;
  encoding: string;
  size_bytes: number;
  line_count: number;
  is_binary: boolean;
  is_generated: Generated<boolean>;
  version: number;
  last_source: string;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  created_by: string | null;
  updated_by: string | null;
}

interface FileVersionsTable {
  id: Generated<string>;
  project_id: string;
  file_path: string;
  version: number;
  content: string;
  content_hash: string;
  encoding: string;
  size_bytes: number;
  line_count: number;
  source: string;
  operation: string;
  created_by: string | null;
  created_at: Generated<Date>;
  moved_path: string | null;
}

interface FileSearchTable {
  project_id: string;
  file_path: string;
  content_hash: string;
  words: string;
}

type FilesTables = {
  project_files: ProjectFilesTable;
  file_versions: FileVersionsTable;
  file_search: FileSearchTable;
};

/** A current file without its content. */
export type FileMetaRow = Pick<
  Selectable<ProjectFilesTable>,
  | 'id'
  | 'file_path'
  | 'file_type'
  | 'mime_type'
  | 'content_hash'
  | 'encoding'
  | 'size_bytes'
  | 'line_count'
  | 'is_binary'
  | 'version'
  | 'last_source'
  | 'created_at'
  | 'updated_at'
  | 'created_by'
  | 'updated_by'
>;
export type FileRow = FileMetaRow & { content: string };
export type VersionMetaRow = Omit<Selectable<FileVersionsTable>, 'content' | 'id' | 'project_id'>;

/** A deleted file: its tombstone, and the version a restore brings back. */
export interface DeletedRow {
  file_path: string;
  version: number;
  created_at: Date;
  created_by: string | null;
  source: string;
  size_bytes: number | string;
  restore_version: number;
}
export type VersionRow = VersionMetaRow & { content: string };

const metaColumns = [
  'id',
  'file_path',
  'file_type',
  'mime_type',
  'content_hash',
  'encoding',
  'size_bytes',
  'line_count',
  'is_binary',
  'version',
  'last_source',
  'created_at',
  'updated_at',
  'created_by',
  'updated_by',
] as const;

const versionMetaColumns = [
  'file_path',
  'version',
  'content_hash',
  'encoding',
  'size_bytes',
  'line_count',
  'source',
  'operation',
  'created_by',
  'created_at',
  'moved_path',
] as const;

/** Values of a new or rewritten file. */
export interface FileValues {
  path: string;
  name: string;
  type: string;
  mime: string;
  content: string;
  hash: string;
  encoding: string;
  size: number;
  lines: number;
  isBinary: boolean;
  version: number;
  source: string;
  userId: string | null;
}

/** Values of one version. */
export interface VersionValues {
  path: string;
  version: number;
  content: string;
  hash: string;
  encoding: string;
  size: number;
  lines: number;
  source: string;
  operation: 'write' | 'delete' | 'move' | 'restore';
  userId: string | null;
  movedPath?: string;
}

function fileRow(projectId: string, v: FileValues) {
  return {
    project_id: projectId,
    file_path: v.path,
    file_name: v.name,
    file_type: v.type,
    mime_type: v.mime,
    content: v.content,
    content_hash: v.hash,
    encoding: v.encoding,
    size_bytes: v.size,
    line_count: v.lines,
    is_binary: v.isBinary,
    version: v.version,
    last_source: v.source,
    created_by: v.userId,
    updated_by: v.userId,
  };
}

function versionRow(projectId: string, v: VersionValues) {
  return {
    project_id: projectId,
    file_path: v.path,
    version: v.version,
    content: v.content,
    content_hash: v.hash,
    encoding: v.encoding,
    size_bytes: v.size,
    line_count: v.lines,
    source: v.source,
    operation: v.operation,
    created_by: v.userId,
    moved_path: v.movedPath ?? null,
  };
}

/** `file_path COLLATE "C"`: byte order, matching idx_project_files_path_c. */
const pathC = sql<string>`file_path COLLATE "C"`;

/**
 * SQL for project_files, file_versions and file_search. Construct it over a transaction to
 * make several calls atomic.
 */
export class FilesStore {
  readonly #db: Kysely<FilesTables>;

  constructor(db: Db) {
    this.#db = db.withTables<FilesTables>();
  }

  /** Contents of several old versions ((path, version) pairs), in one query. */
  async versionContents(
    projectId: string,
    entries: { path: string; version: number }[],
  ): Promise<{ file_path: string; version: number; content: string; encoding: string }[]> {
    if (entries.length === 0) return [];
    const result = await sql<{
      file_path: string;
      version: number;
      content: string;
      encoding: string;
    }>`
      SELECT v.file_path, v.version, v.content, v.encoding
      FROM file_versions v
      JOIN unnest(${entries.map((e) => e.path)}::text[], ${entries.map((e) => e.version)}::int[])
        AS w(file_path, version) ON v.file_path = w.file_path AND v.version = w.version
      WHERE v.project_id = ${projectId}`.execute(this.#db);
    return result.rows;
  }

  /**
   * Copies files into another (empty) project in two INSERT … SELECT statements: from the
   * source's current files, or from the given versions. Each copy starts at version 1, with a
   * version row of its own (source `import`). Returns how many files were copied.
   */
  async copyFiles(
    fromProjectId: string,
    toProjectId: string,
    entries: { path: string; version: number }[] | undefined,
    userId: string | null,
  ): Promise<number> {
    const source = entries
      ? sql`SELECT v.file_path, v.content, v.content_hash, v.encoding, v.size_bytes, v.line_count,
              f.file_name, f.file_type, f.mime_type, f.is_binary
            FROM file_versions v
            JOIN unnest(${entries.map((e) => e.path)}::text[], ${entries.map((e) => e.version)}::int[])
              AS w(file_path, version) ON v.file_path = w.file_path AND v.version = w.version
            LEFT JOIN (SELECT file_path, file_name, file_type, mime_type, is_binary
                FROM project_files WHERE project_id = ${fromProjectId}) f
              ON f.file_path = v.file_path AND f.is_binary = (v.encoding = 'base64')
            WHERE v.project_id = ${fromProjectId} AND v.operation <> 'delete'`
      : sql`SELECT file_path, content, content_hash, encoding, size_bytes, line_count,
              file_name, file_type, mime_type, is_binary
            FROM project_files WHERE project_id = ${fromProjectId}`;
    const inserted = await sql<{ n: number }>`
      WITH src AS (${source}),
      ins AS (
        INSERT INTO project_files (project_id, file_path, file_name, file_type, mime_type, content,
          content_hash, encoding, size_bytes, line_count, is_binary, version, last_source,
          created_by, updated_by)
        SELECT ${toProjectId}, file_path,
          coalesce(file_name, regexp_replace(file_path, '^.*/', '')), file_type, mime_type,
          content, content_hash, encoding, size_bytes, line_count,
          coalesce(is_binary, encoding = 'base64'), 1, 'import',
          ${userId}, ${userId}
        FROM src
        RETURNING file_path, content, content_hash, encoding, size_bytes, line_count
      ),
      ver AS (
        INSERT INTO file_versions (project_id, file_path, version, content, content_hash, encoding,
          size_bytes, line_count, source, operation, created_by)
        SELECT ${toProjectId}, file_path, 1, content, content_hash, encoding, size_bytes,
          line_count, 'import', 'write', ${userId}
        FROM ins
        RETURNING 1
      )
      SELECT count(*)::int AS n FROM ver`.execute(this.#db);
    return inserted.rows[0]?.n ?? 0;
  }

  /**
   * Serialises file changes of one project until the transaction ends (every instance), and
   * names the actor for the activity trigger.
   */
  async beginChange(projectId: string, userId: string | null, source: string): Promise<void> {
    await sql`SELECT pg_advisory_xact_lock(hashtextextended(${'vaporform.files:' + projectId}, 0)),
      set_config('vaporform.actor_id', ${userId ?? ''}, true),
      set_config('vaporform.source', ${source}, true)`.execute(this.#db);
  }

  findMeta(projectId: string, filePath: string): Promise<FileMetaRow | undefined> {
    return this.#db
      .selectFrom('project_files')
      .select(metaColumns)
      .where('project_id', '=', projectId)
      .where('file_path', '=', filePath)
      .executeTakeFirst();
  }

  findFile(projectId: string, filePath: string): Promise<FileRow | undefined> {
    return this.#db
      .selectFrom('project_files')
      .select([...metaColumns, 'content'])
      .where('project_id', '=', projectId)
      .where('file_path', '=', filePath)
      .executeTakeFirst();
  }

  /** Current content hashes of `paths` (those that exist). */
  async hashes(projectId: string, paths?: string[]): Promise<Map<string, string>> {
    if (paths && paths.length === 0) return new Map();
    let query = this.#db
      .selectFrom('project_files')
      .select(['file_path', 'content_hash'])
      .where('project_id', '=', projectId);
    if (paths) query = query.where('file_path', 'in', paths);
    const rows = await query.execute();
    return new Map(rows.map((r) => [r.file_path, r.content_hash]));
  }

  /** Files, path order (bytes); under `dir/` only when given. */
  list(projectId: string, dir?: string): Promise<FileMetaRow[]> {
    let query = this.#db
      .selectFrom('project_files')
      .select(metaColumns)
      .where('project_id', '=', projectId);
    if (dir !== undefined)
      query = query.where(sql<boolean>`${pathC} >= ${dir + '/'} AND ${pathC} < ${dir + '0'}`);
    return query.orderBy(pathC).execute();
  }

  /** The first file that is `filePath`'s ancestor directory or lies under `filePath/`. */
  async treeConflict(
    projectId: string,
    filePath: string,
    ancestors: string[],
  ): Promise<string | undefined> {
    const row = await this.#db
      .selectFrom('project_files')
      .select('file_path')
      .where('project_id', '=', projectId)
      .where((eb) =>
        eb.or([
          ...(ancestors.length ? [eb('file_path', 'in', ancestors)] : []),
          sql<boolean>`(${pathC} >= ${filePath + '/'} AND ${pathC} < ${filePath + '0'})`,
        ]),
      )
      .limit(1)
      .executeTakeFirst();
    return row?.file_path;
  }

  /** Current files among `paths` (no content). */
  findMetas(projectId: string, paths: string[]): Promise<FileMetaRow[]> {
    if (paths.length === 0) return Promise.resolve([]);
    return this.#db
      .selectFrom('project_files')
      .select(metaColumns)
      .where('project_id', '=', projectId)
      .where('file_path', 'in', paths)
      .execute();
  }

  /**
   * A file that clashes with creating `paths`: one at an ancestor directory (`ancestors`), or
   * one under any of `paths` (one index probe per path).
   */
  async treeConflicts(
    projectId: string,
    paths: string[],
    ancestors: string[],
  ): Promise<string | undefined> {
    if (ancestors.length) {
      const row = await this.#db
        .selectFrom('project_files')
        .select('file_path')
        .where('project_id', '=', projectId)
        .where('file_path', 'in', ancestors)
        .limit(1)
        .executeTakeFirst();
      if (row) return row.file_path;
    }
    const under = await sql<{ file_path: string }>`
      SELECT x.file_path FROM unnest(${paths}::text[]) AS p(path)
      CROSS JOIN LATERAL (
        SELECT f.file_path FROM project_files f
        WHERE f.project_id = ${projectId}
          AND ${sql.raw('f.file_path COLLATE "C"')} >= p.path || '/'
          AND ${sql.raw('f.file_path COLLATE "C"')} < p.path || '0'
        LIMIT 1
      ) x LIMIT 1`.execute(this.#db);
    return under.rows[0]?.file_path;
  }

  /** The highest version each of `paths` ever had (absent: never used). */
  async maxVersions(projectId: string, paths: string[]): Promise<Map<string, number>> {
    if (paths.length === 0) return new Map();
    const rows = await this.#db
      .selectFrom('file_versions')
      .select(['file_path', (eb) => eb.fn.max('version').as('v')])
      .where('project_id', '=', projectId)
      .where('file_path', 'in', paths)
      .groupBy('file_path')
      .execute();
    return new Map(rows.map((r) => [r.file_path, Number(r.v)]));
  }

  /** Inserts many new files (in chunks); returns them. */
  async insertFiles(projectId: string, values: FileValues[]): Promise<FileMetaRow[]> {
    const out: FileMetaRow[] = [];
    for (let i = 0; i < values.length; i += 500) {
      out.push(
        ...(await this.#db
          .insertInto('project_files')
          .values(values.slice(i, i + 500).map((v) => fileRow(projectId, v)))
          .returning(metaColumns)
          .execute()),
      );
    }
    return out;
  }

  /** Inserts many versions (in chunks). */
  async insertVersions(projectId: string, versions: VersionValues[]): Promise<void> {
    for (let i = 0; i < versions.length; i += 500) {
      await this.#db
        .insertInto('file_versions')
        .values(versions.slice(i, i + 500).map((v) => versionRow(projectId, v)))
        .execute();
    }
  }

  /** The version after the newest one this path ever had (1 for a path never used). */
  async nextVersion(projectId: string, filePath: string): Promise<number> {
    const row = await this.#db
      .selectFrom('file_versions')
      .select((eb) => eb.fn.max('version').as('v'))
      .where('project_id', '=', projectId)
      .where('file_path', '=', filePath)
      .executeTakeFirst();
    return Number(row?.v ?? 0) + 1;
  }

  insertFile(projectId: string, v: FileValues): Promise<FileMetaRow> {
    return this.#db
      .insertInto('project_files')
      .values(fileRow(projectId, v))
      .returning(metaColumns)
      .executeTakeFirstOrThrow();
  }

  /**
   * Updates many file rows (by id), one statement per chunk of 500: a restore of 1,000 files
   * is two UPDATEs (and two runs of the per-statement stats trigger), not 1,000.
   */
  async updateFiles(rows: { id: string; values: FileValues }[]): Promise<FileMetaRow[]> {
    const out: FileMetaRow[] = [];
    for (let i = 0; i < rows.length; i += 500) {
      const chunk = rows.slice(i, i + 500);
      const col = <T>(f: (r: { id: string; values: FileValues }) => T) => chunk.map(f);
      const result = await sql<FileMetaRow>`
        UPDATE project_files f SET
          file_type = u.file_type, mime_type = u.mime_type, content = u.content,
          content_hash = u.content_hash, encoding = u.encoding, size_bytes = u.size_bytes,
          line_count = u.line_count, is_binary = u.is_binary, version = u.version,
          last_source = u.last_source, updated_by = u.updated_by
        FROM unnest(
          ${col((r) => r.id)}::uuid[], ${col((r) => r.values.type)}::text[],
          ${col((r) => r.values.mime)}::text[], ${col((r) => r.values.content)}::text[],
          ${col((r) => r.values.hash)}::text[], ${col((r) => r.values.encoding)}::text[],
          ${col((r) => r.values.size)}::bigint[], ${col((r) => r.values.lines)}::int[],
          ${col((r) => r.values.isBinary)}::boolean[], ${col((r) => r.values.version)}::int[],
          ${col((r) => r.values.source)}::text[], ${col((r) => r.values.userId)}::uuid[]
        ) AS u(id, file_type, mime_type, content, content_hash, encoding, size_bytes,
               line_count, is_binary, version, last_source, updated_by)
        WHERE f.id = u.id
        RETURNING ${sql.join(metaColumns.map((c) => sql.ref(`f.${c}`)))}`.execute(this.#db);
      out.push(...result.rows);
    }
    return out;
  }

  updateFile(fileId: string, v: FileValues): Promise<FileMetaRow> {
    return this.#db
      .updateTable('project_files')
      .set({
        file_type: v.type,
        mime_type: v.mime,
        content: v.content,
        content_hash: v.hash,
        encoding: v.encoding,
        size_bytes: v.size,
        line_count: v.lines,
        is_binary: v.isBinary,
        version: v.version,
        last_source: v.source,
        updated_by: v.userId,
      })
      .where('id', '=', fileId)
      .returning(metaColumns)
      .executeTakeFirstOrThrow();
  }

  /** Renames a file row (its content stays), giving it `version` at the new path. */
  moveFile(
    fileId: string,
    to: { path: string; name: string; type: string; mime: string; version: number },
    source: string,
    userId: string | null,
  ): Promise<FileMetaRow> {
    return this.#db
      .updateTable('project_files')
      .set({
        file_path: to.path,
        file_name: to.name,
        file_type: to.type,
        mime_type: to.mime,
        version: to.version,
        last_source: source,
        updated_by: userId,
      })
      .where('id', '=', fileId)
      .returning(metaColumns)
      .executeTakeFirstOrThrow();
  }

  async deleteFile(fileId: string): Promise<void> {
    await this.#db.deleteFrom('project_files').where('id', '=', fileId).execute();
  }

  async insertVersion(projectId: string, v: VersionValues): Promise<void> {
    await this.#db.insertInto('file_versions').values(versionRow(projectId, v)).execute();
  }

  /** Records the current content of file `fileId` (just moved) as a version, without reading it out. */
  async insertVersionFromFile(
    fileId: string,
    v: { source: string; userId: string | null; movedFrom: string },
  ): Promise<void> {
    await sql`INSERT INTO file_versions (project_id, file_path, version, content, content_hash,
        encoding, size_bytes, line_count, source, operation, created_by, moved_path)
      SELECT project_id, file_path, version, content, content_hash, encoding, size_bytes,
        line_count, ${v.source}, 'move', ${v.userId}, ${v.movedFrom}
      FROM project_files WHERE id = ${fileId}`.execute(this.#db);
  }

  /** Bytes used by the project's current files. */
  async usage(projectId: string): Promise<number> {
    const row = await this.#db
      .selectFrom('project_files')
      .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('size_bytes'), sql<number>`0`).as('n'))
      .where('project_id', '=', projectId)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Versions of a path, newest first. */
  history(
    projectId: string,
    filePath: string,
    opts: { limit: number; before?: number },
  ): Promise<VersionMetaRow[]> {
    let query = this.#db
      .selectFrom('file_versions')
      .select(versionMetaColumns)
      .where('project_id', '=', projectId)
      .where('file_path', '=', filePath);
    if (opts.before !== undefined) query = query.where('version', '<', opts.before);
    return query.orderBy('version', 'desc').limit(opts.limit).execute();
  }

  /**
   * Paths whose history ends with a deletion that was not a move and that have no current
   * file, most recently deleted first: the tombstone, and the version before it (the content
   * a restore brings back) with its size.
   */
  async deleted(projectId: string, limit: number): Promise<DeletedRow[]> {
    const result = await sql<DeletedRow>`
      SELECT d.file_path, d.version, d.created_at, d.created_by, d.source, p.size_bytes,
             p.version AS restore_version
      FROM (
        SELECT DISTINCT ON (v.file_path) v.file_path, v.version, v.operation, v.moved_path,
               v.created_at, v.created_by, v.source
        FROM file_versions v
        WHERE v.project_id = ${projectId}
        ORDER BY v.file_path, v.version DESC
      ) d
      JOIN file_versions p
        ON p.project_id = ${projectId} AND p.file_path = d.file_path AND p.version = d.version - 1
      WHERE d.operation = 'delete' AND d.moved_path IS NULL
        AND p.operation <> 'delete'
        AND NOT EXISTS (
          SELECT 1 FROM project_files f WHERE f.project_id = ${projectId} AND f.file_path = d.file_path
        )
      ORDER BY d.created_at DESC, d.file_path
      LIMIT ${limit}`.execute(this.#db);
    return result.rows;
  }

  version(projectId: string, filePath: string, version: number): Promise<VersionRow | undefined> {
    return this.#db
      .selectFrom('file_versions')
      .select([...versionMetaColumns, 'content'])
      .where('project_id', '=', projectId)
      .where('file_path', '=', filePath)
      .where('version', '=', version)
      .executeTakeFirst();
  }

  /** Up to `limit` files with content after `afterPath` (path order), for streaming archives. */
  page(projectId: string, afterPath: string | undefined, limit: number): Promise<FileRow[]> {
    let query = this.#db
      .selectFrom('project_files')
      .select([...metaColumns, 'content'])
      .where('project_id', '=', projectId);
    if (afterPath !== undefined) query = query.where(sql<boolean>`${pathC} > ${afterPath}`);
    return query.orderBy(pathC).limit(limit).execute();
  }

  /**
   * Files whose search words are missing or stale (their hash differs), with their sizes: among
   * `paths`, or all of the project's files. Path order, after `after`, at most `limit`.
   */
  async staleSearch(
    projectId: string,
    paths: string[] | undefined,
    after: string | undefined,
    limit: number,
  ): Promise<{ path: string; size: number }[]> {
    const only = paths ? sql`AND f.file_path = ANY(${paths}::text[])` : sql``;
    const from = after === undefined ? sql`` : sql`AND f.file_path COLLATE "C" > ${after}`;
    const result = await sql<{ path: string; size: string }>`
      SELECT f.file_path AS path, f.size_bytes AS size FROM project_files f
      LEFT JOIN file_search s ON s.project_id = f.project_id AND s.file_path = f.file_path
      WHERE f.project_id = ${projectId} ${only} ${from}
        AND s.content_hash IS DISTINCT FROM f.content_hash
      ORDER BY f.file_path COLLATE "C" LIMIT ${limit}`.execute(this.#db);
    return result.rows.map((r) => ({ path: r.path, size: Number(r.size) }));
  }

  /** Contents (empty for binary files) and hashes of `paths`, for indexing. */
  async searchSources(
    projectId: string,
    paths: string[],
  ): Promise<{ path: string; hash: string; text: string }[]> {
    const rows = await this.#db
      .selectFrom('project_files')
      .select(['file_path', 'content_hash', 'is_binary', 'content'])
      .where('project_id', '=', projectId)
      .where('file_path', 'in', paths)
      .execute();
    return rows.map((r) => ({
      path: r.file_path,
      hash: r.content_hash,
      text: r.is_binary ? '' : r.content,
    }));
  }

  /**
   * Stores search words (lexemes) per file, only where the file still has the hash they were
   * computed from (a concurrent change wins).
   */
  async upsertSearch(
    projectId: string,
    entries: { path: string; hash: string; words: string[] }[],
  ): Promise<void> {
    if (entries.length === 0) return;
    await sql`INSERT INTO file_search (project_id, file_path, content_hash, words)
      SELECT f.project_id, f.file_path, f.content_hash,
        array_to_tsvector(ARRAY(SELECT jsonb_array_elements_text(x -> 'words')))
      FROM jsonb_array_elements(${JSON.stringify(entries)}::jsonb) AS x
      JOIN project_files f ON f.project_id = ${projectId} AND f.file_path = x ->> 'path'
        AND f.content_hash = x ->> 'hash'
      ON CONFLICT (project_id, file_path) DO UPDATE
        SET content_hash = excluded.content_hash, words = excluded.words`.execute(this.#db);
  }

  /** Removes search rows of files that no longer exist (among `paths`, or all). */
  async dropVanishedSearch(projectId: string, paths?: string[]): Promise<void> {
    const only = paths ? sql`AND s.file_path = ANY(${paths}::text[])` : sql``;
    await sql`DELETE FROM file_search s
      WHERE s.project_id = ${projectId} ${only}
        AND NOT EXISTS (SELECT 1 FROM project_files f
          WHERE f.project_id = s.project_id AND f.file_path = s.file_path)`.execute(this.#db);
  }

  /** Paths whose path contains `needle` (case-insensitive), path order. */
  async searchPaths(projectId: string, needle: string, limit: number): Promise<string[]> {
    const pattern = `%${needle.replace(/[\\%_]/g, '\\$&')}%`;
    const rows = await this.#db
      .selectFrom('file_search')
      .select('file_path')
      .where('project_id', '=', projectId)
      .where('file_path', 'ilike', pattern)
      .orderBy(sql`length(file_path)`)
      .orderBy(pathC)
      .limit(limit)
      .execute();
    return rows.map((r) => r.file_path);
  }

  /**
   * Lines of text files whose words match `tsquery` (tsquery input syntax, see prefixQuery): the
   * lines containing `phrase` (case-insensitive), or in a file without such a line, those
   * containing one of `words`. Files with phrase lines first, then path and line order.
   */
  async searchLines(
    projectId: string,
    tsquery: string,
    phrase: string,
    words: string[],
    opts: { maxFiles: number; maxLines: number; maxLinesPerFile: number },
  ): Promise<{ path: string; line: number; text: string }[]> {
    const like = (s: string) => `%${s.replace(/[\\%_]/g, '\\$&')}%`;
    const patterns = [like(phrase), ...words.map(like)];
    const result = await sql<{ path: string; line: string; text: string }>`
      WITH hits AS (
        SELECT s.file_path FROM file_search s
        WHERE s.project_id = ${projectId} AND s.words @@ ${tsquery}::tsquery
        ORDER BY s.file_path COLLATE "C" LIMIT ${opts.maxFiles}
      ), matched AS (
        SELECT h.file_path AS path, l.n AS line, l.text, l.text ILIKE ${like(phrase)} AS exact
        FROM hits h
        JOIN project_files f ON f.project_id = ${projectId} AND f.file_path = h.file_path
          AND NOT f.is_binary
        CROSS JOIN LATERAL string_to_table(f.content, E'\n') WITH ORDINALITY AS l(text, n)
        WHERE l.text ILIKE ANY (${patterns}::text[])
      ), flagged AS (
        SELECT *, bool_or(exact) OVER (PARTITION BY path) AS file_exact FROM matched
      ), kept AS (
        SELECT path, line, text, file_exact,
          row_number() OVER (PARTITION BY path ORDER BY line) AS nth
        FROM flagged WHERE exact OR NOT file_exact
      )
      SELECT path, line, left(text, 300) AS text FROM kept WHERE nth <= ${opts.maxLinesPerFile}
      ORDER BY file_exact DESC, path COLLATE "C", line LIMIT ${opts.maxLines}`.execute(this.#db);
    return result.rows.map((r) => ({ path: r.path, line: Number(r.line), text: r.text }));
  }
}
