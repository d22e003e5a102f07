import { createTwoFilesPatch } from 'diff';
import { errors } from '../../common/errors.ts';
import type { Db } from '../../db/index.ts';
import { AiStore, type ChangesetFileRow, type FileSide } from './store.ts';
import type { AiActor, AiFiles } from './host.ts';

/** Diffs bigger than this are summarised instead of stored. */
const maxDiffChars = 200_000;

/** How a file changed over a changeset. */
export type FileOperation = 'create' | 'update' | 'delete';

/** A file of a changeset as the API shows it. */
export interface ChangesetFile {
  path: string;
  operation: FileOperation;
  beforeVersion: number | null;
  afterVersion: number | null;
  diff: string;
}

/** The file changes of one AI turn (API shape). */
export interface Changeset {
  id: string;
  projectId: string;
  status: 'open' | 'applied' | 'reverted' | 'discarded';
  origin: string;
  requestId: string | null;
  createdAt: string;
  files: ChangesetFile[];
}

/** A unified diff of one file between two contents (null: absent), bounded in size and time. */
export function unifiedDiff(filePath: string, before: string | null, after: string | null): string {
  const a = before ?? '';
  const b = after ?? '';
  if (a === b) return '';
  const patch = createTwoFilesPatch(
    before === null ? '/dev/null' : `a/${filePath}`,
    after === null ? '/dev/null' : `b/${filePath}`,
    a,
    b,
    undefined,
    undefined,
    { context: 3, timeout: 500 },
  );
  if (patch === undefined) return `(diff of ${filePath} too expensive to compute)`;
  // Drop the "Index:"/"====" banner lines the library adds.
  const body = patch.replace(/^={10,}\n/m, '');
  return body.length > maxDiffChars
    ? `${body.slice(0, maxDiffChars)}\n… (diff truncated: ${body.length} characters)\n`
    : body;
}

/** create / update / delete from the first and last state of a file. */
export function operationOf(
  row: Pick<ChangesetFileRow, 'before_hash' | 'after_hash'>,
): FileOperation {
  if (row.before_hash === null) return 'create';
  if (row.after_hash === null) return 'delete';
  return 'update';
}

/**
 * Collects one turn's file changes into a changeset, created on the first change (a turn that
 * changes nothing has none). With a request id the changeset is that request's, whatever the
 * attempt.
 */
export class ChangesetRecorder {
  readonly #store: AiStore;
  readonly #input: {
    projectId: string;
    userId: string | null;
    origin: 'chat' | 'modify' | 'process';
    requestId: string | null;
  };
  #id: string | undefined;
  readonly #paths = new Set<string>();

  constructor(
    db: Db,
    input: {
      projectId: string;
      userId: string | null;
      origin: 'chat' | 'modify' | 'process';
      requestId: string | null;
    },
  ) {
    this.#store = new AiStore(db);
    this.#input = input;
  }

  /** The changeset id, once something changed. */
  get id(): string | undefined {
    return this.#id;
  }

  /** Paths touched so far, in order. */
  get paths(): string[] {
    return [...this.#paths];
  }

  /** The changeset's id, creating it if needed. */
  async ensure(): Promise<string> {
    this.#id ??= (await this.#store.openChangeset(this.#input)).id;
    return this.#id;
  }

  /** Records a write or deletion of `filePath`: `before` is the state just before this change. */
  async record(filePath: string, before: FileSide, after: FileSide): Promise<void> {
    const id = await this.ensure();
    this.#paths.add(filePath);
    await this.#store.recordFile(id, filePath, before, after, (first) =>
      unifiedDiff(filePath, first, after.content),
    );
  }

  /** Closes the changeset: `applied` when files changed, `discarded` when nothing remained. */
  async close(summary: string): Promise<string | undefined> {
    if (!this.#id) return undefined;
    await this.#store.pruneNoOpFiles(this.#id);
    const files = await this.#store.changesetFiles(this.#id);
    await this.#store.setChangesetStatus(this.#id, files.length ? 'applied' : 'discarded', {
      summary: summary.slice(0, 2000),
    });
    return files.length ? this.#id : undefined;
  }
}

