import type { Readable } from 'node:stream';
import type { Owner } from '../../common/anchored-dir.ts';
import { AppError, errors } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import type { Db } from '../../db/index.ts';
import type { Metrics } from '../monitoring/index.ts';
import type { ProjectsService } from '../projects/index.ts';
import type { EventBus } from '../../common/bus.ts';
import { publishProjectEvent } from '../../common/project-events.ts';
import {
  decodeContent,
  emptyHash,
  fileType,
  sha256,
  storeBytes,
  storedBytes,
  type Encoding,
  type StoredContent,
} from './content.ts';
import { baseName, checkFilePath, parentDirs, pathProblem } from './paths.ts';
import { SearchIndexer } from './search-indexer.ts';
import {
  FilesStore,
  type FileMetaRow,
  type FileValues,
  type VersionMetaRow,
  type VersionValues,
} from './store.ts';
import { PollingWatcher } from './polling-watcher.ts';
import { WorkspaceWatcher, type DiskChangeHandler, type DiskWatcher } from './watcher.ts';
import { prefixQuery, queryWords } from './words.ts';
import { Workspaces } from './workspace.ts';
import { buildZip, readZip, type ArchiveEntry, type ZipLimits } from './zip.ts';

/** Who or what changed a file (file_versions.source). */
export type FileSource = 'user' | 'claude' | 'collab' | 'container' | 'import' | 'template';

export const fileSources: readonly FileSource[] = [
  'user',
  'claude',
  'collab',
  'container',
  'import',
  'template',
];

/** What a history entry did to its path. */
export type FileOperation = 'write' | 'delete' | 'move' | 'restore';

/** The author of a change: the source, and the user behind it when there is one. */
export interface Actor {
  source: FileSource;
  userId?: string | null;
}

/** A current file without its content (API.md `files[]`). */
export interface FileMeta {
  path: string;
  size: number;
  /** Kind of file: typescript, json, image, binary, text… */
  type: string;
  mimeType: string;
  encoding: Encoding;
  isBinary: boolean;
  version: number;
  contentHash: string;
  lines: number;
  source: FileSource;
  createdAt: string;
  updatedAt: string;
  updatedBy?: string;
}

/** A current file with its content (UTF-8 text, or base64 for binary files). */
export interface FileContent extends FileMeta {
  content: string;
}

/** One entry of a path's history. */
export interface FileVersionMeta {
  version: number;
  operation: FileOperation;
  contentHash: string;
  size: number;
  lines: number;
  encoding: Encoding;
  source: FileSource;
  createdAt: string;
  createdBy?: string;
  /** For a `move`: where the file came from. */
  movedFrom?: string;
  /** For a `delete` caused by a move: where the file went. */
  movedTo?: string;
}

/** A deleted file that can be restored. */
export interface DeletedFile {
  path: string;
  /** The deletion (the path's last version). */
  version: number;
  /** The version before the deletion: what a restore brings back. */
  restoreVersion: number;
  /** Bytes of that version. */
  size: number;
  /** Who deleted it (user, claude, container…). */
  source: FileSource;
  deletedAt: string;
  deletedBy?: string;
}

/** An old version with its content. */
export interface FileVersionContent extends FileVersionMeta {
  path: string;
  content: string;
}

/**
 * One change of a changeset. `content` is text (or base64 with `encoding: 'base64'`) or bytes.
 * `baseVersion` makes the change conditional: the path's current version must be exactly it
 * (0: the path must not exist), else the whole changeset fails with conflict.
 * `delete` and `move` of a path that is a directory apply to every file under it.
 */
export type FileChange =
  | {
      op: 'write';
      path: string;
      content: string | Uint8Array;
      encoding?: Encoding;
      baseVersion?: number;
    }
  | { op: 'delete'; path: string; baseVersion?: number }
  | { op: 'move'; from: string; to: string; baseVersion?: number };

/** What one change did. `changed` is false for a write of the content already there. */
export interface ChangeOutcome {
  operation: FileOperation;
  path: string;
  /** For moves: the old path. */
  from?: string;
  version: number;
  changed: boolean;
  /** True when the write created the path. */
  created?: boolean;
  /** The file afterwards (absent for deletions). */
  file?: FileMeta;
}

/** A search hit: a line of a file (`kind: 'content'`), or a file whose path matches (`line` 0). */
export interface SearchResult {
  path: string;
  line: number;
  preview: string;
  kind: 'content' | 'path';
}

/** The `file_changed` event published on `project:<id>` for every change, from any source. */
export interface FileChangedEvent {
  type: 'file_changed';
  data: {
    path: string;
    version: number;
    source: FileSource;
    userId?: string;
    operation: FileOperation;
    from?: string;
    contentHash?: string;
    size?: number;
  };
}

/** One `files_changed` event for a whole commit (`applyChangeset` with `oneEvent`). */
interface FilesChangedEvent {
  type: 'files_changed';
  data: {
    source: FileSource;
    userId?: string;
    files: Omit<FileChangedEvent['data'], 'source' | 'userId'>[];
  };
}

type FileChangeEvent = FileChangedEvent | FilesChangedEvent;

/** Size limits for files and archives. */
export interface FileLimits {
  /** Largest file (bytes). */
  maxFileBytes: number;
  /** Largest zip upload (bytes, compressed). */
  maxArchiveBytes: number;
  /** Checks on the archive's contents. */
  zip: Omit<ZipLimits, 'maxFileBytes'>;
}

export interface FilesServiceDeps {
  db: Db;
  projects: ProjectsService;
  bus: EventBus;
  log: Logger;
  metrics: Metrics;
  dataDir: string;
  limits: FileLimits;
  /** Names ignored anywhere in workspace paths (node_modules, .git…). */
  workspaceIgnore: string[];
  /** The user project code runs as, who owns what is written to workspaces (default: ours). */
  workspaceOwner?: Owner;
  /**
   * How changes made inside workspaces are noticed: inotify (default), or `poll`, walking each
   * workspace every `workspacePollMs` (2000), for a data dir on a network volume.
   */
  workspaceWatch?: 'inotify' | 'poll';
  workspacePollMs?: number;
  /**
   * `poll`: the workspaces walked at every poll (projects whose code runs); the others once a
   * minute. Default: all of them.
   */
  workspacePollActive?: (projectId: string) => boolean;
}

