import { errors } from '../../common/errors.ts';
import type { Db } from '../../db/index.ts';
import { ActivityStore, type ActivityRow } from './store.ts';

/** Who or what caused an activity. */
export type ActivitySource = 'user' | 'claude' | 'system' | 'webhook';

export const activitySources: readonly ActivitySource[] = ['user', 'claude', 'system', 'webhook'];

/** One line of a project's activity log. */
export interface ActivityEntry {
  id: string;
  /** e.g. project_created, member_added, file_modified. */
  type: string;
  description: string;
  /** The acting user, when a user acted. */
  userId?: string;
  sourceType: ActivitySource;
  createdAt: string;
  metadata: Record<string, unknown>;
}

/** What {@link ActivityService.record} takes. */
export interface NewActivity {
  projectId: string;
  userId?: string | null;
  type: string;
  description: string;
  sourceType: ActivitySource;
  metadata?: Record<string, unknown>;
}

/** A page of activity, newest first; pass `nextCursor` as `before` for the next page. */
export interface ActivityPage {
  activity: ActivityEntry[];
  nextCursor?: string;
}

export const defaultActivityLimit = 50;
export const maxActivityLimit = 200;

/**
 * The per-project activity log. Project lifecycle and file events are written by database
 * triggers; other services record the rest (member changes, container events…) here.
 */
export class ActivityService {
  readonly #store: ActivityStore;

  constructor(db: Db) {
    this.#store = new ActivityStore(db);
  }

  /**
   * Appends an entry to a project's log. Pass `tx` (a transaction of the caller's) to make the
   * entry part of the change it describes.
   */
  async record(entry: NewActivity, tx?: Db): Promise<void> {
    if (!activitySources.includes(entry.sourceType)) {
      throw new Error(`unknown activity source: ${String(entry.sourceType)}`);
    }
    const store = tx ? new ActivityStore(tx) : this.#store;
    await store.insert({
      projectId: entry.projectId,
      userId: entry.userId ?? null,
      type: entry.type,
      description: entry.description,
      sourceType: entry.sourceType,
      metadata: entry.metadata ?? {},
    });
  }

  /**
   * A project's activity, newest first.
   * @throws AppError invalid_request when `before` is not a cursor this method handed out.
   */
  async list(
    projectId: string,
    opts: { limit?: number; before?: string } = {},
  ): Promise<ActivityPage> {
    const limit = Math.min(
      Math.max(Math.trunc(opts.limit ?? defaultActivityLimit), 1),
      maxActivityLimit,
    );
    const before = opts.before === undefined ? undefined : decodeCursor(opts.before);
    const rows = await this.#store.list(projectId, limit + 1, before);
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      activity: page.map(toEntry),
      ...(rows.length > limit && last ? { nextCursor: encodeCursor(last) } : {}),
    };
  }
}

function toEntry(row: ActivityRow): ActivityEntry {
  return {
    id: row.id,
    type: row.activity_type,
    description: row.description,
    ...(row.user_id ? { userId: row.user_id } : {}),
    sourceType: row.source_type as ActivitySource,
    createdAt: row.created_at.toISOString(),
    metadata:
      typeof row.metadata === 'object' && row.metadata !== null && !Array.isArray(row.metadata)
        ? (row.metadata as Record<string, unknown>)
        : {},
  };
}

// The cursor carries created_at to the microsecond: rows written in one millisecond would
// otherwise be skipped or repeated across pages.
function encodeCursor(row: ActivityRow): string {
  return Buffer.from(`${row.created_at_exact}|${row.id}`, 'utf8').toString('base64url');
}

const cursorPattern =
  /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)\|([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

function decodeCursor(cursor: string): { createdAt: string; id: string } {
  const match = cursorPattern.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match || Number.isNaN(Date.parse(match[1]!))) {
    throw errors.invalid('The cursor is not valid', [
      { field: 'before', message: 'must be a nextCursor from a previous page' },
    ]);
  }
  return { createdAt: match[1]!, id: match[2]! };
}