/** Loads a changeset with its files. */
export async function loadChangeset(
  db: Db,
  projectId: string,
  id: string,
): Promise<Changeset | undefined> {
  const store = new AiStore(db);
  const row = await store.findChangeset(projectId, id);
  if (!row) return undefined;
  const files = await store.changesetFiles(id);
  return {
    id: row.id,
    projectId: row.project_id,
    status: row.status as Changeset['status'],
    origin: row.origin,
    requestId: row.request_id,
    createdAt: row.created_at.toISOString(),
    files: files.map((f) => ({
      path: f.file_path,
      operation: operationOf(f),
      beforeVersion: f.before_version,
      afterVersion: f.after_version,
      diff: f.diff,
    })),
  };
}

/** A file that changed after the changeset wrote it. */
export interface RevertConflict {
  path: string;
  reason: string;
}

/**
 * Puts every file of a changeset back as it was before (a new version each; history is never
 * rewritten). Refuses with 409 when a file changed since, unless `force`.
 * @throws AppError not_found (no such changeset in the project), conflict (already reverted,
 *   still open, or files changed since; details list them).
 */
export async function revertChangeset(
  deps: { db: Db; files: AiFiles },
  input: { projectId: string; changesetId: string; actor: AiActor; force: boolean },
): Promise<{ reverted: string[] }> {
  const store = new AiStore(deps.db);
  const row = await store.findChangeset(input.projectId, input.changesetId);
  if (!row) throw errors.notFound('changeset');
  if (row.status === 'reverted') throw errors.conflict('This changeset was already reverted');
  if (row.status === 'open') {
    throw errors.conflict('This changeset is still being written; wait for its turn to finish');
  }
  const files = await store.changesetFiles(row.id);
  const conflicts: RevertConflict[] = [];
  const current = new Map<string, string | null>();
  for (const f of files) {
    const now = await deps.files.read(input.projectId, f.file_path);
    const hash = now?.hash ?? null;
    current.set(f.file_path, hash);
    if (hash !== f.after_hash) {
      conflicts.push({
        path: f.file_path,
        reason:
          hash === null
            ? 'deleted since'
            : f.after_hash === null
              ? 'created again since'
              : 'changed since',
      });
    }
  }
  if (conflicts.length && !input.force) {
    throw errors.conflict(
      `${conflicts.length} file(s) changed after this changeset; revert with force to overwrite them`,
      { conflicts },
    );
  }
  const reverted = await restoreFiles(deps.files, input.projectId, files, input.actor, current);
  await store.setChangesetStatus(row.id, 'reverted', { revertedBy: input.actor.userId });
  return { reverted };
}

/**
 * Writes each file's "before" state back (deleting files the changeset created). Files already
 * in that state are left alone. Returns the paths written.
 */
export async function restoreFiles(
  files: AiFiles,
  projectId: string,
  rows: ChangesetFileRow[],
  actor: AiActor,
  currentHashes?: Map<string, string | null>,
): Promise<string[]> {
  const changes = [];
  for (const f of [...rows].reverse()) {
    const hash = currentHashes?.has(f.file_path)
      ? currentHashes.get(f.file_path)!
      : ((await files.read(projectId, f.file_path))?.hash ?? null);
    if (hash === f.before_hash) continue;
    changes.push({ path: f.file_path, content: f.before_content });
  }
  await files.apply(projectId, changes, actor);
  return changes.map((c) => c.path).reverse();
}

/**
 * Undoes what an interrupted attempt of a queued request wrote, so the next attempt starts from
 * the project as it was: files it wrote that nobody touched since go back; files someone else
 * changed since are kept (their work wins) and reported.
 */
export async function rollBackAttempt(
  deps: { db: Db; files: AiFiles },
  input: { projectId: string; changesetId: string; actor: AiActor },
): Promise<{ restored: string[]; kept: string[] }> {
  const store = new AiStore(deps.db);
  const rows = await store.changesetFiles(input.changesetId);
  const ours: ChangesetFileRow[] = [];
  const kept: string[] = [];
  const hashes = new Map<string, string | null>();
  for (const f of rows) {
    const hash = (await deps.files.read(input.projectId, f.file_path))?.hash ?? null;
    hashes.set(f.file_path, hash);
    if (hash === f.after_hash || hash === f.before_hash) ours.push(f);
    else kept.push(f.file_path);
  }
  const restored = await restoreFiles(deps.files, input.projectId, ours, input.actor, hashes);
  await store.clearChangesetFiles(input.changesetId);
  await store.setChangesetStatus(input.changesetId, 'open');
  return { restored, kept };
}