type Planned =
  | {
      op: 'write';
      path: string;
      stored: StoredContent;
      bytes: Buffer;
      baseVersion?: number;
      restoreOf?: number;
    }
  | { op: 'delete'; path: string; baseVersion?: number }
  | { op: 'move'; from: string; to: string; baseVersion?: number };

type WritePlan = Extract<Planned, { op: 'write' }>;

type DiskOp =
  | { kind: 'write'; path: string; bytes: Buffer }
  | { kind: 'remove'; path: string }
  | { kind: 'move'; from: string; to: string };

const MiB = 1024 * 1024;

/**
 * The project file system: files live in PostgreSQL (current state in project_files, every
 * version in file_versions), are mirrored into each project's workspace directory, and every
 * change, whatever its source, is published as a `file_changed` event.
 *
 * Callers check roles: routes do it with `projectAccess`; other services acting for a user
 * must require at least `editor` (writes) or `viewer` (reads) themselves.
 */
export class FilesService {
  readonly #db: Db;
  readonly #store: FilesStore;
  readonly #projects: ProjectsService;
  readonly #bus: EventBus;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #limits: FileLimits;
  readonly #workspaces: Workspaces;
  readonly #watcher: DiskWatcher;
  readonly #indexer: SearchIndexer;
  #closed = false;
  #ready: Promise<void> = Promise.resolve();
  readonly #limitCache = new Map<string, { mb: number; until: number }>();

