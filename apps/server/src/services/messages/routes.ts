import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import {
  bearerSecurity,
  createRouter,
  errorResponses,
  jsonBody,
  jsonResponse,
  UuidParam,
} from '../../common/router.ts';
import { text } from '../../common/text.ts';
import type { ProjectAccess } from '../projects/index.ts';
import { maxMessageChars, SessionMessageSchema } from './schemas.ts';
import { pageLimits, type MessagesService } from './service.ts';

const tags = ['realtime'];

const ProjectParam = z.object({ id: UuidParam.openapi({ param: { name: 'id', in: 'path' } }) });

const Cursor = text().max(64).optional().openapi({
  description: 'A message id, or an ISO-8601 timestamp',
  example: '2026-01-01T12:00:00Z',
});

/** /api/projects/:id/messages (mounted at /api/projects). */
export function createMessagesRoutes(deps: {
  messages: MessagesService;
  requireAuth: MiddlewareHandler;
  projectAccess: ProjectAccess;
}): OpenAPIHono {
  const { messages, requireAuth } = deps;
  const member = deps.projectAccess('viewer');
  const post = createRoute({
    method: 'post',
    path: '/{id}/messages',
    tags,
    summary: 'Say something in the project’s session chat (any member)',
    description:
      'Stored, then pushed to every member’s project socket as a `chat` event ' +
      '`{type: "chat", data: {message}}`. Viewers may chat too: it is talk, not edits. ' +
      'Each person may post only so many messages in a short time (429 with Retry-After).',
    security: bearerSecurity,
    middleware: [requireAuth, member] as const,
    request: {
      params: ProjectParam,
      body: jsonBody(
        z.object({
          text: text()
            .trim()
            .min(1)
            .refine(
              (s) => [...s].length <= maxMessageChars,
              `must be at most ${maxMessageChars} characters`,
            )
            .openapi({
              description: `1..${maxMessageChars} characters (leading and trailing spaces dropped)`,
            }),
        }),
      ),
    },
    responses: {
      201: jsonResponse(z.object({ message: SessionMessageSchema }), 'The message'),
      ...errorResponses(400, 401, 404, 413, 429),
    },
  });
  const list = createRoute({
    method: 'get',
    path: '/{id}/messages',
    tags,
    summary: 'The project’s session chat, oldest first (any member)',
    description:
      `The newest \`limit\` messages (default ${pageLimits.default}, at most ` +
      `${pageLimits.max}), or the newest before \`before\` (older pages), or the oldest after ` +
      '`after` (what a reconnecting client missed); always oldest first, newest last.',
    security: bearerSecurity,
    middleware: [requireAuth, member] as const,
    request: {
      params: ProjectParam,
      query: z.object({
        before: Cursor,
        after: Cursor,
        limit: z.coerce.number().int().min(1).max(pageLimits.max).optional(),
      }),
    },
    responses: {
      200: jsonResponse(z.object({ messages: z.array(SessionMessageSchema) }), 'Messages'),
      ...errorResponses(400, 401, 404),
    },
  });

  return createRouter()
    .openapi(post, async (c) => {
      const { text: body } = c.req.valid('json');
      const message = await messages.post(c.var.project.id, c.var.auth.userId, body);
      return c.json({ message }, 201);
    })
    .openapi(list, async (c) => {
      const query = c.req.valid('query');
      return c.json({ messages: await messages.list(c.var.project.id, query) }, 200);
    });
}
