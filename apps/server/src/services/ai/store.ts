import { sql, type Generated, type Kysely, type Selectable } from 'kysely';
import type { Db } from '../../db/index.ts';

interface AiChangesetsTable {
  id: Generated<string>;
  project_id: string;
  user_id: string | null;
  request_id: string | null;
  origin: string;
  status: Generated<string>;
  summary: Generated<string>;
  created_at: Generated<Date>;
  completed_at: Date | null;
  reverted_at: Date | null;
  reverted_by: string | null;
}

interface AiChangesetFilesTable {
  changeset_id: string;
  file_path: string;
  seq: number;
  before_content: string | null;
  before_hash: string | null;
  before_version: number | null;
  after_content: string | null;
  after_hash: string | null;
  after_version: number | null;
  diff: Generated<string>;
  updated_at: Generated<Date>;
}

interface AiRequestsTable {
  id: Generated<string>;
  project_id: string;
  user_id: string | null;
  request_type: string;
  message: string;
  context: Generated<unknown>;
  status: Generated<string>;
  result: unknown;
  error_message: string | null;
  job_id: string | null;
  attempt: Generated<number>;
  lease_until: Date | null;
  changeset_id: string | null;
  created_at: Generated<Date>;
  started_at: Date | null;
  finished_at: Date | null;
}

interface AiChatMessagesTable {
  id: Generated<string>;
  project_id: string;
  user_id: string | null;
  role: string;
  content: string;
  tools: Generated<unknown>;
  changeset_id: string | null;
  usage: unknown;
  error_message: string | null;
  created_at: Generated<Date>;
  rewound_at: Generated<Date | null>;
  rewound_by: Generated<string | null>;
}

interface AiHunkDecisionsTable {
  changeset_id: string;
  hunk_id: string;
  file_path: string;
  state: string;
  decided_by: string | null;
  decided_at: Generated<Date>;
}

interface ClaudeInteractionsTable {
  id: Generated<string>;
  project_id: string;
  user_id: string | null;
  interaction_type: string;
  user_message: string;
  claude_response: string;
  context_data: unknown;
  affected_files: string[];
  commands_executed: string[];
  success: boolean;
  error_message: string | null;
  execution_time_ms: number;
  model: string;
  provider: string;
  request_id: string | null;
  changeset_id: string | null;
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_input_tokens: number;
  stop_reason: string | null;
  created_at: Date;
  completed_at: Date;
}

type AiTables = {
  ai_changesets: AiChangesetsTable;
  ai_changeset_files: AiChangesetFilesTable;
  ai_requests: AiRequestsTable;
  ai_chat_messages: AiChatMessagesTable;
  ai_hunk_decisions: AiHunkDecisionsTable;
  claude_interactions: ClaudeInteractionsTable;
};

export type ChangesetRow = Selectable<AiChangesetsTable>;
export type ChangesetFileRow = Selectable<AiChangesetFilesTable>;
export type RequestRow = Selectable<AiRequestsTable>;
export type ChatMessageRow = Selectable<AiChatMessagesTable>;
export type HunkDecisionRow = Selectable<AiHunkDecisionsTable>;

/** One side (before or after) of a file in a changeset; null content: the file did not exist. */
export interface FileSide {
  content: string | null;
  hash: string | null;
  version: number | null;
}

/** A finished AI run, as recorded in claude_interactions. */
export interface InteractionRecord {
  projectId: string;
  userId: string | null;
  type: string;
  userMessage: string;
  response: string;
  context: Record<string, unknown>;
  affectedFiles: string[];
  commands: string[];
  success: boolean;
  error: string | null;
  startedAt: Date;
  durationMs: number;
  model: string;
  provider: string;
  requestId: string | null;
  changesetId: string | null;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  stopReason: string | null;
}

/**
 * SQL for the AI tables (ai_changesets, ai_changeset_files, ai_requests, ai_chat_messages) and
 * the AI's rows in claude_interactions. Construct it over a transaction to make calls atomic.
 */
export class AiStore {
  readonly #db: Kysely<AiTables>;

