import type { EventBus } from '../../common/bus.ts';
import { errors } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import { publishProjectEvent } from '../../common/project-events.ts';
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
  /** The container is being restarted: the run command or the dependencies changed. */
  restart: boolean;
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

/** What a restore would change (the confirmation shown before it). */
export interface RestorePreview {
  checkpoint: Checkpoint;
  /** Paths that would be written back (changed or deleted since). */
  write: string[];
  /** Paths created since, that would be removed. */
  remove: string[];
  /** Whether the container would restart (run command or dependencies differ). */
  restart: boolean;
}

/** The container side of a restore (the containers service). */
export interface CheckpointRuntime {
  /** True while the project's container should be running (starting, running, crashed). */
  isRunning(projectId: string): Promise<boolean>;
  restart(projectId: string): Promise<unknown>;
}

/**
 * Files that decide what the container runs or installs: manifests and lockfiles, and the
 * entry files the run command is chosen from when there is no package.json. A restore that
 * changes one of them restarts the container (its install step and dev command start over).
 */
const runFiles = new Set([
  'package.json',
  'package-lock.json',
  'npm-shrinkwrap.json',
  'yarn.lock',
  'pnpm-lock.yaml',
  'bun.lockb',
  'bun.lock',
  '.nvmrc',
  '.node-version',
  'requirements.txt',
  'pyproject.toml',
  'Pipfile',
  'Pipfile.lock',
  'poetry.lock',
  'uv.lock',
  'go.mod',
  'go.sum',
  'Gemfile',
  'Gemfile.lock',
  'Cargo.toml',
  'Cargo.lock',
  'Procfile',
  'Dockerfile',
]);
const entryFiles = new Set(['server.js', 'index.js', 'main.js']);

/**
 * True when restoring these changes alters the run command or the dependencies: a root
 * manifest or lockfile (or `requirements*.txt`) differs, or a root entry file appears or goes
 * away (the command is chosen by which one exists). Edits of entry files do not count: the
 * dev server watches them.
 */
export function changesRun(write: string[], remove: string[], existsNow: Set<string>): boolean {
  const runFile = (p: string) =>
    !p.includes('/') && (runFiles.has(p) || /^requirements[\w.-]*\.txt$/.test(p));
  if ([...write, ...remove].some(runFile)) return true;
  return (
    remove.some((p) => entryFiles.has(p)) ||
    write.some((p) => entryFiles.has(p) && !existsNow.has(p))
  );
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
  /** Absent: restores never restart anything (tests without containers). */
  runtime?: CheckpointRuntime;
  activity: ActivityService;
  /** Members hear of every new checkpoint (`checkpoint_created`). */
  bus: EventBus;
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
    const checkpoint = toCheckpoint(row);
    await publishProjectEvent(this.#deps.bus, projectId, 'checkpoint_created', {
      checkpointId: checkpoint.id,
      name: checkpoint.name,
      kind: checkpoint.kind,
      userId,
    }).catch((err: unknown) =>
      this.#deps.log.warn({ err, projectId }, 'checkpoint_created event not published'),
    );
    return checkpoint;
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
    const { files, chat, activity, log, runtime } = this.#deps;
    const target = await this.#find(projectId, checkpointId);
    // The undo point and the plan are independent reads: taken side by side.
    const [before, plan] = await Promise.all([
      this.create(projectId, userId, {
        name: `Before restoring “${target.name}”`,
        kind: 'restore',
      }),
      this.#plan(projectId, target),
    ]);
    const contents = await files.readVersions(
      projectId,
      plan.stale.map((f) => ({ path: f.file_path, version: f.version })),
    );
    const changes: FileChange[] = plan.remove.map((p) => ({ op: 'delete', path: p }));
    for (const f of plan.stale) {
      const old = contents.get(f.file_path);
      if (!old) throw new Error(`${f.file_path} v${f.version} missing from the history`);
      changes.push({
        op: 'write',
        path: f.file_path,
        content: old.content,
        encoding: old.encoding,
      });
    }
    // Answered once committed: the workspace (1,000 files take seconds on a busy machine)
    // follows in the project's lane, before any later change.
    if (changes.length) {
      await files.applyChangeset(
        projectId,
        changes,
        { source: 'user', userId },
        // One `files_changed` event, not one per file.
        { workspaceInBackground: true, oneEvent: true },
      );
    }
    const restart = plan.restart && runtime ? await runtime.isRunning(projectId) : false;
    if (restart && runtime) {
      // After the workspace holds the restored files: the install and the command start over.
      void files
        .settled(projectId)
        .then(() => runtime.restart(projectId))
        .catch((err: unknown) =>
          log.warn({ err, projectId }, 'restart after a checkpoint restore failed'),
        );
    }
    const rewound = await chat.rewindChat(
      projectId,
      { lastMessageId: target.chat_message_id, hiddenIds: target.chat_hidden_ids },
      target.id,
    );
    const restored = { files: plan.write, removed: plan.remove };
    await activity.record({
      projectId,
      userId,
      type: 'checkpoint_restored',
      description: `Restored the checkpoint “${target.name}” (${restored.files.length} files written, ${restored.removed.length} removed${restart ? ', container restarted' : ''})`,
      sourceType: 'user',
      metadata: {
        checkpointId: target.id,
        undoCheckpointId: before.id,
        written: restored.files.length,
        removed: restored.removed.length,
        chatHidden: rewound.hidden,
        chatShown: rewound.shown,
        restart,
      },
    });
    log.info(
      { projectId, checkpointId: target.id, ...rewound, files: changes.length, restart },
      'checkpoint restored',
    );
    return { restored, restart, checkpoint: before, from: toCheckpoint(target) };
  }

  /**
   * What restoring `checkpointId` would change now: files written back, files removed, and
   * whether the container would restart.
   * @throws AppError not_found (checkpoint).
   */
  async preview(projectId: string, checkpointId: string): Promise<RestorePreview> {
    const target = await this.#find(projectId, checkpointId);
    const plan = await this.#plan(projectId, target);
    return {
      checkpoint: toCheckpoint(target),
      write: plan.write,
      remove: plan.remove,
      restart: plan.restart,
    };
  }

  async #find(projectId: string, checkpointId: string): Promise<CheckpointRow> {
    const target = uuidPattern.test(checkpointId)
      ? await this.#store.find(projectId, checkpointId)
      : undefined;
    if (!target) throw errors.notFound('checkpoint');
    return target;
  }

  /** The difference between the project now and a checkpoint (by content hash). */
  async #plan(projectId: string, target: CheckpointRow) {
    const [wanted, current] = await Promise.all([
      this.#store.files(target.id),
      this.#deps.files.list(projectId),
    ]);
    const want = new Map(wanted.map((f) => [f.file_path, f]));
    const now = new Map(current.map((f) => [f.path, f]));
    const remove = current
      .filter((f) => !want.has(f.path))
      .map((f) => f.path)
      .sort();
    const stale = wanted.filter((f) => now.get(f.file_path)?.contentHash !== f.content_hash.trim());
    const write = stale.map((f) => f.file_path).sort();
    return { stale, write, remove, restart: changesRun(write, remove, new Set(now.keys())) };
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
