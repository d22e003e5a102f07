/**
 * Every WebSocket message of the contract, as zod schemas shared by the server that emits them
 * and the clients that parse them: the project socket's events (`WS /api/projects/:id/ws`), what
 * a client may send it, and the terminal's control frames (`WS /api/projects/:id/terminal`).
 * `asyncapi.json` beside `openapi.json` is generated from these schemas (`npm run contract`).
 * @example
 *   const event = parseProjectEvent(JSON.parse(frame));
 *   if (event?.type === 'file_changed') invalidate(event.data.path);
 */
import { z } from 'zod';

const isoDate = z.string().describe('ISO 8601 date-time');

/** Who made a file change. */
export const fileSource = z.enum(['user', 'claude', 'collab', 'container', 'import', 'template']);
/** What happened to a file; a `move` names the old path in `from`. */
export const fileOperation = z.enum(['write', 'delete', 'move', 'restore']);

/** A file was written, deleted, moved or restored (every writer: API, assistant, container…). */
export const fileChangedEvent = z.object({
  type: z.literal('file_changed'),
  data: z.object({
    path: z.string(),
    version: z.number().int(),
    source: fileSource,
    userId: z.string().optional(),
    operation: fileOperation,
    /** The old path of a move. */
    from: z.string().optional(),
    /** Set for writes, restores and moves (the file exists after the change). */
    contentHash: z.string().optional(),
    size: z.number().int().optional(),
  }),
});

/**
 * Many files changed in one commit that announces itself once (a checkpoint restore of 1,000
 * files is one event, not 1,000): each entry says what that file's `file_changed` would.
 * Read both alike with {@link fileChangesOf}.
 */
export const filesChangedEvent = z.object({
  type: z.literal('files_changed'),
  data: z.object({
    source: fileSource,
    userId: z.string().optional(),
    files: z.array(fileChangedEvent.shape.data.omit({ source: true, userId: true })),
  }),
});

export const containerStatus = z.enum(['starting', 'running', 'crashed', 'stopped', 'error']);
export const projectHealth = z.enum(['healthy', 'unhealthy', 'starting', 'unknown']);

/** The project's container changed state (started, crashed, stopped…). */
export const containerStatusEvent = z.object({
  type: z.literal('container_status'),
  data: z.object({
    projectId: z.string(),
    status: containerStatus,
    health: projectHealth,
    containerId: z.string().nullable(),
    serviceUrl: z.string().nullable(),
    previewUrl: z.string().nullable(),
    reason: z.string().nullable(),
    /** Set while `status` is `crashed`: the reason and the dev server's last lines. */
    crash: z.object({ reason: z.string(), lines: z.array(z.string()), at: isoDate }).nullable(),
    at: isoDate,
  }),
});

export const aiRequestType = z.enum(['create', 'modify', 'debug', 'deploy']);

/**
 * A queued assistant request moved on: queued, started (again), a tool ran, a template used,
 * or `text`: what the assistant wrote since the last `text` event (`message`, in order, a few
 * per second), so a set-up page can show it as it is written.
 */
export const claudeProgressEvent = z.object({
  type: z.literal('claude-progress'),
  data: z.object({
    requestId: z.string(),
    type: aiRequestType,
    stage: z.enum(['queued', 'started', 'tool', 'template', 'text']),
    message: z.string(),
    attempt: z.number().int().optional(),
    tool: z.string().optional(),
    isError: z.boolean().optional(),
  }),
});

/** A queued assistant request finished: what it said, the files it changed, its changeset. */
export const claudeResponseEvent = z.object({
  type: z.literal('claude-response'),
  data: z.object({
    requestId: z.string(),
    type: aiRequestType,
    success: z.boolean(),
    message: z.string(),
    changes: z.array(
      z.object({
        path: z.string(),
        content: z.string(),
        operation: z.enum(['create', 'update', 'delete']),
      }),
    ),
    commands: z.array(
      z.object({ command: z.string(), args: z.array(z.string()), workingDirectory: z.string() }),
    ),
    changesetId: z.string().nullable(),
  }),
});

/** A queued assistant request failed for good. */
export const claudeErrorEvent = z.object({
  type: z.literal('claude-error'),
  data: z.object({
    requestId: z.string(),
    type: aiRequestType,
    error: z.string(),
    changesetId: z.string().nullable().optional(),
  }),
});

/** A message of the assistant's chat (`GET /api/projects/:id/chat`). */
export const assistantChatMessage = z.object({
  id: z.string(),
  role: z.enum(['user', 'assistant']),
  content: z.string(),
  userId: z.string().nullable(),
  /** In the order they ran; `at`: where in `content` each ran (absent on old messages). */
  tools: z.array(
    z.object({
      name: z.string(),
      summary: z.string(),
      isError: z.boolean(),
      at: z.number().int().nonnegative().optional(),
    }),
  ),
  changesetId: z.string().nullable(),
  usage: z.object({ inputTokens: z.number(), outputTokens: z.number() }).nullable(),
  error: z.string().nullable(),
  createdAt: isoDate,
  rewoundAt: isoDate.nullable(),
});

