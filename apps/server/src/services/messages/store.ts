import { type Generated, type Kysely, type Selectable } from 'kysely';
import type { Db } from '../../db/index.ts';

interface ProjectMessagesTable {
  seq: Generated<number>;
  id: Generated<string>;
  project_id: string;
  user_id: string | null;
  author_name: string;
  body: string;
  created_at: Generated<Date>;
}

type MessageTables = { project_messages: ProjectMessagesTable };

export type MessageRow = Selectable<ProjectMessagesTable>;

/** Where a page starts: after/before a message (by id) or a moment. */
export type MessageCursor = { id: string } | { at: Date };

/** SQL for project_messages (migration 091). */
export class MessagesStore {
  readonly #db: Kysely<MessageTables>;

  constructor(db: Db) {
    this.#db = db.withTables<MessageTables>();
  }

  async insert(input: {
    projectId: string;
    userId: string;
    authorName: string;
    body: string;
  }): Promise<MessageRow> {
    return this.#db
      .insertInto('project_messages')
      .values({
        project_id: input.projectId,
        user_id: input.userId,
        author_name: input.authorName,
        body: input.body,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  /**
   * Up to `limit` messages of the project, oldest first: the newest ones before `before` (or
   * the newest of all), or the oldest ones after `after`. A message-id cursor that is not in
   * this project is named in `missing` (no rows), so the caller can say which.
   */
  async page(
    projectId: string,
    options: { before?: MessageCursor; after?: MessageCursor; limit: number },
  ): Promise<{ rows: MessageRow[] } | { missing: 'before' | 'after' }> {
    let query = this.#db
      .selectFrom('project_messages')
      .selectAll()
      .where('project_id', '=', projectId);
    for (const [side, cursor] of [
      ['before', options.before],
      ['after', options.after],
    ] as const) {
      if (!cursor) continue;
      if ('id' in cursor) {
        const anchor = await this.#db
          .selectFrom('project_messages')
          .select('seq')
          .where('project_id', '=', projectId)
          .where('id', '=', cursor.id)
          .executeTakeFirst();
        if (!anchor) return { missing: side };
        query = query.where('seq', side === 'before' ? '<' : '>', anchor.seq);
      } else {
        query = query.where('created_at', side === 'before' ? '<' : '>', cursor.at);
      }
    }
    if (options.after) {
      return { rows: await query.orderBy('seq', 'asc').limit(options.limit).execute() };
    }
    const newest = await query.orderBy('seq', 'desc').limit(options.limit).execute();
    return { rows: newest.reverse() };
  }
}
