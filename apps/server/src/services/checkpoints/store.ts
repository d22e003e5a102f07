import { sql, type ColumnType, type Generated, type Kysely, type Selectable } from 'kysely';
import type { Db } from '../../db/index.ts';

interface ProjectCheckpointsTable {
  id: Generated<string>;
  project_id: string;
  name: string;
  kind: string;
  created_by: string | null;
  created_at: Generated<Date>;
  chat_message_id: string | null;
  chat_hidden_ids: string[];
  config: ColumnType<unknown, string, string>;
  env_names: string[];
  file_count: number;
}

interface ProjectCheckpointFilesTable {
  checkpoint_id: string;
  file_path: string;
  version: number;
  content_hash: string;
}

type CheckpointTables = {
  project_checkpoints: ProjectCheckpointsTable;
  project_checkpoint_files: ProjectCheckpointFilesTable;
};

export type CheckpointRow = Selectable<ProjectCheckpointsTable>;
export type CheckpointFileRow = Selectable<ProjectCheckpointFilesTable>;

/** SQL for project_checkpoints and project_checkpoint_files. */
export class CheckpointsStore {
  readonly #db: Kysely<CheckpointTables>;

  constructor(db: Db) {
    this.#db = db.withTables<CheckpointTables>();
  }

  /** A checkpoint and its files (one row each, inserted from arrays in one statement). */
  async insert(input: {
    projectId: string;
    name: string;
    kind: 'manual' | 'assistant' | 'restore';
    userId: string | null;
    chatMessageId: string | null;
    chatHiddenIds: string[];
    config: unknown;
    envNames: string[];
    files: { path: string; version: number; hash: string }[];
  }): Promise<CheckpointRow> {
    const row = await this.#db
      .insertInto('project_checkpoints')
      .values({
        project_id: input.projectId,
        name: input.name,
        kind: input.kind,
        created_by: input.userId,
        chat_message_id: input.chatMessageId,
        chat_hidden_ids: input.chatHiddenIds,
        config: JSON.stringify(input.config ?? {}),
        env_names: input.envNames,
        file_count: input.files.length,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    if (input.files.length) {
      await sql`INSERT INTO project_checkpoint_files (checkpoint_id, file_path, version, content_hash)
        SELECT ${row.id}, p, v, h FROM unnest(
          ${input.files.map((f) => f.path)}::text[],
          ${input.files.map((f) => f.version)}::int[],
          ${input.files.map((f) => f.hash)}::text[]) AS t(p, v, h)`.execute(this.#db);
    }
    return row;
  }

  async find(projectId: string, id: string): Promise<CheckpointRow | undefined> {
    return this.#db
      .selectFrom('project_checkpoints')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('id', '=', id)
      .executeTakeFirst();
  }

  /** The project's checkpoints, newest first. */
  async list(projectId: string, limit: number): Promise<CheckpointRow[]> {
    return this.#db
      .selectFrom('project_checkpoints')
      .selectAll()
      .where('project_id', '=', projectId)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
  }

  async files(checkpointId: string): Promise<CheckpointFileRow[]> {
    return this.#db
      .selectFrom('project_checkpoint_files')
      .selectAll()
      .where('checkpoint_id', '=', checkpointId)
      .execute();
  }
}
