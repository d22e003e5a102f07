import type pg from 'pg';
import { AppError, errors } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import type { Db } from '../../db/index.ts';
import type { ActivityService } from '../activity/index.ts';
import type { Metrics } from '../monitoring/index.ts';
import type { Project, ProjectsService } from '../projects/index.ts';
import type { ProjectEventData, ProjectEventType } from '@vaporform/sdk';
import type { EventBus } from '../../common/bus.ts';
import { publishProjectEvent } from '../../common/project-events.ts';
import type { TemplateRun, TemplatesService } from '../templates/index.ts';
import { runAgent, type AgentLimits, type AgentOutcome, type ToolEvent } from './agent.ts';
import { ChangesetRecorder, operationOf, revertChangeset, rollBackAttempt } from './changesets.ts';
import {
  decideHunks,
  loadReview,
  pendingReview,
  type ChangesetReview,
  type HunkState,
  type PendingReview,
} from './review.ts';
import type { AiActor, AiFiles, AiRuntime } from './host.ts';
import { systemPrompt, type RunMode } from './prompt.ts';
import type { ConversationMessage, ModelProvider } from './providers.ts';
import { AiQueue } from './queue.ts';
import { createRedactor } from './redact.ts';
import { AiStore, type ChatMessageRow, type RequestRow } from './store.ts';
import { runTool, toolSpecs, type FileChangeEvent } from './tools.ts';

/** The seeds' request types for POST /api/claude/process. */
export type RequestType = 'create' | 'modify' | 'debug' | 'deploy';

/** seeds/000 FileChange. */
export interface FileChange {
  path: string;
  content: string;
  operation: 'create' | 'update' | 'delete';
}

/** seeds/000 Command. */
export interface CommandRun {
  command: string;
  args: string[];
  workingDirectory: string;
}

/** seeds/000 ClaudeResponse, plus the changeset the turn made (null when no file changed). */
export interface ClaudeResponse {
  success: boolean;
  message: string;
  changes: FileChange[];
  commands: CommandRun[];
  changesetId: string | null;
}

/** A queued request as GET /api/claude/requests/:id shows it. */
export interface RequestView {
  requestId: string;
  projectId: string;
  type: RequestType;
  status: 'queued' | 'running' | 'succeeded' | 'failed';
  attempts: number;
  result?: ClaudeResponse;
  error?: string;
  createdAt: string;
  finishedAt?: string;
}

/** A tool call as the chat history and the interaction record keep it. */
export interface StoredTool {
  name: string;
  summary: string;
  isError: boolean;
  at?: number;
}

/** A chat message (GET /api/projects/:id/chat). */
export interface ChatMessage {
  id: string;
  role: 'user' | 'assistant';
  content: string;
  userId: string | null;
  /** In the order they ran; `at`: the offset in `content` where each ran (absent on old rows). */
  tools: StoredTool[];
  changesetId: string | null;
  usage: { inputTokens: number; outputTokens: number } | null;
  error: string | null;
  createdAt: string;
  /** Set when a checkpoint restore rewound the chat past this message (kept, out of context). */
  rewoundAt: string | null;
}

/** What a chat turn streams (POST /api/projects/:id/chat, as SSE). */
export type ChatEvent =
  | { event: 'text'; data: { delta: string } }
  | {
      event: 'tool';
      data: { id: string; name: string; input: unknown; result: string; isError: boolean };
    }
  | { event: 'file_change'; data: { path: string; operation: string; diff: string } }
  | {
      event: 'done';
      data: {
        messageId: string;
        changesetId: string | null;
        usage: { inputTokens: number; outputTokens: number; totalTokens: number };
        stopped?: { reason: string; message: string };
      };
    }
  | { event: 'error'; data: { code: string; message: string } };

/**
 * The project's environment (the secrets service): its names are shown to the model, its
 * values only used to redact tool output. Never logged.
 */
export interface AiSecrets {
  projectEnvironment(projectId: string): Promise<Record<string, string>>;
}

export interface AiServiceDeps {
  db: Db;
  pool: pg.Pool;
  provider: ModelProvider | undefined;
  limits: AgentLimits;
  leaseSeconds: number;
  jobAttempts: number;
  projects: ProjectsService;
  templates: TemplatesService;
  secrets: AiSecrets | undefined;
  files: AiFiles | undefined;
  runtime: AiRuntime | undefined;
  /** Where review decisions are logged. */
  activity?: ActivityService;
  bus: EventBus;
  metrics: Metrics;
  log: Logger;
}

/**
 * Runs before every assistant turn, before anything of the turn is stored (a checkpoint of
 * the project: see services/checkpoints). A throwing hook stops the turn.
 */
export type BeforeTurnHook = (input: {
  projectId: string;
  userId: string;
  prompt: string;
}) => Promise<void>;

/** Where the chat stands: its last visible message, and earlier ones hidden by a rewind. */
export interface ChatPosition {
  lastMessageId: string | null;
  hiddenIds: string[];
}

const unavailableMessage =
  'No AI provider is configured. Set ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL for a ' +
  'compatible server), or OPENAI_BASE_URL / OPENAI_API_KEY for an OpenAI-compatible server ' +
  '(with VAPORFORM_AI_MODEL naming its model), then restart Vaporform.';

