import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { streamSSE } from 'hono/streaming';
import {
  bearerSecurity,
  createRouter,
  errorResponses,
  jsonBody,
  jsonResponse,
  UuidParam,
} from '../../common/router.ts';
import { jsonObject, text } from '../../common/text.ts';
import type { ProjectAccess, ProjectsService } from '../projects/index.ts';
import type { AiService, ChatEvent } from './service.ts';

const tags = ['AI assistant'];
const maxMessageChars = 100_000;

const ProjectIdBody = text().max(100).openapi({
  description: 'The project (you need the editor role or better)',
  example: '2f6d9c1e-8f7b-4e0a-9a57-4d2f8e3c1b20',
});

const FileChangeSchema = z
  .object({
    path: z.string(),
    content: z.string().openapi({ description: 'Content after the change (empty for a delete)' }),
    operation: z.enum(['create', 'update', 'delete']),
  })
  .openapi('FileChange');

const ClaudeResponseSchema = z
  .object({
    success: z.boolean(),
    message: z.string().openapi({ description: 'What the assistant said (or why it stopped)' }),
    changes: z.array(FileChangeSchema),
    commands: z.array(
      z.object({
        command: z.string(),
        args: z.array(z.string()),
        workingDirectory: z.string(),
      }),
    ),
    changesetId: z.uuid().nullable().openapi({
      description: 'The changeset of this turn (revert it as a whole); null when no file changed',
    }),
  })
  .openapi('ClaudeResponse');

const RequestSchema = z
  .object({
    requestId: z.uuid(),
    projectId: z.uuid(),
    type: z.enum(['create', 'modify', 'debug', 'deploy']),
    status: z.enum(['queued', 'running', 'succeeded', 'failed']),
    attempts: z.number().int().openapi({ description: 'Deliveries so far (at-least-once)' }),
    result: ClaudeResponseSchema.optional(),
    error: z.string().optional(),
    createdAt: z.string(),
    finishedAt: z.string().optional(),
  })
  .openapi('ClaudeRequest');

const ChatMessageSchema = z
  .object({
    id: z.uuid(),
    role: z.enum(['user', 'assistant']),
    content: z.string(),
    userId: z.uuid().nullable().openapi({ description: 'Who wrote it (null for the assistant)' }),
    tools: z
      .array(
        z.object({
          name: z.string(),
          summary: z.string(),
          isError: z.boolean(),
          at: z
            .number()
            .int()
            .nonnegative()
            .optional()
            .openapi({
              description:
                'Where the tool ran: the length (UTF-16 code units) of the part of `content` ' +
                'written before it ' +
                '(absent on messages stored before offsets were kept: show their tools after ' +
                'the text)',
            }),
        }),
      )
      .openapi({ description: 'The tools the assistant used, in the order they ran' }),
    changesetId: z.uuid().nullable(),
    usage: z.object({ inputTokens: z.number(), outputTokens: z.number() }).nullable(),
    error: z.string().nullable(),
    createdAt: z.string(),
    rewoundAt: z
      .string()
      .nullable()
      .openapi({
        description:
          'When a checkpoint restore rewound the chat past this message: it is kept in the ' +
          'history but no longer part of the assistant’s context',
      }),
  })
  .openapi('ChatMessage');

const HunkSchema = z
  .object({
    id: z.string().openapi({ description: 'Stable id of the hunk within its changeset' }),
    oldStart: z.number().int(),
    oldLines: z.number().int(),
    newStart: z.number().int(),
    newLines: z.number().int(),
    diff: z.string().openapi({ description: 'The hunk as unified diff text (no context lines)' }),
    state: z.enum(['pending', 'accepted', 'rejected']),
    decidedBy: z.uuid().nullable(),
    decidedAt: z.string().nullable(),
  })
  .openapi('ChangesetHunk');

const ChangesetSchema = z
  .object({
    id: z.uuid(),
    projectId: z.uuid(),
    status: z.enum(['open', 'applied', 'reverted', 'discarded']),
    origin: z.string(),
    requestId: z.uuid().nullable(),
    createdAt: z.string(),
    files: z.array(
      z.object({
        path: z.string(),
        operation: z.enum(['create', 'update', 'delete']),
        beforeVersion: z.number().int().nullable(),
        afterVersion: z.number().int().nullable(),
        diff: z.string().openapi({ description: 'Unified diff from before the turn to after it' }),
        hunks: z.array(HunkSchema),
      }),
    ),
  })
  .openapi('Changeset');