  constructor(deps: FilesServiceDeps) {
    this.#db = deps.db;
    this.#store = new FilesStore(deps.db);
    this.#projects = deps.projects;
    this.#bus = deps.bus;
    this.#log = deps.log;
    this.#metrics = deps.metrics;
    this.#limits = deps.limits;
    this.#workspaces = new Workspaces({
      dataDir: deps.dataDir,
      ignore: deps.workspaceIgnore,
      log: deps.log,
      owner: deps.workspaceOwner,
    });
    const onChange: DiskChangeHandler = (projectId, paths) =>
      this.#workspaces.exclusive(projectId, () => this.#importFromDisk(projectId, paths));
    this.#watcher =
      deps.workspaceWatch === 'poll'
        ? new PollingWatcher({
            workspaces: this.#workspaces,
            log: deps.log,
            onChange,
            intervalMs: deps.workspacePollMs,
            isActive: deps.workspacePollActive,
          })
        : new WorkspaceWatcher({ ignore: deps.workspaceIgnore, log: deps.log, onChange });
    this.#indexer = new SearchIndexer(deps.db, deps.log);
  }

  /** The largest file accepted, in bytes. */
  get maxFileBytes(): number {
    return this.#limits.maxFileBytes;
  }

  /** The largest zip upload accepted, in bytes. */
  get maxArchiveBytes(): number {
    return this.#limits.maxArchiveBytes;
  }

  /** The project's workspace directory (what its container mounts at /app). */
  workspacePath(projectId: string): string {
    return this.#workspaces.dir(projectId);
  }

  // ───────────────────────────── reads ─────────────────────────────

  /** The project's files (no content), in path order; only those under `dir/` when given. */
  async list(projectId: string, opts: { dir?: string } = {}): Promise<FileMeta[]> {
    const dir = opts.dir === undefined ? undefined : checkFilePath(opts.dir, 'dir');
    return (await this.#store.list(projectId, dir)).map(toMeta);
  }

  /**
   * One file with its content.
   * @throws AppError invalid_request (bad path), not_found.
   */
  async read(projectId: string, filePath: string): Promise<FileContent> {
    const row = await this.#store.findFile(projectId, checkFilePath(filePath));
    if (!row) throw errors.notFound('file');
    return { ...toMeta(row), content: row.content };
  }

  /**
   * A file's bytes.
   * @throws AppError invalid_request, not_found.
   */
  async readBytes(projectId: string, filePath: string): Promise<Buffer> {
    const file = await this.read(projectId, filePath);
    return storedBytes(file.content, file.encoding);
  }

  /**
   * The versions of a path, newest first (deleted files keep theirs).
   * @throws AppError invalid_request, not_found when the path never had a version.
   */
  async history(
    projectId: string,
    filePath: string,
    opts: { limit?: number; before?: number } = {},
  ): Promise<FileVersionMeta[]> {
    const rows = await this.#store.history(projectId, checkFilePath(filePath), {
      limit: Math.min(Math.max(opts.limit ?? 100, 1), 1000),
      ...(opts.before !== undefined ? { before: opts.before } : {}),
    });
    if (rows.length === 0 && opts.before === undefined) throw errors.notFound('file');
    return rows.map(toVersionMeta);
  }

  /**
   * One old version with its content (a deletion has empty content).
   * @throws AppError invalid_request, not_found.
   */
  async readVersion(
    projectId: string,
    filePath: string,
    version: number,
  ): Promise<FileVersionContent> {
    const row = await this.#store.version(projectId, checkFilePath(filePath), version);
    if (!row) throw errors.notFound('version');
    return { ...toVersionMeta(row), path: row.file_path, content: row.content };
  }

  /**
   * Files deleted (not moved away) and not created again, most recently deleted first: what
   * "Recently deleted" lists; `restoreVersion` is what {@link restore} brings back.
   */
  async deleted(projectId: string, opts: { limit?: number } = {}): Promise<DeletedFile[]> {
    const rows = await this.#store.deleted(
      projectId,
      Math.min(Math.max(opts.limit ?? 200, 1), 1000),
    );
    return rows.map((row) => ({
      path: row.file_path,
      version: row.version,
      restoreVersion: row.restore_version,
      size: Number(row.size_bytes),
      source: row.source as FileSource,
      deletedAt: row.created_at.toISOString(),
      ...(row.created_by ? { deletedBy: row.created_by } : {}),
    }));
  }

  /**
   * Lines of text files matching `query`, and files whose path contains it. Words match whole
   * or as a prefix (`getUs` finds `getUser`), camelCase parts and words joined by punctuation
   * count separately (`user` finds `getUser`, `state` finds `this.state`); a line qualifies when
   * it contains the whole query, or, in a file with no such line, one of its words.
   * @throws AppError invalid_request for an empty query.
   */
  async search(
    projectId: string,
    query: string,
    opts: { limit?: number } = {},
  ): Promise<{ results: SearchResult[]; truncated: boolean }> {
    const q = query.trim();
    if (!q) throw errors.invalid('Search for something', [{ field: 'q', message: 'empty' }]);
    const limit = Math.min(Math.max(opts.limit ?? 200, 1), 1000);
    await this.#indexer.flush(projectId);
    const words = queryWords(q);
    const wanted = limit + 1;
    const [paths, lines] = await Promise.all([
      this.#store.searchPaths(projectId, q, Math.min(limit, 50)),
      words.length
        ? this.#store.searchLines(projectId, prefixQuery(words), q, words, {
            maxFiles: 100,
            maxLines: wanted,
            maxLinesPerFile: 20,
          })
        : Promise.resolve([]),
    ]);
    const results: SearchResult[] = paths.map((p) => ({
      path: p,
      line: 0,
      preview: p,
      kind: 'path',
    }));
    for (const l of lines) {
      results.push({
        path: l.path,
        line: l.line,
        preview: l.text.replace(/\r$/, ''),
        kind: 'content',
      });
    }
    const truncated = paths.length >= Math.min(limit, 50) || results.length > limit;
    results.length = Math.min(results.length, limit);
    return { results, truncated };
  }

  /** The project as a zip archive, streamed (files loaded a few at a time). */
  archive(projectId: string): Readable {
    const store = this.#store;
    async function* entries(): AsyncGenerator<ArchiveEntry> {
      const files = await store.list(projectId);
      const batch = 50;
      let cache = new Map<string, Buffer>();
      for (let i = 0; i < files.length; i++) {
        const index = i;
        const file = files[i]!;
        yield {
          path: file.file_path,
          mtime: file.updated_at,
          load: async () => {
            let bytes = cache.get(file.file_path);
            if (!bytes) {
              // Load this file and the next few in one query, then let the batch go.
              const page = await store.page(
                projectId,
                index === 0 ? undefined : files[index - 1]!.file_path,
                batch,
              );
              cache = new Map(page.map((r) => [r.file_path, storedBytes(r.content, r.encoding)]));
              bytes = cache.get(file.file_path);
            }
            cache.delete(file.file_path);
            if (bytes) return bytes;
            // Deleted or moved since the listing: the listed version is still in the history.
            const listed = await store.version(projectId, file.file_path, file.version);
            if (!listed)
              throw new Error(`${file.file_path} v${file.version} missing while archiving`);
            return storedBytes(listed.content, listed.encoding);
          },
        };
      }
    }
    return buildZip(entries());
  }

  // ───────────────────────────── writes ─────────────────────────────

  /**
   * Creates or replaces a file. With `baseVersion`, only if the file is still at that version
   * (0: only if it does not exist yet).
   * @throws AppError invalid_request (path, base64), conflict (stale baseVersion, a file where a
   *   directory is needed or the reverse), too_large (file size, project quota), not_found
   *   (project).
   */
  async write(
    projectId: string,
    filePath: string,
    content: string | Uint8Array,
    opts: Actor & { encoding?: Encoding; baseVersion?: number },
  ): Promise<ChangeOutcome> {
    const [outcome] = await this.applyChangeset(
      projectId,
      [
        {
          op: 'write',
          path: filePath,
          content,
          encoding: opts.encoding,
          baseVersion: opts.baseVersion,
        },
      ],
      opts,
    );
    return outcome!;
  }

  /**
   * Deletes a file, or every file under a directory.
   * @throws AppError invalid_request, not_found, conflict (stale baseVersion).
   */
  async delete(
    projectId: string,
    filePath: string,
    opts: Actor & { baseVersion?: number },
  ): Promise<ChangeOutcome[]> {
    return this.applyChangeset(
      projectId,
      [{ op: 'delete', path: filePath, baseVersion: opts.baseVersion }],
      opts,
    );
  }

  /**
   * Moves (renames) a file, or every file under a directory. The new path's history starts
   * with a `move` version pointing back; the old path's ends with a `delete` pointing on.
   * @throws AppError invalid_request, not_found, conflict (target exists).
   */
  async move(
    projectId: string,
    from: string,
    to: string,
    opts: Actor & { baseVersion?: number },
  ): Promise<ChangeOutcome[]> {
    return this.applyChangeset(
      projectId,
      [{ op: 'move', from, to, baseVersion: opts.baseVersion }],
      opts,
    );
  }

  /**
   * Makes an old version current again, as a new version (operation `restore`); works for
   * deleted files too.
   * @throws AppError invalid_request (the version is a deletion), not_found, too_large.
   */
  async restore(
    projectId: string,
    filePath: string,
    version: number,
    opts: Actor,
  ): Promise<ChangeOutcome> {
    const old = await this.#store.version(projectId, checkFilePath(filePath), version);
    if (!old) throw errors.notFound('version');
    if (old.operation === 'delete') {
      throw errors.invalid(`Version ${version} is a deletion; restore an earlier version`, [
        { field: 'version', message: 'is a deletion' },
      ]);
    }
    const bytes = storedBytes(old.content, old.encoding);
    const [outcome] = await this.#commit(
      projectId,
      [{ op: 'write', path: filePath, stored: storeBytes(bytes), bytes, restoreOf: version }],
      opts,
    );
    return outcome!;
  }

  /**
   * Applies several changes in one transaction (e.g. an AI turn): all of them or none, one
   * version per changed file, events after the commit (`oneEvent`: one `files_changed` for
   * all of them, e.g. a restore of 1,000 files).
   * @throws AppError as {@link write}, {@link delete} and {@link move}; nothing is applied then.
   */
  async applyChangeset(
    projectId: string,
    changes: FileChange[],
    actor: Actor,
    opts: { workspaceInBackground?: boolean; oneEvent?: boolean } = {},
  ): Promise<ChangeOutcome[]> {
    const planned = changes.map((c, i) => this.#plan(c, changes.length > 1 ? `changes.${i}.` : ''));
    const oneEvent = opts.oneEvent ?? false;
    if (!opts.workspaceInBackground || planned.length === 0) {
      return this.#commit(projectId, planned, actor, oneEvent);
    }
    // Answer once committed; the workspace, search and events follow in the project's lane
    // (later changes wait for them, see settled()).
    return new Promise<ChangeOutcome[]>((resolve, reject) => {
      this.#workspaces
        .exclusive(projectId, () =>
          this.#commitInLane(projectId, planned, actor, {
            fromDisk: false,
            committed: resolve,
            oneEvent,
          }),
        )
        .catch(reject);
    });
  }

  /** Settles once every change made so far to the project has reached its workspace. */
  settled(projectId: string): Promise<void> {
    return this.#workspaces.exclusive(projectId, () => Promise.resolve());
  }

  /**
   * Writes the files of a zip archive (source `import`) in one transaction, under the folder
   * `into` (default: the root). The archive is checked whole first; a refused archive writes
   * nothing.
   * @throws AppError invalid_request (malformed or unsafe archive, bad `into`), too_large,
   *   conflict.
   */
  async importZip(
    projectId: string,
    archive: Buffer,
    opts: { userId: string | null; strip?: number; into?: string },
  ): Promise<{ imported: number; changed: number }> {
    const into = opts.into?.replace(/\/+$/, '') || undefined;
    if (into !== undefined) checkFilePath(into, 'into');
    if (archive.length > this.#limits.maxArchiveBytes) {
      throw errors.tooLarge(`Archives may be at most ${this.#limits.maxArchiveBytes} bytes`);
    }
    const files = await readZip(
      archive,
      { ...this.#limits.zip, maxFileBytes: this.#limits.maxFileBytes },
      opts.strip ?? 0,
    );
    const planned: Planned[] = files.map((f) => ({
      op: 'write',
      path: into ? checkFilePath(`${into}/${f.path}`) : f.path,
      stored: storeBytes(f.bytes),
      bytes: f.bytes,
    }));
    const outcomes = planned.length
      ? await this.#commit(projectId, planned, { source: 'import', userId: opts.userId })
      : [];
    return { imported: files.length, changed: outcomes.filter((o) => o.changed).length };
  }

  /** Writes a template's files into a new project (source `template`) in one transaction. */
  async writeTemplate(
    projectId: string,
    files: { path: string; content: string }[],
    userId: string | null,
  ): Promise<void> {
    await this.#workspaces.ensure(projectId);
    if (files.length) {
      await this.applyChangeset(
        projectId,
        files.map((f) => ({ op: 'write', path: f.path, content: f.content })),
        { source: 'template', userId },
      );
    }
    await this.watch(projectId);
  }

  /**
   * Contents of old versions, by (path, version), in one query (a checkpoint's files).
   * Pairs with no such version are left out.
   */
  async readVersions(
    projectId: string,
    entries: { path: string; version: number }[],
  ): Promise<Map<string, { version: number; content: string; encoding: Encoding }>> {
    const rows = await this.#store.versionContents(projectId, entries);
    return new Map(
      rows.map((r) => [
        r.file_path,
        { version: r.version, content: r.content, encoding: r.encoding as Encoding },
      ]),
    );
  }

  /**
   * Fills a new, empty project with another project's files (a fork): its current files, or
   * the given versions. Two INSERT … SELECT statements, whatever the number of files; each copy
   * starts a history of its own (version 1, source `import`). The workspace is written in the
   * background, in the project's lane (later changes wait for it).
   * @returns how many files were copied.
   */
  async copyProject(
    fromProjectId: string,
    toProjectId: string,
    opts: { versions?: { path: string; version: number }[]; userId: string | null },
  ): Promise<number> {
    const copied = await this.#transaction(async (tx) => {
      const store = new FilesStore(tx);
      await store.beginChange(toProjectId, opts.userId, 'import');
      return store.copyFiles(fromProjectId, toProjectId, opts.versions, opts.userId);
    });
    void this.resync(toProjectId).catch((err: unknown) =>
      this.#log.warn({ err, projectId: toProjectId }, 'workspace of a fork not written'),
    );
    return copied;
  }

  // ───────────────────────────── workspaces ─────────────────────────────

  /** Starts {@link syncAll} in the background; {@link ready} settles when it is done. */
  start(): void {
    this.#ready = this.syncAll().catch((err: unknown) =>
      this.#log.error({ err }, 'workspace synchronisation failed'),
    );
  }

  /** Settles once the start-up synchronisation of every workspace is over. */
  get ready(): Promise<void> {
    return this.#ready;
  }

  /**
   * Brings every project's workspace in line with the database and watches it: the
   * database's files are written where the disk differs; files only on disk are imported
   * (source `container`). Run at start-up; a few projects at a time.
   */
  async syncAll(): Promise<void> {
    const ids = await this.#projects.listIds();
    let next = 0;
    const worker = async () => {
      while (next < ids.length && !this.#closed) {
        const id = ids[next++]!;
        await this.resync(id).catch((err: unknown) =>
          this.#log.warn({ err, projectId: id }, 'workspace resync failed'),
        );
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
  }

  /** Resynchronises one project's workspace with the database (see {@link syncAll}). */
  async resync(projectId: string): Promise<void> {
    await this.#workspaces.ensure(projectId);
    await this.watch(projectId);
    this.#indexer.touch(projectId);
    await this.#workspaces.exclusive(projectId, async () => {
      const inDb = await this.#store.hashes(projectId);
      let written = 0;
      for (const [filePath, hash] of inDb) {
        const disk = await this.#workspaces.read(projectId, filePath, Number.MAX_SAFE_INTEGER);
        if (disk && sha256(disk.bytes) === hash) {
          this.#workspaces.noteSynced(projectId, filePath, disk.stamp);
          continue;
        }
        const row = await this.#store.findFile(projectId, filePath);
        if (!row) continue;
        if (
          await this.#workspaces.write(projectId, filePath, storedBytes(row.content, row.encoding))
        ) {
          written++;
        }
      }
      const onDisk = (await this.#workspaces.walk(projectId)).filter((f) => !inDb.has(f.path));
      if (onDisk.length)
        await this.#importFromDisk(
          projectId,
          onDisk.map((f) => f.path),
        );
      this.#log.info(
        { projectId, files: inDb.size, written, imported: onDisk.length },
        'workspace synchronised',
      );
    });
  }

  /** Starts watching the project's workspace for changes made inside it. */
  async watch(projectId: string): Promise<void> {
    if (this.#closed) return;
    const dir = await this.#workspaces.ensure(projectId);
    try {
      await this.#watcher.watch(projectId, dir);
    } catch (err) {
      this.#log.warn(
        { err, projectId },
        'cannot watch the workspace; changes made inside it will not be imported',
      );
    }
  }

  /** True while the project's workspace is watched. */
  isWatching(projectId: string): boolean {
    return this.#watcher.isWatching(projectId);
  }

  /** Stops watching a project and removes its workspace (the project is being deleted). */
  async forgetProject(projectId: string): Promise<void> {
    this.#limitCache.delete(projectId);
    await this.#watcher.unwatch(projectId);
    await this.#workspaces.exclusive(projectId, () => this.#workspaces.destroy(projectId));
  }

  /** Stops the watchers and waits for pending disk writes and search refreshes. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#ready;
    await this.#watcher.close();
    await this.#workspaces.drain();
    await this.#indexer.close();
  }

  /**
   * Imports what changed on disk under `paths` (files, directories, vanished paths) as
   * versions with source `container`. Runs in the project's lane; content equal to the
   * database's (our own writes coming back) is skipped, so nothing echoes.
   */
  async #importFromDisk(projectId: string, paths: string[]): Promise<void> {
    if (this.#closed || !(await this.#projects.findById(projectId))) return;
    const present = new Set<string>();
    const gone: string[] = [];
    const wanted = paths.filter((p) => !pathProblem(p) && !this.#workspaces.isIgnored(p));
    // One pass over the disk for the whole burst (kinds, and our own writes seen again).
    const stats = await this.#workspaces.lstatMany(projectId, wanted);
    for (const p of wanted) {
      const stat = stats.get(p);
      const kind = stat && (stat.isFile() ? 'file' : stat.isDirectory() ? 'dir' : 'other');
      if (kind === 'file') present.add(p);
      else if (kind === 'dir') {
        for (const f of await this.#workspaces.walk(projectId, p)) present.add(f.path);
      } else if (kind === undefined) gone.push(p);
    }
    const planned: Planned[] = [];
    for (const p of gone) {
      const rows = (await this.#store.findMeta(projectId, p))
        ? [p]
        : (await this.#store.list(projectId, p)).map((r) => r.file_path);
      for (const row of rows) {
        if (!present.has(row) && (await this.#workspaces.kind(projectId, row)) === undefined) {
          planned.push({ op: 'delete', path: row });
        }
      }
    }
    const changed: string[] = [];
    const walked = [...present].filter((p) => !stats.has(p));
    const more = walked.length ? await this.#workspaces.lstatMany(projectId, walked) : stats;
    for (const p of present) {
      const stat = stats.get(p) ?? more.get(p);
      if (!this.#workspaces.isUnchangedStat(projectId, p, stat)) changed.push(p);
    }
    const known = await this.#store.hashes(projectId, changed);
    const stamps = new Map<string, string>();
    for (const p of changed) {
      const read = await this.#workspaces.read(projectId, p, this.#limits.maxFileBytes);
      if (!read) {
        this.#log.warn(
          { projectId, path: p },
          'workspace file not imported: too large or unreadable',
        );
        continue;
      }
      const stored = storeBytes(read.bytes);
      stamps.set(p, read.stamp);
      if (known.get(p) === stored.hash) {
        this.#workspaces.noteSynced(projectId, p, read.stamp);
        continue;
      }
      planned.push({ op: 'write', path: p, stored, bytes: read.bytes });
    }
    if (planned.length === 0) return;
    const actor: Actor = { source: 'container', userId: null };
    try {
      await this.#commitInLane(projectId, planned, actor, { fromDisk: true });
      for (const c of planned) {
        if (c.op !== 'write') continue;
        const stamp = stamps.get(c.path);
        if (stamp) this.#workspaces.noteSynced(projectId, c.path, stamp);
      }
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      // One bad change (a quota, a file/directory clash) must not hold back the others.
      for (const change of planned) {
        await this.#commitInLane(projectId, [change], actor, { fromDisk: true }).catch(
          (e: unknown) =>
            this.#log.warn(
              { err: e, projectId, change: describe(change) },
              'workspace change not imported',
            ),
        );
      }
    }
    this.#metrics.workspaceImports.inc(planned.length);
  }

  // ───────────────────────────── the commit engine ─────────────────────────────

  #plan(change: FileChange, prefix: string): Planned {
    switch (change.op) {
      case 'write': {
        const filePath = checkFilePath(change.path, `${prefix}path`);
        const bytes =
          typeof change.content === 'string'
            ? decodeContent(change.content, change.encoding ?? 'utf-8', `${prefix}content`)
            : Buffer.from(change.content);
        if (bytes.length > this.#limits.maxFileBytes) {
          throw errors.tooLarge(
            `${filePath} is ${bytes.length} bytes; files may be at most ${this.#limits.maxFileBytes} bytes`,
          );
        }
        return {
          op: 'write',
          path: filePath,
          stored: storeBytes(bytes),
          bytes,
          ...(change.baseVersion !== undefined ? { baseVersion: change.baseVersion } : {}),
        };
      }
      case 'delete':
        return {
          op: 'delete',
          path: checkFilePath(change.path, `${prefix}path`),
          ...(change.baseVersion !== undefined ? { baseVersion: change.baseVersion } : {}),
        };
      case 'move': {
        const from = checkFilePath(change.from, `${prefix}from`);
        const to = checkFilePath(change.to, `${prefix}to`);
        if (from === to) {
          throw errors.invalid('from and to are the same path', [
            { field: `${prefix}to`, message: 'same as from' },
          ]);
        }
        return {
          op: 'move',
          from,
          to,
          ...(change.baseVersion !== undefined ? { baseVersion: change.baseVersion } : {}),
        };
      }
    }
  }

  async #commit(
    projectId: string,
    planned: Planned[],
    actor: Actor,
    oneEvent = false,
  ): Promise<ChangeOutcome[]> {
    if (planned.length === 0) return [];
    return this.#workspaces.exclusive(projectId, () =>
      this.#commitInLane(projectId, planned, actor, { fromDisk: false, oneEvent }),
    );
  }

  /**
   * One transaction for all of `planned`, then (unless the change came from the disk) the
   * workspace, then search and events. Must run in the project's lane.
   */
  async #commitInLane(
    projectId: string,
    planned: Planned[],
    actor: Actor,
    opts: {
      fromDisk: boolean;
      committed?: (outcomes: ChangeOutcome[]) => void;
      oneEvent?: boolean;
    },
  ): Promise<ChangeOutcome[]> {
    if (!fileSources.includes(actor.source)) throw new Error(`unknown file source ${actor.source}`);
    const quotaMb = await this.#storageLimitMb(projectId);
    const userId = actor.userId ?? null;
    const { outcomes, disk } = await this.#transaction(async (tx) => {
      const store = new FilesStore(tx);
      await store.beginChange(projectId, userId, actor.source);
      const run = new Transaction(store, projectId, actor.source, userId);
      await run.applyAll(planned);
      if (run.growth > 0) {
        const used = await store.usage(projectId);
        if (used > quotaMb * MiB) {
          throw errors.tooLarge(`The project's storage quota (${quotaMb} MB) would be exceeded`);
        }
      }
      return { outcomes: run.outcomes, disk: run.disk };
    });
    opts.committed?.(outcomes);
    if (!opts.fromDisk) await this.#applyToDisk(projectId, disk);
    const changed = outcomes.filter((o) => o.changed);
    if (changed.length) {
      this.#indexer.touch(
        projectId,
        changed.flatMap((o) => (o.from ? [o.from, o.path] : [o.path])),
      );
      for (const o of changed)
        this.#metrics.fileChanges.inc({ source: actor.source, operation: o.operation });
      void this.#publish(projectId, changed, actor, opts.oneEvent ?? false);
    }
    return outcomes;
  }

  /** The project's storage limit, remembered for a while (one query less per write). */
  async #storageLimitMb(projectId: string): Promise<number> {
    const cached = this.#limitCache.get(projectId);
    if (cached && cached.until > Date.now()) return cached.mb;
    const project = await this.#projects.findById(projectId);
    if (!project) throw errors.notFound('project');
    this.#limitCache.set(projectId, { mb: project.storageLimitMb, until: Date.now() + 30_000 });
    return project.storageLimitMb;
  }

  /** A transaction; a project deleted meanwhile (foreign key violation) is not_found. */
  async #transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
    try {
      return await this.#db.transaction().execute((tx) => fn(tx));
    } catch (err) {
      if ((err as { code?: string }).code === '23503') throw errors.notFound('project');
      throw err;
    }
  }

  async #applyToDisk(projectId: string, ops: DiskOp[]): Promise<void> {
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      // A run of writes to distinct paths (a restore, an import) goes in one bulk write.
      const run: { path: string; bytes: Uint8Array }[] = [];
      const seen = new Set<string>();
      for (let w = ops[i]; w?.kind === 'write' && !seen.has(w.path); w = ops[++i]) {
        seen.add(w.path);
        run.push({ path: w.path, bytes: w.bytes });
      }
      if (run.length > 1) {
        i--;
        try {
          await this.#workspaces.writeMany(projectId, run);
        } catch (err) {
          this.#log.warn({ err, projectId, files: run.length }, 'workspace update failed');
        }
        continue;
      }
      if (run.length === 1) i--;
      try {
        if (op.kind === 'write') {
          await this.#workspaces.write(projectId, op.path, op.bytes);
        } else if (op.kind === 'remove') {
          await this.#workspaces.remove(projectId, op.path);
        } else if (!(await this.#workspaces.move(projectId, op.from, op.to))) {
          const row = await this.#store.findFile(projectId, op.to);
          if (row)
            await this.#workspaces.write(projectId, op.to, storedBytes(row.content, row.encoding));
        }
      } catch (err) {
        // The database is the source of truth; a restart (or the next write) repairs the disk.
        this.#log.warn(
          { err, projectId, op: { ...op, bytes: undefined } },
          'workspace update failed',
        );
      }
    }
  }

  async #publish(
    projectId: string,
    outcomes: ChangeOutcome[],
    actor: Actor,
    oneEvent: boolean,
  ): Promise<void> {
    const files = outcomes.map((o) => ({
      path: o.path,
      version: o.version,
      operation: o.operation,
      ...(o.from ? { from: o.from } : {}),
      ...(o.file ? { contentHash: o.file.contentHash, size: o.file.size } : {}),
    }));
    const who = { source: actor.source, ...(actor.userId ? { userId: actor.userId } : {}) };
    const events: FileChangeEvent[] = oneEvent
      ? [{ type: 'files_changed', data: { ...who, files } }]
      : files.map((f) => ({ type: 'file_changed', data: { ...f, ...who } }));
    for (const event of events) {
      try {
        await publishProjectEvent(this.#bus, projectId, event.type, event.data);
      } catch (err) {
        this.#log.warn({ err, projectId }, `${event.type} event not published`);
      }
    }
  }
}