const chatHistoryTurns = 20;
const maxEventInputChars = 2_000;

const interactionTypes: Record<RunMode, string> = {
  chat: 'chat',
  modify: 'file_modification',
  create: 'project_creation',
  debug: 'debug',
  deploy: 'deploy',
};

interface RunInput {
  mode: RunMode;
  origin: 'chat' | 'modify' | 'process';
  project: Project;
  userId: string;
  prompt: string;
  /** Earlier conversation (chat history), loaded alongside the rest of the context. */
  history?: Promise<ConversationMessage[]>;
  requestId?: string;
  /** Files of the changeset recorded before the agent starts (create: the template). */
  recorder?: ChangesetRecorder;
  guard?: () => Promise<void>;
  signal?: AbortSignal;
  /** A person's Stop (chat): the run ends as `stopped` 'cancelled', keeping what it did. */
  cancel?: AbortSignal;
  onText?: (delta: string) => void;
  onTool?: (event: ToolEvent) => void;
  onFileChange?: (change: FileChangeEvent) => void;
}

interface RunResult {
  outcome: AgentOutcome;
  changesetId: string | null;
  commands: string[];
}

/** The bus channel on which a project's chat turns hear Stop. */
const stopChannel = (projectId: string) => `ai:chat-stop:${projectId}`;

/**
 * The AI assistant: chat, synchronous modifications and queued requests, each a run of the
 * model with the project tools, whose file changes form a revertible changeset.
 */
export class AiService {
  readonly #deps: AiServiceDeps;
  readonly #store: AiStore;
  readonly #queue: AiQueue | undefined;
  /** Aborted on stop: runs in progress end, queued ones are redelivered later. */
  readonly #stopping = new AbortController();
  readonly #running = new Set<Promise<unknown>>();
  readonly #templateRuns = new Map<string, { run: TemplateRun | undefined; at: number }>();
  readonly #beforeTurn: BeforeTurnHook[] = [];

  constructor(deps: AiServiceDeps) {
    this.#deps = deps;
    this.#store = new AiStore(deps.db);
    this.#queue = deps.provider
      ? new AiQueue({
          pool: deps.pool,
          log: deps.log,
          attempts: deps.jobAttempts,
          leaseSeconds: deps.leaseSeconds,
        })
      : undefined;
  }

  /** True when a provider is configured. */
  get available(): boolean {
    return this.#deps.provider !== undefined;
  }

  /** Starts the queue worker (only with a provider: without one nothing can be queued). */
  async start(): Promise<void> {
    if (!this.#queue) return;
    await this.#queue.start(
      (requestId, jobId) => this.#track(this.#handleJob(requestId, jobId)),
      async () => {
        const reclaimed = await this.#store.reclaimExpired();
        return reclaimed.flatMap((r) => (r.job_id ? [r.job_id] : []));
      },
    );
  }

