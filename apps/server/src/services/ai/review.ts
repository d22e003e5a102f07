import { errors } from '../../common/errors.ts';
import type { Db } from '../../db/index.ts';
import type { ActivityService } from '../activity/index.ts';
import { operationOf, type FileOperation } from './changesets.ts';
import type { AiActor, AiFiles } from './host.ts';
import { computeHunks, locateLines, splitLines, swapLines, type HunkSpec } from './hunks.ts';
import { AiStore, type ChangesetFileRow, type ChangesetRow } from './store.ts';

/** Where a hunk stands in the review. */
export type HunkState = 'pending' | 'accepted' | 'rejected';

/** One hunk as the review shows it (API.md `hunks[]`). */
export interface ReviewHunk {
  id: string;
  oldStart: number;
  oldLines: number;
  newStart: number;
  newLines: number;
  diff: string;
  state: HunkState;
  decidedBy: string | null;
  decidedAt: string | null;
}

/** A changeset as a review: per file, its hunks and their states. */
export interface ChangesetReview {
  id: string;
  projectId: string;
  status: 'open' | 'applied' | 'reverted' | 'discarded';
  origin: string;
  requestId: string | null;
  createdAt: string;
  files: {
    path: string;
    operation: FileOperation;
    beforeVersion: number | null;
    afterVersion: number | null;
    diff: string;
    hunks: ReviewHunk[];
  }[];
}

interface Loaded {
  row: ChangesetRow;
  files: { file: ChangesetFileRow; hunks: HunkSpec[] }[];
  states: Map<string, { state: 'accepted' | 'rejected'; by: string | null; at: Date }>;
}

async function load(db: Db, projectId: string, changesetId: string): Promise<Loaded> {
  const store = new AiStore(db);
  const row = await store.findChangeset(projectId, changesetId);
  if (!row) throw errors.notFound('changeset');
  const [rows, decisions] = await Promise.all([
    store.changesetFiles(row.id),
    store.hunkDecisions(row.id),
  ]);
  return {
    row,
    files: rows.map((file) => ({
      file,
      hunks: computeHunks(file.file_path, file.before_content, file.after_content),
    })),
    states: new Map(
      decisions.map((d) => [
        d.hunk_id,
        { state: d.state as 'accepted' | 'rejected', by: d.decided_by, at: d.decided_at },
      ]),
    ),
  };
}

function view(loaded: Loaded): ChangesetReview {
  const { row } = loaded;
  return {
    id: row.id,
    projectId: row.project_id,
    status: row.status as ChangesetReview['status'],
    origin: row.origin,
    requestId: row.request_id,
    createdAt: row.created_at.toISOString(),
    files: loaded.files.map(({ file, hunks }) => ({
      path: file.file_path,
      operation: operationOf(file),
      beforeVersion: file.before_version,
      afterVersion: file.after_version,
      diff: file.diff,
      hunks: hunks.map((h) => {
        const decided = loaded.states.get(h.id);
        return {
          id: h.id,
          oldStart: h.oldStart,
          oldLines: h.oldLines,
          newStart: h.newStart,
          newLines: h.newLines,
          diff: h.diff,
          state: decided?.state ?? 'pending',
          decidedBy: decided?.by ?? null,
          decidedAt: decided?.at.toISOString() ?? null,
        };
      }),
    })),
  };
}

/**
 * A changeset with its hunks and their review states.
 * @throws AppError not_found.
 */
export async function loadReview(
  db: Db,
  projectId: string,
  changesetId: string,
): Promise<ChangesetReview> {
  return view(await load(db, projectId, changesetId));
}

/** A pending hunk where it is now in its file. */
export interface PendingHunk {
  changesetId: string;
  hunkId: string;
  /**
   * 1-based first line of the hunk's text in the file as it is now; for a removal (`lines`
   * 0), the line after which the text was removed (0: at the top). Null when it cannot be
   * found any more (the file changed there, or is gone).
   */
  line: number | null;
  /** How many lines of the file it covers now (0 for a removal). */
  lines: number;
}

/** The files of a project with hunks nobody has decided yet, and where those hunks are now. */
export interface PendingReview {
  files: { path: string; hunks: PendingHunk[] }[];
}

/** How many of the latest applied changesets can still show as pending. */
export const pendingChangesetsLimit = 50;

/**
 * Every pending hunk of the project's latest {@link pendingChangesetsLimit} applied
 * changesets, by file, each re-located in the file as it is now by its context.
 */