/** A message of the people's session chat (`GET /api/projects/:id/messages`). */
export const sessionChatMessage = z.object({
  id: z.string(),
  userId: z.string(),
  name: z.string(),
  text: z.string(),
  createdAt: isoDate,
});

/**
 * A chat message was added: the assistant's chat (has `role`) or the session chat between
 * people (has `text`). Both travel as `chat`; tell them apart with {@link isSessionChatMessage}.
 */
export const chatEvent = z.object({
  type: z.literal('chat'),
  data: z.object({ message: z.union([assistantChatMessage, sessionChatMessage]) }),
});

/** True for a session chat message (between people), false for the assistant's chat. */
export function isSessionChatMessage(
  message: z.infer<typeof chatEvent>['data']['message'],
): message is z.infer<typeof sessionChatMessage> {
  return 'text' in message;
}

/** A checkpoint restore rewound the assistant's chat: reload it. */
export const chatRewoundEvent = z.object({
  type: z.literal('chat_rewound'),
  data: z.object({ checkpointId: z.string(), hidden: z.number().int(), shown: z.number().int() }),
});

/**
 * A checkpoint was made: by hand (`manual`), before an assistant turn (`assistant`) or before
 * a restore (`restore`); checkpoint timelines read `GET /api/projects/:id/checkpoints` again.
 */
export const checkpointCreatedEvent = z.object({
  type: z.literal('checkpoint_created'),
  data: z.object({
    checkpointId: z.string(),
    name: z.string(),
    kind: z.enum(['manual', 'assistant', 'restore']),
    userId: z.string().nullable(),
  }),
});

/**
 * Hunks of an assistant turn's changeset were decided (`accepted`, `rejected`), returned to
 * `pending`, or the turn was reverted as a whole: pending-review marks change
 * (`GET /api/projects/:id/review/pending`).
 */
export const reviewChangedEvent = z.object({
  type: z.literal('review_changed'),
  data: z.object({
    changesetId: z.string(),
    userId: z.string(),
    state: z.enum(['pending', 'accepted', 'rejected', 'reverted']),
    hunks: z.array(z.object({ id: z.string(), path: z.string() })),
  }),
});

const presenceUser = z.object({ userId: z.string(), name: z.string() });

/**
 * Who is in the project: a `snapshot` on connect (users connected to this instance), then
 * `join`/`leave` from every instance; `file` says a member opened (`open: true`) or closed a
 * file in the editor (from the collaboration socket, `WS /api/collab`).
 */
export const presenceEvent = z.object({
  type: z.literal('presence'),
  data: z.union([
    z.object({ event: z.literal('snapshot'), users: z.array(presenceUser) }),
    presenceUser.extend({ event: z.enum(['join', 'leave']) }),
    presenceUser.extend({ event: z.literal('file'), path: z.string(), open: z.boolean() }),
  ]),
});

export const projectRole = z.enum(['owner', 'admin', 'editor', 'viewer']);

/** The receiving member's own role changed (sent only to their sockets). */
export const membershipEvent = z.object({
  type: z.literal('membership'),
  data: z.object({ role: projectRole }),
});

/** The project's environment variables changed (names only, never values). */
export const environmentChangedEvent = z.object({
  type: z.literal('environment_changed'),
  data: z.object({ names: z.array(z.string()), restartRequired: z.boolean() }),
});

/** An integration (API key of a service) was added, updated or removed. */
export const integrationChangedEvent = z.object({
  type: z.literal('integration_changed'),
  data: z.object({
    service: z.string(),
    action: z.enum(['added', 'updated', 'removed']),
    restartRequired: z.boolean(),
  }),
});

export const infrastructureStatus = z.enum([
  'queued',
  'planning',
  'applying',
  'ready',
  'failed',
  'canceled',
  'destroying',
  'destroyed',
]);

/** A deployment's run changed status (the Terraform run's lifecycle). */
export const infrastructureStatusEvent = z.object({
  type: z.literal('infrastructure_status'),
  data: z.object({
    deploymentId: z.string(),
    runId: z.string(),
    status: infrastructureStatus,
    error: z.string().nullable().optional(),
  }),
});

/** One `terraform -json` event of a deployment's run, numbered by `seq`. */
export const infrastructureEventEvent = z.object({
  type: z.literal('infrastructure_event'),
  data: z.object({
    deploymentId: z.string(),
    runId: z.string(),
    seq: z.number().int(),
    event: z.looseObject({ type: z.string() }),
  }),
});

/** A machine's agent connected (`online`) or went silent (`offline`: 4 s without a pong). */
export const agentStatusEvent = z.object({
  type: z.literal('agent_status'),
  data: z.object({
    deploymentId: z.string(),
    machine: z.string(),
    agent: z.enum(['online', 'offline']),
  }),
});

/** How a deploy ended on one machine; `url` is where its app answers. */
export const deployMachineResult = z.object({
  machine: z.string(),
  status: z.enum(['succeeded', 'failed', 'rolled_back', 'agent_lost']),
  url: z.string().nullable(),
  error: z.string().optional(),
  durationMs: z.number(),
});