  /** Ends runs in progress (queued ones are redelivered) and stops the queue. */
  async stop(): Promise<void> {
    this.#stopping.abort(new Error('the server is shutting down'));
    await this.#queue?.stop();
    await Promise.allSettled([...this.#running]);
  }

  /**
   * The provider, or the 503 that says how to configure one.
   * @throws AppError ai_unavailable
   */
  requireProvider(): ModelProvider {
    if (!this.#deps.provider) throw new AppError('ai_unavailable', unavailableMessage);
    return this.#deps.provider;
  }

  // ── chat ──

  /**
   * One chat turn: persists the person's message, runs the model with the tools, streams what
   * happens through `emit` and persists the answer. Runs to the end even if nobody listens.
   * @throws AppError ai_unavailable (before anything is stored).
   */
  async chat(
    project: Project,
    userId: string,
    message: string,
    emit: (event: ChatEvent) => void,
  ): Promise<ChatMessage> {
    this.requireProvider();
    await this.#runBeforeTurn(project.id, userId, message);
    const history = this.#store
      .chatMessages(project.id, chatHistoryTurns, { visibleOnly: true })
      .then((rows) => toConversation(rows));
    // Stored while the model starts: the first token does not wait for it.
    const asked = this.#store
      .insertChatMessage({ projectId: project.id, userId, role: 'user', content: message })
      .then(async (row) => {
        await this.#publish(project.id, 'chat', { message: toChatMessage(row) });
        return row;
      });
    asked.catch(() => undefined);
    // Stop (`stopChat`, from any instance) ends this turn where it is.
    const cancel = new AbortController();
    const unsubscribe = await this.#deps.bus
      .subscribe(stopChannel(project.id), () => cancel.abort(new Error('stopped on request')))
      .catch((err: unknown) => {
        this.#deps.log.warn({ err, projectId: project.id }, 'Stop will not reach this chat turn');
        return async () => undefined;
      });
    let row: ChatMessageRow;
    try {
      const { outcome, changesetId } = await this.#track(
        this.#run({
          mode: 'chat',
          origin: 'chat',
          project,
          userId,
          prompt: message,
          history,
          signal: this.#stopping.signal,
          cancel: cancel.signal,
          onText: (delta) => emit({ event: 'text', data: { delta } }),
          onTool: (t) =>
            emit({
              event: 'tool',
              data: {
                id: t.id,
                name: t.name,
                input: shortenInput(t.input),
                result: t.summary,
                isError: t.isError,
              },
            }),
          onFileChange: (f) =>
            emit({
              event: 'file_change',
              data: { path: f.path, operation: f.operation, diff: f.diff },
            }),
        }),
      );
      const text = outcome.stopped
        ? `${outcome.text}${outcome.text ? '\n\n' : ''}${outcome.stopped.message}`
        : outcome.text;
      await asked;
      row = await this.#store.insertChatMessage({
        projectId: project.id,
        userId: null,
        role: 'assistant',
        content: text,
        tools: storedTools(outcome.tools),
        changesetId,
        usage: { inputTokens: outcome.usage.inputTokens, outputTokens: outcome.usage.outputTokens },
        error: outcome.stopped?.message ?? null,
      });
      emit({
        event: 'done',
        data: {
          messageId: row.id,
          changesetId,
          usage: {
            inputTokens: outcome.usage.inputTokens,
            outputTokens: outcome.usage.outputTokens,
            totalTokens: outcome.usage.inputTokens + outcome.usage.outputTokens,
          },
          ...(outcome.stopped
            ? { stopped: { reason: outcome.stopped.reason, message: outcome.stopped.message } }
            : {}),
        },
      });
    } catch (err) {
      const messageText = publicMessage(err);
      await asked;
      row = await this.#store.insertChatMessage({
        projectId: project.id,
        userId: null,
        role: 'assistant',
        content: '',
        error: messageText,
      });
      emit({ event: 'error', data: { code: errorCode(err), message: messageText } });
    } finally {
      await unsubscribe().catch(() => undefined);
    }
    const answer = toChatMessage(row);
    await this.#publish(project.id, 'chat', { message: answer });
    return answer;
  }

  /**
   * Stops the project's chat turns in progress (on whichever instance runs them): each ends
   * with `done` `stopped.reason` 'cancelled', keeping its text and the files it changed.
   */
  async stopChat(projectId: string): Promise<void> {
    await this.#deps.bus.publish(stopChannel(projectId), { at: Date.now() });
  }

  /** The project's chat, oldest first (the latest `limit` messages, rewound ones marked). */
  async history(projectId: string, limit = 200): Promise<ChatMessage[]> {
    return (await this.#store.chatMessages(projectId, limit)).map(toChatMessage);
  }

  /** Registers a hook that runs before every assistant turn (chat, modify, queued runs). */
  onBeforeTurn(hook: BeforeTurnHook): void {
    this.#beforeTurn.push(hook);
  }

  async #runBeforeTurn(projectId: string, userId: string, prompt: string): Promise<void> {
    for (const hook of this.#beforeTurn) await hook({ projectId, userId, prompt });
  }

  /** Where the project's chat stands now (for a checkpoint). */
  async chatPosition(projectId: string): Promise<ChatPosition> {
    return this.#store.chatPosition(projectId);
  }

  /**
   * Rewinds the chat to `position`: later messages stay in the history, marked rewound (by
   * `checkpointId`), and leave the model's context; messages visible then are visible again.
   */
  async rewindChat(
    projectId: string,
    position: ChatPosition,
    checkpointId: string,
  ): Promise<{ hidden: number; shown: number }> {
    const result = await this.#store.rewindChat(projectId, position, checkpointId);
    if (result.hidden || result.shown) {
      await this.#publish(projectId, 'chat_rewound', { checkpointId, ...result });
    }
    return result;
  }

  // ── synchronous modification ──

  /**
   * Runs an instruction to completion and answers the seeds' ClaudeResponse.
   * @throws AppError ai_unavailable; unavailable when the provider fails.
   */
  async modify(
    project: Project,
    userId: string,
    input: { instruction: string; files?: string[] },
  ): Promise<ClaudeResponse> {
    this.requireProvider();
    const prompt = input.files?.length
      ? `${input.instruction}\n\nFocus on these files: ${input.files.join(', ')}`
      : input.instruction;
    await this.#runBeforeTurn(project.id, userId, input.instruction);
    try {
      const result = await this.#track(
        this.#run({
          mode: 'modify',
          origin: 'modify',
          project,
          userId,
          prompt,
          signal: this.#stopping.signal,
        }),
      );
      return await this.#response(result);
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw errors.unavailable(publicMessage(err));
    }
  }

  // ── queued requests ──

  /**
   * Queues a request (at-least-once); progress and result go to the project's channel.
   * @throws AppError ai_unavailable.
   */
  async enqueue(
    project: Project,
    userId: string,
    input: { type: RequestType; message: string; context?: unknown },
  ): Promise<{ requestId: string }> {
    this.requireProvider();
    const row = await this.#store.insertRequest({
      projectId: project.id,
      userId,
      type: input.type,
      message: input.message,
      context: input.context ?? {},
    });
    const jobId = await this.#queue!.send(row.id);
    await this.#store.setRequestJob(row.id, jobId);
    await this.#publish(project.id, 'claude-progress', {
      requestId: row.id,
      type: input.type,
      stage: 'queued',
      message: 'Queued',
    });
    return { requestId: row.id };
  }

  /**
   * A queued request, for an editor (or better) of its project.
   * @throws AppError not_found (unknown id, or not a member), forbidden (viewer).
   */
  async request(requestId: string, userId: string): Promise<RequestView> {
    const row = uuidPattern.test(requestId) ? await this.#store.findRequest(requestId) : undefined;
    if (!row) throw errors.notFound('request');
    try {
      await this.#deps.projects.requireRole(row.project_id, userId, 'editor');
    } catch (err) {
      if (err instanceof AppError && err.code === 'not_found') throw errors.notFound('request');
      throw err;
    }
    return toRequestView(row);
  }

  // ── changesets ──

  /**
   * A changeset as a review: its files, their hunks and each hunk's state.
   * @throws AppError not_found.
   */
  async changeset(projectId: string, changesetId: string): Promise<ChangesetReview> {
    if (!uuidPattern.test(changesetId)) throw errors.notFound('changeset');
    return loadReview(this.#deps.db, projectId, changesetId);
  }

  /** The project's pending hunks by file, where they are now (the gutter and explorer marks). */
  async pending(projectId: string): Promise<PendingReview> {
    return pendingReview({ db: this.#deps.db, files: this.#requireFiles() }, projectId);
  }

  /**
   * Accepts, rejects or returns to pending one hunk (`hunkId`) or every hunk (null) of a
   * changeset; see `decideHunks`. Members see it as a `review_changed` event. Callers check
   * the role (editor).
   * @throws AppError not_found, conflict.
   */
  async decide(input: {
    projectId: string;
    changesetId: string;
    hunkId: string | null;
    decision: HunkState;
    userId: string;
  }): Promise<ChangesetReview> {
    if (!uuidPattern.test(input.changesetId)) throw errors.notFound('changeset');
    const { review, changed } = await decideHunks(
      { db: this.#deps.db, files: this.#requireFiles(), activity: this.#deps.activity },
      input,
    );
    if (changed.length) {
      await this.#publish(input.projectId, 'review_changed', {
        changesetId: review.id,
        userId: input.userId,
        state: input.decision,
        hunks: changed,
      });
    }
    this.#deps.log.info(
      {
        projectId: input.projectId,
        changesetId: input.changesetId,
        hunkId: input.hunkId,
        decision: input.decision,
      },
      'changeset hunks decided',
    );
    return review;
  }

  /**
   * Restores every file the changeset touched (new versions), refusing when one changed since
   * unless `force`.
   * @throws AppError not_found, conflict (details.conflicts lists the files).
   */
  async revert(
    projectId: string,
    changesetId: string,
    userId: string,
    force: boolean,
  ): Promise<{ reverted: string[] }> {
    if (!uuidPattern.test(changesetId)) throw errors.notFound('changeset');
    const result = await revertChangeset(
      { db: this.#deps.db, files: this.#requireFiles() },
      { projectId, changesetId, actor: { userId, source: 'claude' }, force },
    );
    this.#deps.log.info(
      { projectId, changesetId, files: result.reverted.length },
      'changeset reverted',
    );
    // Its hunks are no longer pending (nothing left to review).
    await this.#publish(projectId, 'review_changed', {
      changesetId,
      userId,
      state: 'reverted',
      hunks: [],
    });
    return result;
  }

  /**
   * The wizard's "describe it" path: when a project is created without a template but with a
   * description of what it should do, queue a `create` request for it.
   */
  async onProjectCreated(project: Project, userId: string): Promise<void> {
    if (!this.available || project.templateId) return;
    const functionality = project.config.functionality?.trim();
    if (!functionality) return;
    await this.#deps.projects.setRuntimeState(project.id, {
      status: 'creating',
      statusReason: null,
    });
    await this.enqueue(project, userId, { type: 'create', message: functionality });
  }

  // ── internals ──

  /** How a template's projects run; cached (templates change rarely, and only by migration). */
  async #templateRun(templateId: string | undefined): Promise<TemplateRun | undefined> {
    if (!templateId) return undefined;
    const cached = this.#templateRuns.get(templateId);
    if (cached && cached.at > Date.now() - 60_000) return cached.run;
    const run = (await this.#deps.templates.find(templateId))?.run;
    this.#templateRuns.set(templateId, { run, at: Date.now() });
    return run;
  }

  #requireFiles(): AiFiles {
    if (!this.#deps.files)
      throw errors.unavailable('Project files are not available on this server');
    return this.#deps.files;
  }

  #track<T>(promise: Promise<T>): Promise<T> {
    this.#running.add(promise);
    void promise.finally(() => this.#running.delete(promise)).catch(() => undefined);
    return promise;
  }

  async #publish<T extends ProjectEventType>(
    projectId: string,
    type: T,
    data: ProjectEventData<T>,
  ): Promise<void> {
    await publishProjectEvent(this.#deps.bus, projectId, type, data).catch((err: unknown) => {
      this.#deps.log.warn({ err, projectId, type }, 'could not publish a project event');
    });
  }

  /** One run: context, the agent loop, the changeset, the interaction record, the histogram. */
  async #run(input: RunInput): Promise<RunResult> {
    const provider = this.requireProvider();
    const { db, files, runtime, secrets, limits, log } = this.#deps;
    const startedAt = new Date();
    const projectId = input.project.id;
    // Independent look-ups, at once: they all come before the first token.
    const [history, list, environment, run] = await Promise.all([
      input.history ?? [],
      files ? files.list(projectId) : [],
      secrets ? secrets.projectEnvironment(projectId) : {},
      this.#templateRun(input.project.templateId),
    ]);
    // The model is told the names the container receives; the values only serve to redact.
    const envNames = Object.keys(environment).sort();
    const redact = createRedactor(environment);
    const system = systemPrompt({
      mode: input.mode,
      project: {
        name: input.project.name,
        description: input.project.description,
        functionality: input.project.config.functionality,
      },
      stack: input.project.config,
      run,
      files: list,
      envNames,
    });
    const recorder =
      input.recorder ??
      new ChangesetRecorder(db, {
        projectId,
        userId: input.userId,
        origin: input.origin,
        requestId: input.requestId ?? null,
      });
    const actor: AiActor = { userId: input.userId, source: 'claude' };
    const commands: string[] = [];
    const signal =
      input.cancel && input.signal
        ? AbortSignal.any([input.signal, input.cancel])
        : (input.cancel ?? input.signal);
    let outcome: AgentOutcome | undefined;
    let failure: unknown;
    try {
      outcome = await runAgent({
        provider,
        system,
        tools: toolSpecs,
        history,
        prompt: input.prompt,
        limits,
        signal,
        cancel: input.cancel,
        onText: input.onText,
        onTool: input.onTool,
        runTool: (call) =>
          runTool(
            {
              projectId,
              actor,
              files,
              runtime,
              recorder,
              redact,
              guard: input.guard ?? (async () => undefined),
              onFileChange: (change) => input.onFileChange?.(change),
              commands,
              signal,
              log,
            },
            call,
          ),
      });
    } catch (err) {
      failure = err;
    }
    const interrupted = failure !== undefined && signal?.aborted === true;
    // An interrupted queued run leaves its changeset open, to be rolled back by the next attempt.
    const changesetId =
      interrupted && input.requestId
        ? (recorder.id ?? null)
        : ((await recorder.close(outcome?.text ?? '')) ?? null);
    const durationMs = Date.now() - startedAt.getTime();
    const success = failure === undefined && !outcome?.stopped;
    this.#deps.metrics.recordClaudeRun(
      input.mode,
      failure !== undefined ? 'error' : outcome?.stopped ? 'stopped' : 'ok',
      durationMs / 1000,
      outcome?.usage,
    );
    await this.#store
      .insertInteraction({
        projectId,
        userId: input.userId,
        type: interactionTypes[input.mode],
        userMessage: input.prompt,
        response: outcome?.text ?? '',
        context: {
          mode: input.mode,
          steps: outcome?.steps ?? 0,
          tools: storedTools(outcome?.tools ?? []),
          transcript: boundedTranscript(outcome?.transcript ?? []),
        },
        affectedFiles: recorder.paths,
        commands,
        success,
        error: failure !== undefined ? publicMessage(failure) : (outcome?.stopped?.message ?? null),
        startedAt,
        durationMs,
        model: provider.model,
        provider: provider.name,
        requestId: input.requestId ?? null,
        changesetId,
        inputTokens: outcome?.usage.inputTokens ?? 0,
        outputTokens: outcome?.usage.outputTokens ?? 0,
        cacheReadTokens: outcome?.usage.cacheReadTokens ?? 0,
        cacheWriteTokens: outcome?.usage.cacheWriteTokens ?? 0,
        stopReason: outcome?.stopped?.reason ?? (failure !== undefined ? 'error' : 'end'),
      })
      .catch((err: unknown) => log.warn({ err, projectId }, 'could not record an AI interaction'));
    log.info(
      {
        projectId,
        mode: input.mode,
        durationMs,
        steps: outcome?.steps,
        inputTokens: outcome?.usage.inputTokens,
        outputTokens: outcome?.usage.outputTokens,
        changesetId,
        stopped: outcome?.stopped?.reason,
        failed: failure !== undefined,
      },
      'AI run finished',
    );
    if (failure !== undefined) throw failure;
    return { outcome: outcome!, changesetId, commands };
  }

  async #response(result: RunResult): Promise<ClaudeResponse> {
    const changes: FileChange[] = [];
    if (result.changesetId) {
      for (const f of await this.#store.changesetFiles(result.changesetId)) {
        changes.push({
          path: f.file_path,
          content: f.after_content ?? '',
          operation: operationOf(f),
        });
      }
    }
    const stopped = result.outcome.stopped;
    return {
      success: !stopped,
      message: stopped
        ? `${result.outcome.text}${result.outcome.text ? '\n\n' : ''}${stopped.message}`
        : result.outcome.text,
      changes,
      commands: result.commands.map((command) => ({
        command,
        args: [],
        workingDirectory: '/app',
      })),
      changesetId: result.changesetId,
    };
  }

  /** One delivery of a queued request. Throws only to have pg-boss deliver it again. */
  async #handleJob(requestId: string, jobId: string): Promise<void> {
    const { leaseSeconds, log } = this.#deps;
    const row = await this.#claim(requestId, jobId);
    if (!row) return; // finished already: a redelivery has nothing to do
    const attempt = row.attempt;
    const projectId = row.project_id;
    const type = row.request_type as RequestType;
    if (attempt > this.#deps.jobAttempts) {
      await this.#giveUp(row, `Gave up after ${this.#deps.jobAttempts} attempts`);
      return;
    }
    // The run ends when the server stops or when this attempt loses its lease.
    const lost = new AbortController();
    const signal = AbortSignal.any([this.#stopping.signal, lost.signal]);
    const heartbeat = setInterval(
      () => {
        void this.#store.renewLease(requestId, attempt, leaseSeconds).then(
          (held) => {
            if (!held) lost.abort(new Error('this attempt lost its lease'));
          },
          (err: unknown) => log.warn({ err, requestId }, 'could not renew an AI lease'),
        );
      },
      Math.max(250, (leaseSeconds * 1000) / 3),
    );
    heartbeat.unref();
    try {
      if (!row.user_id) throw errors.notFound('user');
      const { project } = await this.#deps.projects.requireRole(projectId, row.user_id, 'editor');
      const recorder = new ChangesetRecorder(this.#deps.db, {
        projectId,
        userId: row.user_id,
        origin: 'process',
        requestId,
      });
      // An earlier attempt died half-way: undo what it wrote, then start over.
      const earlier = await this.#store.findChangesetByRequest(requestId);
      if (attempt === 1) await this.#runBeforeTurn(projectId, row.user_id, row.message);
      // A project described to the assistant: its chat shows that conversation (and changeset).
      const inChat = type === 'create';
      if (inChat && attempt === 1) {
        await this.#say({ projectId, userId: row.user_id, role: 'user', content: row.message });
      }
      // What the assistant writes reaches the set-up page as it is written, a few times a second.
      const written = batchedText((text) =>
        this.#publish(projectId, 'claude-progress', {
          requestId,
          type,
          stage: 'text',
          message: text,
        }),
      );
      if (earlier && this.#deps.files) {
        const { restored, kept } = await rollBackAttempt(
          { db: this.#deps.db, files: this.#deps.files },
          { projectId, changesetId: earlier.id, actor: { userId: row.user_id, source: 'claude' } },
        );
        log.info({ requestId, attempt, restored, kept }, 'rolled back an interrupted AI attempt');
      }
      await this.#publish(projectId, 'claude-progress', {
        requestId,
        type,
        stage: 'started',
        attempt,
        message: attempt > 1 ? `Started again (attempt ${attempt})` : 'Started',
      });
      const guard = async () => {
        signal.throwIfAborted();
        if (!(await this.#store.renewLease(requestId, attempt, leaseSeconds))) {
          lost.abort(new Error('this attempt lost its lease'));
          signal.throwIfAborted();
        }
      };
      const run: RunInput = {
        mode: type,
        origin: 'process',
        project,
        userId: row.user_id,
        prompt: promptFor(type, row.message, row.context),
        requestId,
        recorder,
        guard,
        signal,
        onText: written.push,
        onTool: (t) =>
          void this.#publish(projectId, 'claude-progress', {
            requestId,
            type,
            stage: 'tool',
            tool: t.name,
            isError: t.isError,
            message: t.summary,
          }),
      };
      const result = await (
        type === 'create' ? this.#create(run, project) : this.#run(run)
      ).finally(written.flush);
      if (type === 'debug' || type === 'create') await this.#checkServer(run, project, type);
      const response = await this.#response(result);
      const finished = await this.#store.finishRequest(requestId, attempt, {
        status: response.success ? 'succeeded' : 'failed',
        result: response,
        error: response.success ? null : response.message,
        changesetId: response.changesetId,
      });
      if (!finished) return; // another attempt took over: it reports
      if (inChat) {
        await this.#say({
          projectId,
          userId: null,
          role: 'assistant',
          content: response.message,
          tools: storedTools(result.outcome.tools),
          changesetId: result.changesetId,
          usage: {
            inputTokens: result.outcome.usage.inputTokens,
            outputTokens: result.outcome.usage.outputTokens,
          },
          error: response.success ? null : response.message,
        });
      }
      await this.#publish(
        projectId,
        response.success ? 'claude-response' : 'claude-error',
        response.success
          ? { requestId, type, ...response }
          : { requestId, type, error: response.message, changesetId: response.changesetId },
      );
    } catch (err) {
      if (signal.aborted) {
        // Shutting down or superseded: leave the request to the next delivery.
        await this.#store.releaseRequest(requestId, attempt).catch(() => undefined);
        throw signal.reason instanceof Error ? signal.reason : new Error('interrupted');
      }
      const message = publicMessage(err);
      const retryable = isRetryable(err) && attempt < this.#deps.jobAttempts;
      if (retryable) {
        log.warn({ requestId, attempt, err: message }, 'AI request failed; it will be retried');
        await this.#store.releaseRequest(requestId, attempt);
        throw err;
      }
      if (type === 'create') {
        await this.#deps.projects
          .setRuntimeState(projectId, { status: 'error', statusReason: message })
          .catch(() => undefined);
      }
      if (
        await this.#store.finishRequest(requestId, attempt, {
          status: 'failed',
          result: null,
          error: message,
          changesetId: (await this.#store.findChangesetByRequest(requestId))?.id ?? null,
        })
      ) {
        await this.#publish(projectId, 'claude-error', { requestId, type, error: message });
        if (type === 'create' && row.user_id) {
          await this.#say({
            projectId,
            userId: null,
            role: 'assistant',
            content: '',
            changesetId: (await this.#store.findChangesetByRequest(requestId))?.id ?? null,
            error: message,
          }).catch(() => undefined);
        }
      }
    } finally {
      clearInterval(heartbeat);
    }
  }

  /** Stores a chat message and tells the project's members (`chat`). */
  async #say(input: Parameters<AiStore['insertChatMessage']>[0]): Promise<void> {
    const row = await this.#store.insertChatMessage(input);
    await this.#publish(input.projectId, 'chat', { message: toChatMessage(row) });
  }

  /**
   * Takes the request for this delivery. A request still leased by a live attempt (a duplicate
   * delivery) is waited for, up to one lease.
   */
  async #claim(requestId: string, jobId: string): Promise<RequestRow | undefined> {
    const deadline = Date.now() + (this.#deps.leaseSeconds + 5) * 1000;
    while (true) {
      const current = await this.#store.findRequest(requestId);
      if (!current || current.status === 'succeeded' || current.status === 'failed')
        return undefined;
      const leased =
        current.status === 'running' && current.lease_until && current.lease_until > new Date();
      if (!leased || Date.now() > deadline) {
        return this.#store.claimRequest(requestId, jobId, this.#deps.leaseSeconds);
      }
      await new Promise((r) => setTimeout(r, 500));
      this.#stopping.signal.throwIfAborted();
    }
  }

  async #giveUp(row: RequestRow, message: string): Promise<void> {
    if (await this.#store.failRequest(row.id, message)) {
      await this.#publish(row.project_id, 'claude-error', {
        requestId: row.id,
        type: row.request_type as RequestType,
        error: message,
      });
    }
  }

  /**
   * `create`: the model picks the closest template (or none), its files are copied in, the
   * agent builds the app, and the project's container is started.
   */
  async #create(run: RunInput, project: Project): Promise<RunResult> {
    const { projects, files, templates, log } = this.#deps;
    await projects.setRuntimeState(project.id, { status: 'creating', statusReason: null });
    const existing = files ? await files.list(project.id) : [];
    if (files && existing.length === 0 && !project.templateId) {
      const templateId = await this.#pickTemplate(run.prompt, run.signal);
      const template = templateId ? await templates.find(templateId) : undefined;
      if (template) {
        await run.guard?.();
        for (const file of template.files) {
          const written = await files.write(project.id, file.path, file.content, {
            userId: run.userId,
            source: 'template',
          });
          await run.recorder!.record(
            file.path,
            { content: null, hash: null, version: null },
            { content: file.content, hash: written.hash, version: written.version },
          );
        }
        log.info({ projectId: project.id, templateId }, 'AI create: started from a template');
        await this.#publish(project.id, 'claude-progress', {
          // #create runs only for queued requests, which have an id.
          requestId: run.requestId ?? '',
          type: 'create',
          stage: 'template',
          message: `Started from the template ${template.name}`,
        });
      }
    }
    return this.#run(run);
  }

  /** One tool-less turn: which template fits the description best (an id, or none). */
  async #pickTemplate(description: string, signal?: AbortSignal): Promise<string | undefined> {
    const list = await this.#deps.templates.list();
    if (list.length === 0) return undefined;
    const provider = this.requireProvider();
    const turn = await provider.turn({
      system:
        'You choose the starting template for a new app. Answer with the template id alone, ' +
        'or "none" when no template fits.',
      tools: [],
      messages: [
        {
          role: 'user',
          content: [
            {
              type: 'text',
              text:
                `The app: ${description}\n\nTemplates:\n` +
                list
                  .map((t) => `- ${t.id}: ${t.name}. ${t.description} [${t.tags.join(', ')}]`)
                  .join('\n'),
            },
          ],
        },
      ],
      maxTokens: 50,
      signal,
    });
    const answer = turn.content
      .filter((p) => p.type === 'text')
      .map((p) => (p as { text: string }).text)
      .join('')
      .trim();
    return list.find((t) => answer === t.id || answer.includes(t.id))?.id;
  }

  /** After create/debug: (re)start the container and check the dev server answers. */
  async #checkServer(run: RunInput, project: Project, type: RequestType): Promise<void> {
    const runtime = this.#deps.runtime;
    if (!runtime) {
      if (type === 'create') {
        await this.#deps.projects.setRuntimeState(project.id, {
          status: 'stopped',
          statusReason: 'No container runtime is available to start the app',
        });
      }
      return;
    }
    await run.guard?.();
    const started = await runtime.start(project.id, run.userId, { restart: type === 'debug' });
    if (started.running) {
      if (type === 'create') {
        await this.#deps.projects.setRuntimeState(project.id, {
          status: 'running',
          statusReason: null,
        });
      }
      return;
    }
    const reason = started.reason ?? 'the dev server did not start';
    await this.#deps.projects.setRuntimeState(project.id, {
      status: 'error',
      statusReason: reason,
    });
    throw new AppError('conflict', `The app does not start: ${reason}`);
  }
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function promptFor(type: RequestType, message: string, context: unknown): string {
  const extra =
    context && typeof context === 'object' && Object.keys(context).length
      ? `\n\nContext: ${JSON.stringify(context).slice(0, 20_000)}`
      : '';
  const lead: Record<RequestType, string> = {
    create: 'Create this app',
    modify: 'Change the project',
    debug: 'Debug the project',
    deploy: 'Prepare the project for deployment',
  };
  return `${lead[type]}: ${message}${extra}`;
}