  constructor(db: Db) {
    this.#db = db.withTables<AiTables>();
  }

  // ── changesets ──

  /** A new open changeset, or (with a request id) that request's existing one. */
  async openChangeset(input: {
    projectId: string;
    userId: string | null;
    origin: 'chat' | 'modify' | 'process';
    requestId: string | null;
  }): Promise<ChangesetRow> {
    const values = {
      project_id: input.projectId,
      user_id: input.userId,
      origin: input.origin,
      request_id: input.requestId,
    };
    if (input.requestId === null) {
      return this.#db
        .insertInto('ai_changesets')
        .values(values)
        .returningAll()
        .executeTakeFirstOrThrow();
    }
    // ON CONFLICT DO UPDATE (a no-op update) returns the existing row too.
    return this.#db
      .insertInto('ai_changesets')
      .values(values)
      .onConflict((oc) => oc.column('request_id').doUpdateSet({ request_id: input.requestId }))
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  async findChangeset(projectId: string, id: string): Promise<ChangesetRow | undefined> {
    return this.#db
      .selectFrom('ai_changesets')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('id', '=', id)
      .executeTakeFirst();
  }

  async findChangesetByRequest(requestId: string): Promise<ChangesetRow | undefined> {
    return this.#db
      .selectFrom('ai_changesets')
      .selectAll()
      .where('request_id', '=', requestId)
      .executeTakeFirst();
  }

  /** Locks the changeset row for the rest of the transaction. */
  async lockChangeset(id: string): Promise<ChangesetRow | undefined> {
    return this.#db
      .selectFrom('ai_changesets')
      .selectAll()
      .where('id', '=', id)
      .forUpdate()
      .executeTakeFirst();
  }

  async setChangesetStatus(
    id: string,
    status: 'open' | 'applied' | 'reverted' | 'discarded',
    extra: { summary?: string; revertedBy?: string | null } = {},
  ): Promise<void> {
    await this.#db
      .updateTable('ai_changesets')
      .set({
        status,
        ...(extra.summary !== undefined ? { summary: extra.summary } : {}),
        ...(status === 'applied' || status === 'discarded' ? { completed_at: new Date() } : {}),
        ...(status === 'reverted'
          ? { reverted_at: new Date(), reverted_by: extra.revertedBy ?? null }
          : {}),
        ...(status === 'open' ? { completed_at: null } : {}),
      })
      .where('id', '=', id)
      .execute();
  }

  /**
   * Records a file's state after a write: the first touch also keeps the state before it
   * (later touches keep that first "before").
   */
  async recordFile(
    changesetId: string,
    filePath: string,
    before: FileSide,
    after: FileSide,
    diff: (beforeContent: string | null) => string,
  ): Promise<ChangesetFileRow> {
    const existing = await this.#db
      .selectFrom('ai_changeset_files')
      .selectAll()
      .where('changeset_id', '=', changesetId)
      .where('file_path', '=', filePath)
      .forUpdate()
      .executeTakeFirst();
    if (existing) {
      return this.#db
        .updateTable('ai_changeset_files')
        .set({
          after_content: after.content,
          after_hash: after.hash,
          after_version: after.version,
          diff: diff(existing.before_content),
          updated_at: new Date(),
        })
        .where('changeset_id', '=', changesetId)
        .where('file_path', '=', filePath)
        .returningAll()
        .executeTakeFirstOrThrow();
    }
    const seq = await this.#db
      .selectFrom('ai_changeset_files')
      .select(sql<number>`coalesce(max(seq), 0) + 1`.as('next'))
      .where('changeset_id', '=', changesetId)
      .executeTakeFirstOrThrow();
    return this.#db
      .insertInto('ai_changeset_files')
      .values({
        changeset_id: changesetId,
        file_path: filePath,
        seq: seq.next,
        before_content: before.content,
        before_hash: before.hash,
        before_version: before.version,
        after_content: after.content,
        after_hash: after.hash,
        after_version: after.version,
        diff: diff(before.content),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  /** The files of a changeset in the order they were first touched. */
  async changesetFiles(changesetId: string): Promise<ChangesetFileRow[]> {
    return this.#db
      .selectFrom('ai_changeset_files')
      .selectAll()
      .where('changeset_id', '=', changesetId)
      .orderBy('seq')
      .execute();
  }

  /**
   * The files, and the hunk decisions, of the project's latest `limit` applied changesets
   * (newest first): what may still hold pending hunks.
   */
  async recentAppliedChangesets(
    projectId: string,
    limit: number,
  ): Promise<{ row: ChangesetRow; files: ChangesetFileRow[]; decisions: HunkDecisionRow[] }[]> {
    const rows = await this.#db
      .selectFrom('ai_changesets')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('status', '=', 'applied')
      .orderBy('created_at', 'desc')
      .limit(limit)
      .execute();
    if (rows.length === 0) return [];
    const ids = rows.map((r) => r.id);
    const [files, decisions] = await Promise.all([
      this.#db
        .selectFrom('ai_changeset_files')
        .selectAll()
        .where('changeset_id', 'in', ids)
        .orderBy('seq')
        .execute(),
      this.#db
        .selectFrom('ai_hunk_decisions')
        .selectAll()
        .where('changeset_id', 'in', ids)
        .execute(),
    ]);
    return rows.map((row) => ({
      row,
      files: files.filter((f) => f.changeset_id === row.id),
      decisions: decisions.filter((d) => d.changeset_id === row.id),
    }));
  }

  /** Drops entries whose file did not exist before and does not now (created, then deleted). */
  async pruneNoOpFiles(changesetId: string): Promise<void> {
    await this.#db
      .deleteFrom('ai_changeset_files')
      .where('changeset_id', '=', changesetId)
      .where('before_hash', 'is', null)
      .where('after_hash', 'is', null)
      .execute();
  }

  async clearChangesetFiles(changesetId: string): Promise<void> {
    await this.#db
      .deleteFrom('ai_changeset_files')
      .where('changeset_id', '=', changesetId)
      .execute();
  }

  // ── queued requests ──

  async insertRequest(input: {
    projectId: string;
    userId: string;
    type: string;
    message: string;
    context: unknown;
  }): Promise<RequestRow> {
    return this.#db
      .insertInto('ai_requests')
      .values({
        project_id: input.projectId,
        user_id: input.userId,
        request_type: input.type,
        message: input.message,
        context: JSON.stringify(input.context ?? {}),
        result: null,
        error_message: null,
        job_id: null,
        lease_until: null,
        changeset_id: null,
        started_at: null,
        finished_at: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  async setRequestJob(id: string, jobId: string): Promise<void> {
    await this.#db.updateTable('ai_requests').set({ job_id: jobId }).where('id', '=', id).execute();
  }

  async findRequest(id: string): Promise<RequestRow | undefined> {
    return this.#db.selectFrom('ai_requests').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /**
   * Takes a queued (or abandoned running) request for a new attempt with a fresh lease.
   * @returns undefined when it already finished (a redelivered job has nothing to do).
   */
  async claimRequest(
    id: string,
    jobId: string,
    leaseSeconds: number,
  ): Promise<RequestRow | undefined> {
    return this.#db
      .updateTable('ai_requests')
      .set({
        status: 'running',
        attempt: sql`attempt + 1`,
        job_id: jobId,
        lease_until: sql`now() + make_interval(secs => ${leaseSeconds})`,
        started_at: sql`coalesce(started_at, now())`,
      })
      .where('id', '=', id)
      .where('status', 'in', ['queued', 'running'])
      .returningAll()
      .executeTakeFirst();
  }

  /** Extends the lease of `attempt`; false when another attempt has taken the request. */
  async renewLease(id: string, attempt: number, leaseSeconds: number): Promise<boolean> {
    const r = await this.#db
      .updateTable('ai_requests')
      .set({ lease_until: sql`now() + make_interval(secs => ${leaseSeconds})` })
      .where('id', '=', id)
      .where('attempt', '=', attempt)
      .where('status', '=', 'running')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Finishes `attempt` (only if it still holds the request). */
  async finishRequest(
    id: string,
    attempt: number,
    outcome: {
      status: 'succeeded' | 'failed';
      result: unknown;
      error: string | null;
      changesetId: string | null;
    },
  ): Promise<boolean> {
    const r = await this.#db
      .updateTable('ai_requests')
      .set({
        status: outcome.status,
        result: JSON.stringify(outcome.result),
        error_message: outcome.error,
        changeset_id: outcome.changesetId,
        lease_until: null,
        finished_at: new Date(),
      })
      .where('id', '=', id)
      .where('attempt', '=', attempt)
      .where('status', '=', 'running')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Hands `attempt`'s request back to the queue (shutdown, retryable failure). */
  async releaseRequest(id: string, attempt: number): Promise<void> {
    await this.#db
      .updateTable('ai_requests')
      .set({ status: 'queued', lease_until: null })
      .where('id', '=', id)
      .where('attempt', '=', attempt)
      .where('status', '=', 'running')
      .execute();
  }

  /** Running requests whose lease ran out: their worker is gone. Marks them queued again. */
  async reclaimExpired(limit = 50): Promise<RequestRow[]> {
    return this.#db
      .updateTable('ai_requests')
      .set({ status: 'queued', lease_until: null })
      .where('id', 'in', (qb) =>
        qb
          .selectFrom('ai_requests')
          .select('id')
          .where('status', '=', 'running')
          .where('lease_until', '<', sql<Date>`now()`)
          .limit(limit),
      )
      .where('status', '=', 'running')
      .returningAll()
      .execute();
  }

  /** Gives a request up for good (e.g. every delivery was spent). */
  async failRequest(id: string, error: string): Promise<boolean> {
    const r = await this.#db
      .updateTable('ai_requests')
      .set({ status: 'failed', error_message: error, lease_until: null, finished_at: new Date() })
      .where('id', '=', id)
      .where('status', 'in', ['queued', 'running'])
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  // ── chat ──

  async insertChatMessage(input: {
    projectId: string;
    userId: string | null;
    role: 'user' | 'assistant';
    content: string;
    tools?: unknown[];
    changesetId?: string | null;
    usage?: unknown;
    error?: string | null;
  }): Promise<ChatMessageRow> {
    return this.#db
      .insertInto('ai_chat_messages')
      .values({
        project_id: input.projectId,
        user_id: input.userId,
        role: input.role,
        content: input.content,
        tools: JSON.stringify(input.tools ?? []),
        changeset_id: input.changesetId ?? null,
        usage: input.usage === undefined ? null : JSON.stringify(input.usage),
        error_message: input.error ?? null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  /** The latest `limit` messages, oldest first (without those a restore rewound, if asked). */
  async chatMessages(
    projectId: string,
    limit: number,
    opts: { visibleOnly?: boolean } = {},
  ): Promise<ChatMessageRow[]> {
    let query = this.#db
      .selectFrom('ai_chat_messages')
      .selectAll()
      .where('project_id', '=', projectId);
    if (opts.visibleOnly) query = query.where('rewound_at', 'is', null);
    const rows = await query
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.reverse();
  }

  /**
   * The chat's position now: its last visible message and the earlier messages hidden by a
   * rewind (so that restoring this moment hides exactly them again).
   */
  async chatPosition(
    projectId: string,
  ): Promise<{ lastMessageId: string | null; hiddenIds: string[] }> {
    const last = await this.#db
      .selectFrom('ai_chat_messages')
      .select('id')
      .where('project_id', '=', projectId)
      .where('rewound_at', 'is', null)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (!last) {
      return { lastMessageId: null, hiddenIds: [] };
    }
    const hidden = await this.#db
      .selectFrom('ai_chat_messages')
      .select('id')
      .where('project_id', '=', projectId)
      .where('rewound_at', 'is not', null)
      .where(
        sql<boolean>`(created_at, id) <= (SELECT created_at, id FROM ai_chat_messages WHERE id = ${last.id})`,
      )
      .execute();
    return { lastMessageId: last.id, hiddenIds: hidden.map((r) => r.id) };
  }

  /**
   * Rewinds the chat to a position: messages after it, and `hiddenIds`, are marked rewound
   * (by `by`); the others are visible again. Nothing is deleted.
   * @returns how many messages were hidden and shown by this call.
   */
  async rewindChat(
    projectId: string,
    position: { lastMessageId: string | null; hiddenIds: string[] },
    by: string,
  ): Promise<{ hidden: number; shown: number }> {
    const after = position.lastMessageId
      ? sql<boolean>`(created_at, id) > (SELECT created_at, id FROM ai_chat_messages WHERE id = ${position.lastMessageId})`
      : sql<boolean>`true`;
    const hiddenIds = position.hiddenIds.length
      ? position.hiddenIds
      : ['00000000-0000-0000-0000-000000000000'];
    const hide = await this.#db
      .updateTable('ai_chat_messages')
      .set({ rewound_at: new Date(), rewound_by: by })
      .where('project_id', '=', projectId)
      .where('rewound_at', 'is', null)
      .where((eb) => eb.or([eb('id', 'in', hiddenIds), after]))
      .executeTakeFirst();
    const show = await this.#db
      .updateTable('ai_chat_messages')
      .set({ rewound_at: null, rewound_by: null })
      .where('project_id', '=', projectId)
      .where('rewound_at', 'is not', null)
      .where('id', 'not in', hiddenIds)
      .where(sql<boolean>`NOT ${after}`)
      .executeTakeFirst();
    return { hidden: Number(hide.numUpdatedRows), shown: Number(show.numUpdatedRows) };
  }

  // ── hunk decisions ──

  async hunkDecisions(changesetId: string): Promise<HunkDecisionRow[]> {
    return this.#db
      .selectFrom('ai_hunk_decisions')
      .selectAll()
      .where('changeset_id', '=', changesetId)
      .execute();
  }

  async setHunkDecisions(
    changesetId: string,
    decisions: { hunkId: string; path: string; state: 'accepted' | 'rejected' }[],
    userId: string,
  ): Promise<void> {
    if (decisions.length === 0) return;
    await this.#db
      .insertInto('ai_hunk_decisions')
      .values(
        decisions.map((d) => ({
          changeset_id: changesetId,
          hunk_id: d.hunkId,
          file_path: d.path,
          state: d.state,
          decided_by: userId,
        })),
      )
      .onConflict((oc) =>
        oc.columns(['changeset_id', 'hunk_id']).doUpdateSet({
          state: sql`excluded.state`,
          decided_by: sql`excluded.decided_by`,
          decided_at: sql`now()`,
        }),
      )
      .execute();
  }

  /** Forgets the decisions on these hunks: they are pending again. */
  async clearHunkDecisions(changesetId: string, hunkIds: string[]): Promise<void> {
    if (hunkIds.length === 0) return;
    await this.#db
      .deleteFrom('ai_hunk_decisions')
      .where('changeset_id', '=', changesetId)
      .where('hunk_id', 'in', hunkIds)
      .execute();
  }

  // ── interactions ──

  async insertInteraction(r: InteractionRecord): Promise<void> {
    await this.#db
      .insertInto('claude_interactions')
      .values({
        project_id: r.projectId,
        user_id: r.userId,
        interaction_type: r.type,
        user_message: r.userMessage,
        claude_response: r.response,
        context_data: JSON.stringify(r.context),
        affected_files: r.affectedFiles,
        commands_executed: r.commands,
        success: r.success,
        error_message: r.error,
        execution_time_ms: Math.round(r.durationMs),
        model: r.model,
        provider: r.provider,
        request_id: r.requestId,
        changeset_id: r.changesetId,
        input_tokens: r.inputTokens,
        output_tokens: r.outputTokens,
        total_tokens: r.inputTokens + r.outputTokens,
        cache_read_input_tokens: r.cacheReadTokens,
        cache_creation_input_tokens: r.cacheWriteTokens,
        stop_reason: r.stopReason,
        created_at: r.startedAt,
        completed_at: new Date(),
      })
      .execute();
  }
}