export async function pendingReview(
  deps: { db: Db; files: AiFiles },
  projectId: string,
): Promise<PendingReview> {
  const recent = await new AiStore(deps.db).recentAppliedChangesets(
    projectId,
    pendingChangesetsLimit,
  );
  const byPath = new Map<string, { changesetId: string; hunk: HunkSpec }[]>();
  // Oldest first, so a file's marks follow the order of the turns.
  for (const { row, files, decisions } of recent.reverse()) {
    const decided = new Set(decisions.map((d) => d.hunk_id));
    for (const file of files) {
      const hunks = computeHunks(file.file_path, file.before_content, file.after_content);
      for (const hunk of hunks) {
        if (decided.has(hunk.id)) continue;
        const list = byPath.get(file.file_path) ?? [];
        list.push({ changesetId: row.id, hunk });
        byPath.set(file.file_path, list);
      }
    }
  }
  const files = await Promise.all(
    [...byPath].map(async ([path, pending]) => {
      const now = await deps.files.read(projectId, path);
      const lines = now ? splitLines(now.content) : null;
      return {
        path,
        hunks: pending.map(({ changesetId, hunk }) => ({
          changesetId,
          hunkId: hunk.id,
          ...whereNow(lines, hunk),
        })),
      };
    }),
  );
  return { files: files.sort((a, b) => a.path.localeCompare(b.path)) };
}

/** Where a pending hunk's new text is in the file now (`lines`: the file's lines, null: gone). */
function whereNow(lines: string[] | null, h: HunkSpec): { line: number | null; lines: number } {
  if (lines === null) return { line: null, lines: 0 };
  if (h.wholeFile === 'create') return { line: 1, lines: lines.length };
  if (h.wholeFile === 'delete') return { line: null, lines: 0 };
  const at = locateLines(lines, {
    from: h.newText,
    before: h.newBefore,
    after: h.newAfter,
    expected: Math.max(0, h.newLines === 0 ? h.newStart : h.newStart - 1),
  });
  if (at === undefined) return { line: null, lines: h.newLines };
  return { line: h.newLines === 0 ? at : at + 1, lines: h.newLines };
}

/**
 * Accepts, rejects or returns to pending (`pending`: the decision undone) hunks of a changeset
 * (`hunkId` one, or every hunk). Rejecting restores the hunk's old text as a new version of
 * its file, re-located by its context when the file changed since; accepting (or returning to
 * pending) a rejected hunk puts its new text back the same way; otherwise only the decision is
 * recorded. All files change in one transaction, or none.
 * @throws AppError not_found (changeset, hunk), conflict (the changeset is still running or
 *   was reverted; a hunk cannot be found in the file as it is now: nothing changes).
 */