function toConversation(rows: ChatMessageRow[]): ConversationMessage[] {
  const out: ConversationMessage[] = [];
  for (const row of rows) {
    const text = row.content.trim();
    if (!text) continue;
    const last = out.at(-1);
    if (last && last.role === row.role) {
      const part = last.content[0];
      if (part && part.type === 'text') part.text += `\n\n${text}`;
      continue;
    }
    if (row.role === 'assistant' && out.length === 0) continue; // must start with the person
    out.push(
      row.role === 'user'
        ? { role: 'user', content: [{ type: 'text', text }] }
        : { role: 'assistant', content: [{ type: 'text', text }] },
    );
  }
  // The new prompt is a user message: the history must end with the assistant.
  if (out.at(-1)?.role === 'user') out.pop();
  return out;
}

/** The tools of a run as stored: what they did and where in the text they ran. */
function storedTools(tools: ToolEvent[]): StoredTool[] {
  return tools.map((t) => ({ name: t.name, summary: t.summary, isError: t.isError, at: t.at }));
}

function toChatMessage(row: ChatMessageRow): ChatMessage {
  const usage = row.usage as { inputTokens?: number; outputTokens?: number } | null;
  return {
    id: row.id,
    role: row.role as ChatMessage['role'],
    content: row.content,
    userId: row.user_id,
    tools: (row.tools as ChatMessage['tools']) ?? [],
    changesetId: row.changeset_id,
    usage: usage
      ? { inputTokens: usage.inputTokens ?? 0, outputTokens: usage.outputTokens ?? 0 }
      : null,
    error: row.error_message,
    createdAt: row.created_at.toISOString(),
    rewoundAt: row.rewound_at?.toISOString() ?? null,
  };
}

