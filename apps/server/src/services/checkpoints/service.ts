import { errors } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import type { Db } from '../../db/index.ts';
import type { ActivityService } from '../activity/index.ts';
import type { ChatPosition } from '../ai/index.ts';
import type { FileChange, FilesService } from '../files/index.ts';
import {
  roleAtLeast,
  type Project,
  type ProjectConfig,
  type ProjectsService,
} from '../projects/index.ts';
import type { SecretsService } from '../secrets/index.ts';
import { CheckpointsStore, type CheckpointRow } from './store.ts';

/** Why a checkpoint was made. */
export type CheckpointKind = 'manual' | 'assistant' | 'restore';

/** A checkpoint as the API shows it. */
export interface Checkpoint {
  id: string;
  name: string;
  kind: CheckpointKind;
  createdAt: string;
  createdBy: string | null;
  /** How many files the project had. */
  files: number;
  /** The project's own environment variables then (names only). */
  envNames: string[];
  /** The last chat message visible then (null: the chat was empty). */
  chatMessageId: string | null;
}

/** What a restore did: files written back (also those deleted since) and files removed. */
export interface RestoreOutcome {
  restored: { files: string[]; removed: string[] };
  /** The checkpoint of the state just before the restore (restore it to undo). */
  checkpoint: Checkpoint;
  /** The checkpoint that was restored. */
  from: Checkpoint;
}

/** The chat's side of a checkpoint (the AI service). */
export interface CheckpointChat {
  chatPosition(projectId: string): Promise<ChatPosition>;
  rewindChat(
    projectId: string,
    position: ChatPosition,
    checkpointId: string,
  ): Promise<{ hidden: number; shown: number }>;
}

export interface CheckpointsServiceDeps {
  db: Db;
  projects: ProjectsService;
  files: FilesService;
  secrets: Pick<
    SecretsService,
    'environmentVariableNames' | 'projectEnvironment' | 'setEnvironment'
  >;
  chat: CheckpointChat;
  activity: ActivityService;
  log: Logger;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const maxNameChars = 200;

/**
 * Checkpoints (a project's files by version, chat position, configuration and env names at a
 * moment), restores of them, and forks. Callers check roles (routes use `projectAccess`).
 */
export class CheckpointsService {
  readonly #deps: CheckpointsServiceDeps;
  readonly #store: CheckpointsStore;

  constructor(deps: CheckpointsServiceDeps) {
    this.#deps = deps;
    this.#store = new CheckpointsStore(deps.db);
  }

  /**
   * Records the project as it is now. Nothing is copied: files by (path, version).
   * @throws AppError not_found (project).
   */
  async create(
    projectId: string,
    userId: string | null,
    input: { name: string; kind: CheckpointKind },
  ): Promise<Checkpoint> {
    const { files, projects, secrets, chat } = this.#deps;
    const [list, position, project, envNames] = await Promise.all([
      files.list(projectId),
      chat.chatPosition(projectId),
      projects.findById(projectId),
      secrets.environmentVariableNames(projectId),
    ]);
    if (!project) throw errors.notFound('project');
    const row = await this.#deps.db.transaction().execute((tx) =>
      new CheckpointsStore(tx).insert({
        projectId,
        name: shorten(input.name),
        kind: input.kind,
        userId,
        chatMessageId: position.lastMessageId,
        chatHiddenIds: position.hiddenIds,
        config: project.config,
        envNames,
        files: list.map((f) => ({ path: f.path, version: f.version, hash: f.contentHash })),
      }),
    );
    return toCheckpoint(row);
  }

