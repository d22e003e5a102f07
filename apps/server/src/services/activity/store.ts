import { sql, type Generated, type Kysely } from 'kysely';
import type { Db } from '../../db/index.ts';

interface ProjectActivityTable {
  id: Generated<string>;
  project_id: string;
  user_id: string | null;
  activity_type: string;
  description: string;
  metadata: Generated<unknown>;
  source_type: string;
  created_at: Generated<Date>;
}

type ActivityTables = {
  project_activity: ProjectActivityTable;
};

/** A row as listed, with created_at in full (microsecond) precision for cursors. */
export interface ActivityRow {
  id: string;
  user_id: string | null;
  activity_type: string;
  description: string;
  metadata: unknown;
  source_type: string;
  created_at: Date;
  /** created_at as UTC ISO text with microseconds; a JS Date would drop them. */
  created_at_exact: string;
}

/** SQL for project_activity (rows are also written by the triggers of migration 001). */
export class ActivityStore {
  readonly #db: Kysely<ActivityTables>;

  constructor(db: Db) {
    this.#db = db.withTables<ActivityTables>();
  }

  async insert(row: {
    projectId: string;
    userId: string | null;
    type: string;
    description: string;
    sourceType: string;
    metadata: Record<string, unknown>;
  }): Promise<void> {
    await this.#db
      .insertInto('project_activity')
      .values({
        project_id: row.projectId,
        user_id: row.userId,
        activity_type: row.type,
        description: row.description,
        source_type: row.sourceType,
        metadata: JSON.stringify(row.metadata),
      })
      .execute();
  }

  /** Newest first; `before` excludes everything at or after that (created_at, id). */
  list(
    projectId: string,
    limit: number,
    before?: { createdAt: string; id: string },
  ): Promise<ActivityRow[]> {
    let query = this.#db
      .selectFrom('project_activity')
      .select([
        'id',
        'user_id',
        'activity_type',
        'description',
        'metadata',
        'source_type',
        'created_at',
        sql<string>`to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`.as(
          'created_at_exact',
        ),
      ])
      .where('project_id', '=', projectId);
    if (before) {
      query = query.where(
        sql<boolean>`(created_at, id) < (${before.createdAt}::timestamptz, ${before.id}::uuid)`,
      );
    }
    return query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
  }
}
