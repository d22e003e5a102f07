/**
 * Who the AI acts for; files record `source` (claude, template when seeding a project, user
 * for a person's review decisions).
 */
export interface AiActor {
  userId: string | null;
  source: 'claude' | 'template' | 'user';
}

/** A file's current state as the AI tools need it. */
export interface AiFileState {
  content: string;
  encoding: 'utf-8' | 'base64';
  version: number;
  /** The files service's content hash (compared, never computed here). */
  hash: string;
}

/**
 * What the AI needs from the files service. Every write goes through it: its path rules, its
 * versions (source `claude`), its `file_changed` events.
 */
export interface AiFiles {
  list(projectId: string): Promise<{ path: string; size: number }[]>;
  /** undefined when there is no such file. @throws AppError invalid_request for a bad path. */
  read(projectId: string, path: string): Promise<AiFileState | undefined>;
  /** @throws AppError invalid_request (path), too_large. */
  write(
    projectId: string,
    path: string,
    content: string,
    actor: AiActor,
  ): Promise<{ version: number; hash: string }>;
  /** @throws AppError not_found when there is no such file. */
  remove(projectId: string, path: string, actor: AiActor): Promise<void>;
  /**
   * Writes (content) and deletes (null) several files at once: all or none. With
   * `baseVersion`, a file no longer at that version (0: absent) fails them all with conflict.
   */
  apply(
    projectId: string,
    changes: { path: string; content: string | null; baseVersion?: number }[],
    actor: AiActor,
  ): Promise<void>;
  search(
    projectId: string,
    query: string,
    limit: number,
  ): Promise<{ path: string; line: number; preview: string }[]>;
}

/** The result of a command run in a project's container or sandbox. */
export interface CommandResult {
  exitCode: number | null;
  /** stdout and stderr, interleaved as they came. */
  output: string;
  timedOut: boolean;
}

/**
 * What the AI needs from the containers service: commands run inside the project's container
 * or process sandbox (never on the host), the dev server's recent output, and starting it.
 */
export interface AiRuntime {
  /** @throws AppError when the project has no running container to run it in. */
  exec(
    projectId: string,
    command: string,
    options: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<CommandResult>;
  logs(projectId: string, lines: number): Promise<string[]>;
  /**
   * Starts the project's container (a fresh process with `restart`) and waits until its dev
   * server answers.
   */
  start(
    projectId: string,
    userId: string,
    options?: { restart?: boolean },
  ): Promise<{ running: boolean; reason?: string }>;
}