/** The changes of one commit, applied inside its database transaction. */
class Transaction {
  readonly outcomes: ChangeOutcome[] = [];
  readonly disk: DiskOp[] = [];
  /** Bytes added minus bytes removed. */
  growth = 0;

  constructor(
    readonly store: FilesStore,
    readonly projectId: string,
    readonly source: FileSource,
    readonly userId: string | null,
  ) {}

  /** Applies changes in order; runs of writes to distinct paths go in a few bulk statements. */
  async applyAll(changes: Planned[]): Promise<void> {
    for (let i = 0; i < changes.length;) {
      const batch: WritePlan[] = [];
      const seen = new Set<string>();
      for (let c = changes[i]; c?.op === 'write' && !seen.has(c.path); c = changes[++i]) {
        seen.add(c.path);
        batch.push(c);
      }
      if (batch.length > 1) await this.#writeBatch(batch);
      else if (batch.length === 1) await this.#write(batch[0]!);
      else await this.apply(changes[i++]!);
    }
  }

  async apply(change: Planned): Promise<void> {
    if (change.op === 'write') return this.#write(change);
    if (change.op === 'delete') return this.#delete(change);
    return this.#move(change);
  }

  /** Like {@link #write} for many distinct paths: one query per step instead of per file. */
  async #writeBatch(cs: WritePlan[]): Promise<void> {
    const { store, projectId } = this;
    const paths = cs.map((c) => c.path);
    const current = new Map((await store.findMetas(projectId, paths)).map((r) => [r.file_path, r]));
    for (const c of cs) checkBase(c.path, c.baseVersion, current.get(c.path)?.version ?? 0);
    const fresh = cs.filter((c) => !current.has(c.path)).map((c) => c.path);
    if (fresh.length) {
      const inBatch = new Set(paths);
      for (const p of fresh) {
        const dir = parentDirs(p).find((d) => inBatch.has(d));
        if (dir) throw clashError(p, dir);
      }
      const ancestors = [...new Set(fresh.flatMap(parentDirs))];
      const clash = await store.treeConflicts(projectId, fresh, ancestors);
      if (clash)
        throw clashError(
          fresh.find((p) => clash.startsWith(p + '/') || p.startsWith(clash + '/')) ?? fresh[0]!,
          clash,
        );
    }
    const highest = await store.maxVersions(projectId, fresh);
    const inserts: FileValues[] = [];
    const versions: VersionValues[] = [];
    const rows = new Map<string, FileMetaRow>();
    const updates: { id: string; values: FileValues }[] = [];
    const plans: { c: WritePlan; version: number; changed: boolean; created: boolean }[] = [];
    for (const c of cs) {
      const cur = current.get(c.path);
      const s = c.stored;
      const operation = c.restoreOf ? 'restore' : 'write';
      if (cur && cur.content_hash === s.hash && cur.encoding === s.encoding) {
        rows.set(c.path, cur);
        plans.push({ c, version: cur.version, changed: false, created: false });
        continue;
      }
      const version = cur ? cur.version + 1 : (highest.get(c.path) ?? 0) + 1;
      const values = this.#values(c, version);
      if (cur) updates.push({ id: cur.id, values });
      else inserts.push(values);
      versions.push({ ...values, operation });
      this.growth += s.size - (cur ? Number(cur.size_bytes) : 0);
      this.disk.push({ kind: 'write', path: c.path, bytes: c.bytes });
      plans.push({ c, version, changed: true, created: !cur });
    }
    for (const row of await store.updateFiles(updates)) rows.set(row.file_path, row);
    for (const row of await store.insertFiles(projectId, inserts)) rows.set(row.file_path, row);
    await store.insertVersions(projectId, versions);
    for (const p of plans) {
      this.outcomes.push({
        operation: p.c.restoreOf ? 'restore' : 'write',
        path: p.c.path,
        version: p.version,
        changed: p.changed,
        ...(p.changed ? { created: p.created } : {}),
        file: toMeta(rows.get(p.c.path)!),
      });
    }
  }

  #values(c: WritePlan, version: number): FileValues {
    const s = c.stored;
    const { type, mime } = fileType(c.path, s.isBinary);
    return {
      path: c.path,
      name: baseName(c.path),
      type,
      mime,
      content: s.content,
      hash: s.hash,
      encoding: s.encoding,
      size: s.size,
      lines: s.lines,
      isBinary: s.isBinary,
      version,
      source: this.source,
      userId: this.userId,
    };
  }

  async #write(c: WritePlan): Promise<void> {
    const { store, projectId } = this;
    const current = await store.findMeta(projectId, c.path);
    checkBase(c.path, c.baseVersion, current?.version ?? 0);
    const s = c.stored;
    if (current && current.content_hash === s.hash && current.encoding === s.encoding) {
      this.outcomes.push({
        operation: c.restoreOf ? 'restore' : 'write',
        path: c.path,
        version: current.version,
        changed: false,
        file: toMeta(current),
      });
      return;
    }
    if (!current) await this.#checkTree(c.path);
    const version = current ? current.version + 1 : await store.nextVersion(projectId, c.path);
    const values = this.#values(c, version);
    const row = current
      ? await store.updateFile(current.id, values)
      : await store.insertFile(projectId, values);
    await store.insertVersion(projectId, {
      ...values,
      operation: c.restoreOf ? 'restore' : 'write',
    });
    this.growth += s.size - (current ? Number(current.size_bytes) : 0);
    this.disk.push({ kind: 'write', path: c.path, bytes: c.bytes });
    this.outcomes.push({
      operation: c.restoreOf ? 'restore' : 'write',
      path: c.path,
      version,
      changed: true,
      created: !current,
      file: toMeta(row),
    });
  }

  async #delete(c: Extract<Planned, { op: 'delete' }>): Promise<void> {
    const current = await this.store.findMeta(this.projectId, c.path);
    if (current) {
      checkBase(c.path, c.baseVersion, current.version);
      return this.#deleteOne(current);
    }
    if (c.baseVersion !== undefined && c.baseVersion !== 0) checkBase(c.path, c.baseVersion, 0);
    const under = await this.store.list(this.projectId, c.path);
    if (under.length === 0) throw errors.notFound('file');
    for (const row of under) await this.#deleteOne(row);
  }

  async #deleteOne(row: FileMetaRow): Promise<void> {
    const version = await this.#closeHistory(row);
    await this.store.deleteFile(row.id);
    this.growth -= Number(row.size_bytes);
    this.disk.push({ kind: 'remove', path: row.file_path });
    this.outcomes.push({ operation: 'delete', path: row.file_path, version, changed: true });
  }

  /** Ends a path's history with a `delete` version (pointing at `movedTo` for a move). */
  async #closeHistory(row: FileMetaRow, movedTo?: string): Promise<number> {
    const version = row.version + 1;
    await this.store.insertVersion(this.projectId, {
      path: row.file_path,
      version,
      content: '',
      hash: emptyHash,
      encoding: 'utf-8',
      size: 0,
      lines: 0,
      source: this.source,
      operation: 'delete',
      userId: this.userId,
      ...(movedTo ? { movedPath: movedTo } : {}),
    });
    return version;
  }

  async #move(c: Extract<Planned, { op: 'move' }>): Promise<void> {
    const current = await this.store.findMeta(this.projectId, c.from);
    if (current) {
      checkBase(c.from, c.baseVersion, current.version);
      return this.#moveOne(current, c.to);
    }
    if (c.baseVersion !== undefined) checkBase(c.from, c.baseVersion, 0);
    const under = await this.store.list(this.projectId, c.from);
    if (under.length === 0) throw errors.notFound('file');
    if (c.to.startsWith(c.from + '/')) {
      throw errors.invalid('A directory cannot move into itself', [
        { field: 'to', message: 'inside from' },
      ]);
    }
    for (const row of under) await this.#moveOne(row, c.to + row.file_path.slice(c.from.length));
  }

  async #moveOne(row: FileMetaRow, to: string): Promise<void> {
    const { store, projectId } = this;
    if (pathProblem(to)) throw errors.invalid(`Invalid target path ${to}: ${pathProblem(to)}`);
    if (await store.findMeta(projectId, to)) {
      throw errors.conflict(`${to} already exists`, { path: to });
    }
    const clash = await store.treeConflict(projectId, to, parentDirs(to));
    if (clash && clash !== row.file_path) {
      throw errors.conflict(`${to} clashes with ${clash} (a file and a directory)`, {
        path: to,
        clash,
      });
    }
    const version = await store.nextVersion(projectId, to);
    await this.#closeHistory(row, to);
    const { type, mime } = fileType(to, row.is_binary);
    const moved = await store.moveFile(
      row.id,
      { path: to, name: baseName(to), type, mime, version },
      this.source,
      this.userId,
    );
    await store.insertVersionFromFile(moved.id, {
      source: this.source,
      userId: this.userId,
      movedFrom: row.file_path,
    });
    this.disk.push({ kind: 'move', from: row.file_path, to });
    this.outcomes.push({
      operation: 'move',
      path: to,
      from: row.file_path,
      version,
      changed: true,
      file: toMeta(moved),
    });
  }

  async #checkTree(filePath: string): Promise<void> {
    const clash = await this.store.treeConflict(this.projectId, filePath, parentDirs(filePath));
    if (clash) throw clashError(filePath, clash);
  }
}