const ProjectParam = z.object({ id: UuidParam.openapi({ param: { name: 'id', in: 'path' } }) });
const ChangesetParams = ProjectParam.extend({
  changesetId: text().openapi({ param: { name: 'changesetId', in: 'path' } }),
});
const HunkParams = ChangesetParams.extend({
  hunkId: text().openapi({ param: { name: 'hunkId', in: 'path' } }),
});
const decisionNames = { accept: 'accepted', reject: 'rejected', undo: 'pending' } as const;
type DecisionVerb = keyof typeof decisionNames;
const decisionSummaries: Record<DecisionVerb, [string, string]> = {
  accept: ['Accept one hunk of a changeset', 'Accept every hunk of a changeset'],
  reject: ['Reject one hunk of a changeset', 'Reject every hunk of a changeset'],
  undo: [
    'Undo the decision on one hunk: it is pending again',
    'Undo every decision on a changeset: all its hunks are pending again',
  ],
};

const PendingReviewSchema = z
  .object({
    files: z.array(
      z.object({
        path: z.string(),
        hunks: z.array(
          z.object({
            changesetId: z.uuid(),
            hunkId: z.string(),
            line: z
              .number()
              .int()
              .nullable()
              .openapi({
                description:
                  '1-based first line of the hunk’s text in the file as it is now; for a removal ' +
                  '(`lines` 0) the line after which text was removed (0: the top); null when it ' +
                  'cannot be found any more',
              }),
            lines: z.number().int().openapi({ description: 'Lines it covers now' }),
          }),
        ),
      }),
    ),
  })
  .openapi('PendingReview');

/** /api/claude/*: queued requests and synchronous modifications (projectId in the body). */
export function createClaudeRoutes(deps: {
  ai: AiService;
  projects: ProjectsService;
  requireAuth: MiddlewareHandler;
}): OpenAPIHono {
  const { ai, projects } = deps;
  const process = createRoute({
    method: 'post',
    path: '/process',
    tags,
    summary: 'Queue a request for the assistant (editor)',
    description:
      'Runs on a durable queue with at-least-once delivery; an interrupted run is rolled back ' +
      'and run again, so its changes apply once. Progress and the result arrive on the project ' +
      'WebSocket as `claude-progress`, `claude-response` or `claude-error`, and at ' +
      '`GET /api/claude/requests/{requestId}`. `create` builds the app from the description ' +
      '(closest template, or empty) and starts it; `debug` reads logs, fixes, and checks the ' +
      'dev server answers.',
    security: bearerSecurity,
    request: {
      body: jsonBody(
        z.object({
          projectId: ProjectIdBody,
          message: text().trim().min(1).max(maxMessageChars),
          type: z.enum(['create', 'modify', 'debug', 'deploy']),
          context: jsonObject().optional(),
        }),
      ),
    },
    responses: {
      202: jsonResponse(z.object({ requestId: z.uuid() }), 'Queued'),
      ...errorResponses(400, 401, 403, 404, 503),
    },
  });
  const getRequest = createRoute({
    method: 'get',
    path: '/requests/{requestId}',
    tags,
    summary: 'A queued request’s status and result (editor)',
    security: bearerSecurity,
    request: {
      params: z.object({
        requestId: text().openapi({ param: { name: 'requestId', in: 'path' } }),
      }),
    },
    responses: {
      200: jsonResponse(RequestSchema, 'The request'),
      ...errorResponses(401, 403, 404),
    },
  });
  const modify = createRoute({
    method: 'post',
    path: '/modify',
    tags,
    summary: 'Change the project as instructed, synchronously (editor)',
    description:
      'Answers when the assistant is done: the seeds’ ClaudeResponse plus `changesetId`, ' +
      'which `POST /api/projects/{id}/changesets/{changesetId}/revert` undoes.',
    security: bearerSecurity,
    request: {
      body: jsonBody(
        z.object({
          projectId: ProjectIdBody,
          instruction: text().trim().min(1).max(maxMessageChars),
          files: z.array(text().max(1024)).max(100).optional(),
        }),
      ),
    },
    responses: {
      200: jsonResponse(ClaudeResponseSchema, 'What the assistant did'),
      ...errorResponses(400, 401, 403, 404, 503),
    },
  });

  const app = createRouter();
  app.use('*', deps.requireAuth);
  return app
    .openapi(process, async (c) => {
      const body = c.req.valid('json');
      const { project } = await projects.requireRole(body.projectId, c.var.auth.userId, 'editor');
      const queued = await ai.enqueue(project, c.var.auth.userId, body);
      return c.json(queued, 202);
    })
    .openapi(getRequest, async (c) => {
      const { requestId } = c.req.valid('param');
      return c.json(await ai.request(requestId, c.var.auth.userId), 200);
    })
    .openapi(modify, async (c) => {
      const body = c.req.valid('json');
      const { project } = await projects.requireRole(body.projectId, c.var.auth.userId, 'editor');
      return c.json(await ai.modify(project, c.var.auth.userId, body), 200);
    });
}