function toRequestView(row: RequestRow): RequestView {
  return {
    requestId: row.id,
    projectId: row.project_id,
    type: row.request_type as RequestType,
    status: row.status as RequestView['status'],
    attempts: row.attempt,
    ...(row.result ? { result: row.result as ClaudeResponse } : {}),
    ...(row.error_message ? { error: row.error_message } : {}),
    createdAt: row.created_at.toISOString(),
    ...(row.finished_at ? { finishedAt: row.finished_at.toISOString() } : {}),
  };
}

/** Long strings in a tool input (file contents) are shortened for events. */
function shortenInput(input: unknown): unknown {
  if (!input || typeof input !== 'object') return input;
  return Object.fromEntries(
    Object.entries(input as Record<string, unknown>).map(([k, v]) => [
      k,
      typeof v === 'string' && v.length > maxEventInputChars
        ? `${v.slice(0, maxEventInputChars)}… (${v.length} characters)`
        : v,
    ]),
  );
}

/** The transcript for the interaction record, each part bounded. */
function boundedTranscript(messages: ConversationMessage[]): unknown[] {
  const cap = (s: string) => (s.length > 4_000 ? `${s.slice(0, 4_000)}… (${s.length})` : s);
  return messages.slice(-60).map((m) => ({
    role: m.role,
    content: m.content.map((p) =>
      p.type === 'text'
        ? { type: 'text', text: cap(p.text) }
        : p.type === 'tool_call'
          ? { type: 'tool_call', name: p.name, input: shortenInput(p.input) }
          : { type: 'tool_result', isError: p.isError, content: cap(p.content) },
    ),
  }));
}