/** A file where a directory is needed, or the reverse. */
function clashError(filePath: string, clash: string): AppError {
  return errors.conflict(`${filePath} clashes with ${clash} (a file and a directory)`, {
    path: filePath,
    clash,
  });
}

function checkBase(filePath: string, baseVersion: number | undefined, current: number): void {
  if (baseVersion === undefined || baseVersion === current) return;
  throw errors.conflict(
    current === 0
      ? `${filePath} does not exist (expected version ${baseVersion})`
      : `${filePath} is at version ${current}, not ${baseVersion}; reload it and apply your change again`,
    { path: filePath, currentVersion: current, baseVersion },
  );
}

function describe(change: Planned): string {
  return change.op === 'move'
    ? `move ${change.from} → ${change.to}`
    : `${change.op} ${change.path}`;
}

function toMeta(row: FileMetaRow): FileMeta {
  return {
    path: row.file_path,
    size: Number(row.size_bytes),
    type: row.file_type ?? 'text',
    mimeType: row.mime_type ?? 'application/octet-stream',
    encoding: row.encoding as Encoding,
    isBinary: row.is_binary,
    version: row.version,
    contentHash: row.content_hash.trim(),
    lines: row.line_count,
    source: row.last_source as FileSource,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    ...(row.updated_by ? { updatedBy: row.updated_by } : {}),
  };
}

function toVersionMeta(row: VersionMetaRow): FileVersionMeta {
  return {
    version: row.version,
    operation: row.operation as FileOperation,
    contentHash: row.content_hash.trim(),
    size: Number(row.size_bytes),
    lines: row.line_count,
    encoding: row.encoding as Encoding,
    source: row.source as FileSource,
    createdAt: row.created_at.toISOString(),
    ...(row.created_by ? { createdBy: row.created_by } : {}),
    ...(row.moved_path && row.operation === 'move' ? { movedFrom: row.moved_path } : {}),
    ...(row.moved_path && row.operation === 'delete' ? { movedTo: row.moved_path } : {}),
  };
}