export async function decideHunks(
  deps: { db: Db; files: AiFiles; activity: ActivityService | undefined },
  input: {
    projectId: string;
    changesetId: string;
    hunkId: string | null;
    decision: HunkState;
    userId: string;
  },
): Promise<{ review: ChangesetReview; changed: { id: string; path: string }[] }> {
  const loaded = await load(deps.db, input.projectId, input.changesetId);
  const { row } = loaded;
  if (row.status === 'open') {
    throw errors.conflict('This changeset is still being written; wait for its turn to finish');
  }
  if (row.status === 'reverted') {
    throw errors.conflict('This changeset was reverted as a whole; there is nothing to review');
  }
  const targets = loaded.files.flatMap(({ file, hunks }) =>
    hunks
      .filter((h) => input.hunkId === null || h.id === input.hunkId)
      .map((hunk) => ({ file, hunk })),
  );
  if (input.hunkId !== null && targets.length === 0) throw errors.notFound('hunk');
  const changing = targets.filter(
    (t) => (loaded.states.get(t.hunk.id)?.state ?? 'pending') !== input.decision,
  );
  if (changing.length === 0) return { review: view(loaded), changed: [] };

  // Which hunks move text: into rejected (new → old), and out of rejected (old → new): a
  // target's direction is the same for all (rejecting, or leaving rejected).
  const byPath = new Map<string, { file: ChangesetFileRow; hunks: HunkSpec[] }>();
  for (const t of changing) {
    const was = loaded.states.get(t.hunk.id)?.state ?? 'pending';
    const moves = input.decision === 'rejected' || was === 'rejected';
    if (!moves) continue;
    const entry = byPath.get(t.file.file_path) ?? { file: t.file, hunks: [] };
    entry.hunks.push(t.hunk);
    byPath.set(t.file.file_path, entry);
  }
  const changes: { path: string; content: string | null; baseVersion: number }[] = [];
  for (const [filePath, { hunks }] of byPath) {
    const now = await deps.files.read(input.projectId, filePath);
    const rejecting = input.decision === 'rejected';
    let lines: string[] | null = now ? splitLines(now.content) : null;
    // Bottom-up, so earlier hunks' positions still hold in the untouched part above.
    const ordered = [...hunks].sort((x, y) =>
      rejecting ? y.newStart - x.newStart : y.oldStart - x.oldStart,
    );
    for (const h of ordered) {
      lines = applyHunk(lines, h, rejecting, filePath);
    }
    const content = lines === null ? null : lines.join('');
    if (content === (now?.content ?? null)) continue;
    changes.push({ path: filePath, content, baseVersion: now?.version ?? 0 });
  }
  const actor: AiActor = { userId: input.userId, source: 'user' };
  await deps.files.apply(input.projectId, changes, actor);
  const store = new AiStore(deps.db);
  const changed = changing.map((t) => ({ id: t.hunk.id, path: t.file.file_path }));
  if (input.decision === 'pending') {
    await store.clearHunkDecisions(
      row.id,
      changed.map((h) => h.id),
    );
  } else {
    const state = input.decision;
    await store.setHunkDecisions(
      row.id,
      changed.map((h) => ({ hunkId: h.id, path: h.path, state })),
      input.userId,
    );
  }
  if (deps.activity) {
    const paths = [...new Set(changed.map((h) => h.path))];
    const verb = activityVerbs[input.decision];
    await deps.activity.record({
      projectId: input.projectId,
      userId: input.userId,
      type: activityTypes[input.decision],
      description:
        input.hunkId === null
          ? `${verb} the assistant's changes (${count(changing.length, 'hunk')} in ${count(paths.length, 'file')})`
          : `${verb} an assistant change in ${paths[0]}`,
      sourceType: 'user',
      metadata: {
        changesetId: row.id,
        hunks: changed,
        written: changes.map((c) => c.path),
      },
    });
  }
  return { review: await loadReview(deps.db, input.projectId, row.id), changed };
}

const activityTypes: Record<HunkState, string> = {
  accepted: 'ai_hunk_accepted',
  rejected: 'ai_hunk_rejected',
  pending: 'ai_hunk_undone',
};
const activityVerbs: Record<HunkState, string> = {
  accepted: 'Accepted',
  rejected: 'Rejected',
  pending: 'Returned to pending',
};

/** "1 hunk", "3 hunks". */
function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/**
 * One hunk's text swapped in `lines` (null: the file is absent). Rejecting puts the old text
 * back; un-rejecting puts the new text back.
 * @throws AppError conflict when the hunk cannot be found.
 */
function applyHunk(
  lines: string[] | null,
  h: HunkSpec,
  rejecting: boolean,
  filePath: string,
): string[] | null {
  const conflict = (why: string) =>
    errors.conflict(
      `Cannot ${rejecting ? 'reject' : 'restore'} the change at line ${rejecting ? h.newStart : h.oldStart} of ${filePath}: ${why}. Nothing was changed; edit the file by hand.`,
      { path: filePath, hunkId: h.id },
    );
  if (h.wholeFile) {
    // The file itself appeared (create) or went away (delete) in the turn: it exists after
    // the decision when (create and not rejected) or (delete and rejected).
    const exists = (h.wholeFile === 'create') !== rejecting;
    const text = h.wholeFile === 'create' ? h.newText : h.oldText;
    if (!exists) {
      if (lines === null) return null;
      if (lines.join('') !== text.join('')) throw conflict('the file changed since');
      return null;
    }
    if (lines !== null) throw conflict('the file exists again');
    return text;
  }
  if (lines === null) throw conflict('the file was deleted since');
  const swapped = rejecting
    ? swapLines(lines, {
        from: h.newText,
        to: h.oldText,
        before: h.newBefore,
        after: h.newAfter,
        expected: Math.max(0, h.newLines === 0 ? h.newStart : h.newStart - 1),
      })
    : swapLines(lines, {
        from: h.oldText,
        to: h.newText,
        before: h.oldBefore,
        after: h.oldAfter,
        expected: Math.max(0, h.oldLines === 0 ? h.oldStart : h.oldStart - 1),
      });
  if (!swapped) throw conflict('those lines changed since');
  return swapped;
}
