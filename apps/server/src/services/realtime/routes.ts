import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { bearerSecurity, createRouter, errorResponses } from '../../common/router.ts';
import { acceptWebSocket, ideOrigin, requireWebSocketUpgrade } from '../../common/websocket.ts';
import type { ProjectAccess } from '../projects/index.ts';
import type { ProjectSocketHub } from './project-socket.ts';

const projectSocket = (middleware: MiddlewareHandler[]) =>
  createRoute({
    method: 'get',
    path: '/{id}/ws',
    tags: ['realtime'],
    summary: 'WebSocket: the project’s live events (members, viewers included)',
    description:
      'Upgrade to a WebSocket (`?token=<access token>` or a bearer header). Every message is ' +
      'JSON `{type, data}`, one of the events of asyncapi.json (channel `projectSocket`): ' +
      '`file_changed`, `container_status`, `claude-progress`, `claude-response`, `claude-error`, ' +
      '`chat`, `presence`, `membership`, `environment_changed`, … Send `{"type":"ping"}` for a ' +
      '`pong`. A browser’s Origin must be the IDE’s (403). Close codes: 4401 session revoked, ' +
      '4404 no longer a member. A plain GET is 400.',
    'x-asyncapi-channel': 'projectSocket',
    security: bearerSecurity,
    middleware,
    request: {
      params: z.object({
        id: z.string().openapi({ param: { name: 'id', in: 'path' }, format: 'uuid' }),
      }),
      query: z.object({ token: z.string().optional() }),
    },
    responses: {
      101: { description: 'Switching protocols' },
      ...errorResponses(400, 401, 403, 404, 503),
    },
  });

/** `WS /api/projects/:id/ws`, behind the Origin check, `requireAuth` and `projectAccess('viewer')`. */
export function createProjectSocketRoutes(deps: {
  hub: ProjectSocketHub;
  requireAuth: MiddlewareHandler;
  projectAccess: ProjectAccess;
  /** The IDE's base URL: a browser's Origin must be its origin. */
  publicUrl: string;
}): OpenAPIHono {
  const route = projectSocket([
    ideOrigin(deps.publicUrl),
    deps.requireAuth,
    deps.projectAccess('viewer'),
  ]);
  return createRouter().openapi(route, async (c) => {
    requireWebSocketUpgrade(c);
    const { project } = c.var;
    const socket = await deps.hub.prepare({
      projectId: project.id,
      userId: c.var.auth.userId,
      sessionId: c.var.auth.sessionId,
      role: project.role,
    });
    return acceptWebSocket(c, socket.open, { abandoned: socket.abandon });
  });
}