/** /api/projects/:id/chat and /api/projects/:id/changesets/… (mounted at /api/projects). */
export function createAiProjectRoutes(deps: {
  ai: AiService;
  requireAuth: MiddlewareHandler;
  projectAccess: ProjectAccess;
}): OpenAPIHono {
  const { ai } = deps;
  const editor = deps.projectAccess('editor');
  const chat = createRoute({
    method: 'post',
    path: '/{id}/chat',
    tags,
    summary: 'Chat with the assistant, streamed (editor)',
    description:
      'A `text/event-stream` of `text` `{delta}`, `tool` `{id, name, input, result, isError}`, ' +
      '`file_change` `{path, operation, diff}`, then `done` `{messageId, changesetId, usage, ' +
      'stopped?}` or `error` `{code, message}`. The turn runs to its end even if the client ' +
      'disconnects, unless an editor stops it (`POST …/chat/stop`); both messages are kept in the project’s chat history.',
    security: bearerSecurity,
    middleware: [editor] as const,
    request: {
      params: ProjectParam,
      body: jsonBody(z.object({ message: text().trim().min(1).max(maxMessageChars) })),
    },
    responses: {
      200: {
        description: 'Server-sent events',
        content: { 'text/event-stream': { schema: z.string() } },
      },
      ...errorResponses(400, 401, 403, 404, 503),
    },
  });
  const stop = createRoute({
    method: 'post',
    path: '/{id}/chat/stop',
    tags,
    summary: 'Stop the assistant’s chat turn in progress (editor)',
    description:
      'Every chat turn running in the project ends where it is (whichever instance runs it): ' +
      'its stream ends with `done` whose `stopped.reason` is `cancelled`; the text so far and ' +
      'the files it changed are kept (its changeset can be reviewed and reverted). Nothing ' +
      'happens when no turn runs.',
    security: bearerSecurity,
    middleware: [editor] as const,
    request: { params: ProjectParam },
    responses: {
      202: jsonResponse(z.object({ stopping: z.literal(true) }), 'Stop sent'),
      ...errorResponses(401, 403, 404),
    },
  });
  const history = createRoute({
    method: 'get',
    path: '/{id}/chat',
    tags,
    summary: 'The project’s chat history, oldest first (editor)',
    security: bearerSecurity,
    middleware: [editor] as const,
    request: {
      params: ProjectParam,
      query: z.object({ limit: z.coerce.number().int().min(1).max(1000).optional() }),
    },
    responses: {
      200: jsonResponse(z.object({ messages: z.array(ChatMessageSchema) }), 'Messages'),
      ...errorResponses(400, 401, 403, 404),
    },
  });
  const getChangeset = createRoute({
    method: 'get',
    path: '/{id}/changesets/{changesetId}',
    tags,
    summary: 'A changeset: the files one AI turn changed, with diffs and hunks (any member)',
    description:
      'Each file’s hunks (contiguous changes, ids stable) with their review state: `pending` ' +
      'until someone accepts or rejects them. Viewers see the review; only editors decide.',
    security: bearerSecurity,
    middleware: [deps.projectAccess('viewer')] as const,
    request: { params: ChangesetParams },
    responses: {
      200: jsonResponse(z.object({ changeset: ChangesetSchema }), 'The changeset'),
      ...errorResponses(401, 403, 404),
    },
  });
  const revert = createRoute({
    method: 'post',
    path: '/{id}/changesets/{changesetId}/revert',
    tags,
    summary: 'Undo a changeset (editor)',
    description:
      'Restores every file the turn touched as it was before (a new version each; history is ' +
      'kept). 409 when a file changed since, listing them in `details.conflicts`, unless ' +
      '`force` is true.',
    security: bearerSecurity,
    middleware: [editor] as const,
    request: {
      params: ChangesetParams,
      body: {
        required: false,
        content: { 'application/json': { schema: z.object({ force: z.boolean().optional() }) } },
      },
    },
    responses: {
      200: jsonResponse(z.object({ reverted: z.array(z.string()) }), 'Paths restored'),
      ...errorResponses(400, 401, 403, 404, 409, 503),
    },
  });

  const decisionText = (verb: DecisionVerb) =>
    (verb === 'reject'
      ? 'Restores the old text of the hunk(s) as a new version of each file, found by its ' +
        'context when the file changed since; 409 `conflict` (nothing changed) when it ' +
        'cannot be found. '
      : verb === 'accept'
        ? 'Records the decision; accepting a rejected hunk puts its new text back the same ' +
          'way (409 when it cannot be found). '
        : 'Forgets the decision (the hunk is `pending` again); undoing a reject puts the ' +
          'hunk’s new text back the same way (409 when it cannot be found). ') +
    'Decisions can be reversed; each is recorded (who, when), logged in the activity and ' +
    'announced to members as a `review_changed` event.';
  const decided = {
    200: jsonResponse(z.object({ changeset: ChangesetSchema }), 'The changeset afterwards'),
    ...errorResponses(401, 403, 404, 409, 413, 503),
  };
  const hunkRoute = (verb: DecisionVerb) =>
    createRoute({
      method: 'post',
      path: `/{id}/changesets/{changesetId}/hunks/{hunkId}/${verb}`,
      tags,
      summary: `${decisionSummaries[verb][0]} (editor)`,
      description: decisionText(verb),
      security: bearerSecurity,
      middleware: [editor] as const,
      request: { params: HunkParams },
      responses: decided,
    });
  const allRoute = (verb: DecisionVerb) =>
    createRoute({
      method: 'post',
      path: `/{id}/changesets/{changesetId}/${verb}`,
      tags,
      summary: `${decisionSummaries[verb][1]} (editor)`,
      description: decisionText(verb),
      security: bearerSecurity,
      middleware: [editor] as const,
      request: { params: ChangesetParams },
      responses: decided,
    });

  const pending = createRoute({
    method: 'get',
    path: '/{id}/review/pending',
    tags,
    summary: 'The assistant’s changes nobody has reviewed yet, by file (any member)',
    description:
      'Every `pending` hunk of the project’s latest 50 applied changesets, with where its ' +
      'text is in the file now (for marks in the editor’s gutter and the explorer). ' +
      '`review_changed`, `file_changed`, `files_changed` and assistant `chat` events say when ' +
      'to read it again.',
    security: bearerSecurity,
    middleware: [deps.projectAccess('viewer')] as const,
    request: { params: ProjectParam },
    responses: {
      200: jsonResponse(PendingReviewSchema, 'Files with pending hunks'),
      ...errorResponses(401, 403, 404, 503),
    },
  });

  const app = createRouter();
  // Only these paths: other routers share /api/projects.
  for (const path of ['/:id/chat', '/:id/chat/stop', '/:id/changesets/*', '/:id/review/*']) {
    app.use(path, deps.requireAuth);
  }
  app
    .openapi(chat, async (c) => {
      ai.requireProvider();
      const { message } = c.req.valid('json');
      const project = c.var.project;
      const userId = c.var.auth.userId;
      return streamSSE(c, async (stream) => {
        let chain = Promise.resolve();
        const emit = (e: ChatEvent) => {
          chain = chain
            .then(() => stream.writeSSE({ event: e.event, data: JSON.stringify(e.data) }))
            .catch(() => undefined);
        };
        await ai.chat(project, userId, message, emit);
        await chain;
      });
    })
    .openapi(stop, async (c) => {
      await ai.stopChat(c.var.project.id);
      return c.json({ stopping: true as const }, 202);
    })
    .openapi(history, async (c) => {
      const { limit } = c.req.valid('query');
      return c.json({ messages: await ai.history(c.var.project.id, limit) }, 200);
    })
    .openapi(pending, async (c) => c.json(await ai.pending(c.var.project.id), 200))
    .openapi(getChangeset, async (c) => {
      const { changesetId } = c.req.valid('param');
      return c.json({ changeset: await ai.changeset(c.var.project.id, changesetId) }, 200);
    })
    .openapi(revert, async (c) => {
      const { changesetId } = c.req.valid('param');
      const body = c.req.header('content-type')?.includes('json') ? c.req.valid('json') : {};
      const result = await ai.revert(
        c.var.project.id,
        changesetId,
        c.var.auth.userId,
        body?.force === true,
      );
      return c.json(result, 200);
    });
  for (const verb of ['accept', 'reject', 'undo'] as const) {
    app.openapi(hunkRoute(verb), async (c) => {
      const { changesetId, hunkId } = c.req.valid('param');
      const changeset = await ai.decide({
        projectId: c.var.project.id,
        changesetId,
        hunkId,
        decision: decisionNames[verb],
        userId: c.var.auth.userId,
      });
      return c.json({ changeset }, 200);
    });
    app.openapi(allRoute(verb), async (c) => {
      const { changesetId } = c.req.valid('param');
      const changeset = await ai.decide({
        projectId: c.var.project.id,
        changesetId,
        hunkId: null,
        decision: decisionNames[verb],
        userId: c.var.auth.userId,
      });
      return c.json({ changeset }, 200);
    });
  }
  return app;
}