  /** The project's checkpoints, newest first. */
  async list(projectId: string, limit = 200): Promise<Checkpoint[]> {
    return (await this.#store.list(projectId, limit)).map(toCheckpoint);
  }

  /**
   * Brings the project back to a checkpoint: every file to its version then (files created
   * since removed, deleted ones back) as new versions in one transaction through the files
   * service (workspace, events and search follow), and the chat rewound (later messages kept,
   * marked). A checkpoint of the state before is made first, so the restore can be undone.
   * The configuration and environment are not changed (they are recorded for reference).
   * @throws AppError not_found (checkpoint), too_large (quota).
   */
  async restore(projectId: string, checkpointId: string, userId: string): Promise<RestoreOutcome> {
    const { files, chat, activity, log } = this.#deps;
    const target = uuidPattern.test(checkpointId)
      ? await this.#store.find(projectId, checkpointId)
      : undefined;
    if (!target) throw errors.notFound('checkpoint');
    const before = await this.create(projectId, userId, {
      name: `Before restoring “${target.name}”`,
      kind: 'restore',
    });
    const [wanted, current] = await Promise.all([
      this.#store.files(target.id),
      files.list(projectId),
    ]);
    const want = new Map(wanted.map((f) => [f.file_path, f]));
    const now = new Map(current.map((f) => [f.path, f]));
    const removed = current.filter((f) => !want.has(f.path)).map((f) => f.path);
    const stale = wanted.filter((f) => now.get(f.file_path)?.contentHash !== f.content_hash.trim());
    const contents = await files.readVersions(
      projectId,
      stale.map((f) => ({ path: f.file_path, version: f.version })),
    );
    const changes: FileChange[] = removed.map((p) => ({ op: 'delete', path: p }));
    for (const f of stale) {
      const old = contents.get(f.file_path);
      if (!old) throw new Error(`${f.file_path} v${f.version} missing from the history`);
      changes.push({
        op: 'write',
        path: f.file_path,
        content: old.content,
        encoding: old.encoding,
      });
    }
    if (changes.length) await files.applyChangeset(projectId, changes, { source: 'user', userId });
    const rewound = await chat.rewindChat(
      projectId,
      { lastMessageId: target.chat_message_id, hiddenIds: target.chat_hidden_ids },
      target.id,
    );
    const restored = { files: stale.map((f) => f.file_path).sort(), removed: removed.sort() };
    await activity.record({
      projectId,
      userId,
      type: 'checkpoint_restored',
      description: `Restored the checkpoint “${target.name}” (${restored.files.length} files written, ${restored.removed.length} removed)`,
      sourceType: 'user',
      metadata: {
        checkpointId: target.id,
        undoCheckpointId: before.id,
        written: restored.files.length,
        removed: restored.removed.length,
        chatHidden: rewound.hidden,
        chatShown: rewound.shown,
      },
    });
    log.info(
      { projectId, checkpointId: target.id, ...rewound, files: changes.length },
      'checkpoint restored',
    );
    return { restored, checkpoint: before, from: toCheckpoint(target) };
  }

  /**
   * A copy of the project owned by `userId` alone: its files now or at a checkpoint (copied
   * inside the database in two statements), its configuration and its environment's names;
   * values only for a caller who may read them (editors and up: the terminal shows them),
   * empty otherwise. The new project records where it came from.
   * @throws AppError not_found (project, checkpoint), conflict (name taken).
   */
  async fork(
    source: Project,
    userId: string,
    input: { name: string; checkpointId?: string },
  ): Promise<{ project: Project; origin: { projectId: string; checkpointId: string | null } }> {
    const { projects, files, secrets, log } = this.#deps;
    let at: CheckpointRow | undefined;
    if (input.checkpointId !== undefined) {
      at = uuidPattern.test(input.checkpointId)
        ? await this.#store.find(source.id, input.checkpointId)
        : undefined;
      if (!at) throw errors.notFound('checkpoint');
    }
    const project = await projects.fork(source.id, userId, {
      name: input.name,
      checkpointId: at?.id ?? null,
      ...(at ? { config: (at.config ?? {}) as ProjectConfig } : {}),
    });
    try {
      const versions = at
        ? (await this.#store.files(at.id)).map((f) => ({ path: f.file_path, version: f.version }))
        : undefined;
      await files.copyProject(source.id, project.id, { versions, userId });
      const names = at ? at.env_names : await secrets.environmentVariableNames(source.id);
      if (names.length) {
        const values = roleAtLeast(source.role, 'editor')
          ? await secrets.projectEnvironment(source.id)
          : {};
        await secrets.setEnvironment(
          project.id,
          userId,
          Object.fromEntries(names.map((n) => [n, values[n] ?? ''])),
        );
      }
    } catch (err) {
      log.warn({ err, projectId: project.id }, 'fork failed; removing the new project');
      await projects.delete(project.id, userId).catch(() => undefined);
      throw err;
    }
    return {
      project: await projects.get(project.id, userId),
      origin: { projectId: source.id, checkpointId: at?.id ?? null },
    };
  }

  /** The hook for the AI service: a checkpoint before every assistant turn. */
  async beforeAssistantTurn(input: {
    projectId: string;
    userId: string;
    prompt: string;
  }): Promise<void> {
    await this.create(input.projectId, input.userId, {
      name: `Before the assistant: ${input.prompt.replace(/\s+/g, ' ').trim()}`,
      kind: 'assistant',
    });
  }
}

function shorten(name: string): string {
  const chars = [...name.trim()];
  return chars.length > maxNameChars
    ? `${chars.slice(0, maxNameChars - 1).join('')}…`
    : chars.join('') || 'Checkpoint';
}

function toCheckpoint(row: CheckpointRow): Checkpoint {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind as CheckpointKind,
    createdAt: row.created_at.toISOString(),
    createdBy: row.created_by,
    files: row.file_count,
    envNames: row.env_names,
    chatMessageId: row.chat_message_id,
  };
}