/**
 * A deploy moved on: one machine reached a stage (`verified`, `install`, `start`…, with the
 * agent's message), or the whole deploy ended (`status` with every machine's result).
 */
export const deployProgressEvent = z.object({
  type: z.literal('deploy_progress'),
  data: z.union([
    z.object({
      deploymentId: z.string(),
      deployId: z.string(),
      machine: z.string(),
      stage: z.string(),
      message: z.string(),
    }),
    z.object({
      deploymentId: z.string(),
      deployId: z.string(),
      status: z.enum(['succeeded', 'failed', 'partial']),
      results: z.array(deployMachineResult),
    }),
  ]),
});

/** The answer to a client's `ping`. */
export const pongEvent = z.object({ type: z.literal('pong'), data: z.object({}) });

/**
 * `GET /api/me/events` (server-sent events, one stream per signed-in user): the caller was
 * added to a project, their role changed (`role`), or they are no longer a member (`role`
 * null); the dashboard reads its list again without a reload.
 */
export const userMembershipEvent = z.object({
  type: z.literal('membership'),
  data: z.object({ projectId: z.string(), role: projectRole.nullable() }),
});

/** Every event of the user's stream `GET /api/me/events` (SSE `event:` is the `type`). */
export const userEvent = z.discriminatedUnion('type', [userMembershipEvent]);
/** An event of the user's stream. */
export type UserEvent = z.infer<typeof userEvent>;

/** Every message the project socket sends: `{type, data}`. */
export const projectEvent = z.discriminatedUnion('type', [
  fileChangedEvent,
  filesChangedEvent,
  containerStatusEvent,
  claudeProgressEvent,
  claudeResponseEvent,
  claudeErrorEvent,
  chatEvent,
  chatRewoundEvent,
  checkpointCreatedEvent,
  reviewChangedEvent,
  presenceEvent,
  membershipEvent,
  environmentChangedEvent,
  integrationChangedEvent,
  infrastructureStatusEvent,
  infrastructureEventEvent,
  agentStatusEvent,
  deployProgressEvent,
  pongEvent,
]);

/** A project socket event. */
export type ProjectEvent = z.infer<typeof projectEvent>;
/** The `type` of a project socket event. */
export type ProjectEventType = ProjectEvent['type'];
/** The `data` of the project socket event named `T`. */
export type ProjectEventData<T extends ProjectEventType> = Extract<
  ProjectEvent,
  { type: T }
>['data'];
/** A session chat message. */
export type SessionChatMessage = z.infer<typeof sessionChatMessage>;
/** An assistant chat message. */
export type AssistantChatMessage = z.infer<typeof assistantChatMessage>;
/** How a deploy ended on one machine. */
export type DeployMachineResult = z.infer<typeof deployMachineResult>;

/**
 * The file changes an event announces, one `file_changed`'s data per file: itself for a
 * `file_changed`, each file of a `files_changed`, none for other events.
 */
export function fileChangesOf(event: ProjectEvent): ProjectEventData<'file_changed'>[] {
  if (event.type === 'file_changed') return [event.data];
  if (event.type !== 'files_changed') return [];
  const { source, userId } = event.data;
  return event.data.files.map((f) => ({ ...f, source, ...(userId ? { userId } : {}) }));
}

/** Builds a project event; the compiler accepts only a member of the union. */
export function projectEventOf<T extends ProjectEventType>(
  type: T,
  data: ProjectEventData<T>,
): ProjectEvent {
  return { type, data } as ProjectEvent;
}

/**
 * Parses one message of the project socket (already JSON-decoded). An unknown type or a shape
 * that does not match yields `{ok: false}` with the reason, for the caller to log and ignore.
 */
export function parseProjectEvent(
  raw: unknown,
): { ok: true; event: ProjectEvent } | { ok: false; error: string } {
  const result = projectEvent.safeParse(raw);
  if (result.success) return { ok: true, event: result.data };
  return { ok: false, error: z.prettifyError(result.error) };
}

/** What a client may send on the project socket: `{"type":"ping"}` (answered with `pong`). */
export const projectSocketClientMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ping') }),
]);
export type ProjectSocketClientMessage = z.infer<typeof projectSocketClientMessage>;

/**
 * The terminal's control frame (a text frame); any other frame is keystrokes. The TTY's output
 * arrives as binary frames.
 */
export const terminalControlFrame = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('resize'),
    cols: z.number().int().min(1).max(500),
    rows: z.number().int().min(1).max(200),
  }),
]);
export type TerminalControlFrame = z.infer<typeof terminalControlFrame>;

/** Close codes of the project socket and the terminal that a client acts on. */
export const socketCloseCodes = {
  /** The terminal's shell exited. */
  exited: 1000,
  /** The server is shutting down: reconnect later. */
  shutdown: 1001,
  /** The session was revoked (signed out elsewhere, password changed): stop. */
  revoked: 4401,
  /** The terminal's user lost the editor role: stop. */
  forbidden: 4403,
  /** No longer a member of the project: stop. */
  removed: 4404,
} as const;