function publicMessage(err: unknown): string {
  if (err instanceof AppError) return err.message;
  if (err instanceof Error && err.name === 'ProviderError') return err.message;
  return 'The AI run failed because of an error on the server';
}

function errorCode(err: unknown): string {
  if (err instanceof AppError) return err.code;
  if (err instanceof Error && err.name === 'ProviderError') return 'unavailable';
  return 'internal';
}

/** Provider hiccups (rate limits, 5xx, network) are worth another delivery; the rest is not. */
function isRetryable(err: unknown): boolean {
  if (!(err instanceof Error) || err.name !== 'ProviderError') return false;
  const status = (err as { status?: number }).status;
  return status === undefined || status === 429 || status >= 500;
}

/**
 * Collects text deltas and hands them on at most every `everyMs` (and on `flush`), in order:
 * a model writes many small deltas a second; each becomes one event only in a batch.
 */
function batchedText(
  send: (text: string) => Promise<unknown>,
  everyMs = 200,
): { push(delta: string): void; flush(): void } {
  let pending = '';
  let timer: NodeJS.Timeout | undefined;
  let chain: Promise<unknown> = Promise.resolve();
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (!pending) return;
    const text = pending;
    pending = '';
    chain = chain.then(() => send(text)).catch(() => undefined);
  };
  return {
    push(delta) {
      pending += delta;
      timer ??= setTimeout(flush, everyMs);
    },
    flush,
  };
}
