import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { bearerSecurity, createRouter, errorResponses } from '../../common/router.ts';
import { acceptWebSocket, ideOrigin, requireWebSocketUpgrade } from '../../common/websocket.ts';
import type { ProjectAccess } from '../projects/index.ts';
import type { TerminalService } from './service.ts';

/** A terminal size from the query: anything that is not a small positive integer is ignored. */
const size = z.string().optional();

const terminal = (middleware: MiddlewareHandler[]) =>
  createRoute({
    method: 'get',
    path: '/{id}/terminal',
    tags: ['terminal'],
    summary: 'WebSocket: a TTY in the project’s container (editor)',
    description:
      'Upgrade to a WebSocket (`?token=<access token>`, optional `cols`, `rows`). Send ' +
      'keystrokes as text or binary frames and `{"type":"resize","cols":n,"rows":n}` to resize ' +
      '(asyncapi.json, channel `terminal`); the TTY’s output arrives as binary frames. A ' +
      'browser’s Origin must be the IDE’s. Close codes: 1000 shell exited, 4401 session ' +
      'revoked, 4403 access removed. A plain GET is 400.',
    'x-asyncapi-channel': 'terminal',
    security: bearerSecurity,
    middleware,
    request: {
      params: z.object({
        id: z.string().openapi({ param: { name: 'id', in: 'path' }, format: 'uuid' }),
      }),
      query: z.object({ token: z.string().optional(), cols: size, rows: size }),
    },
    responses: {
      101: { description: 'Switching protocols' },
      ...errorResponses(400, 401, 403, 404, 409),
    },
  });

/** `WS /api/projects/:id/terminal`, behind the Origin check, `requireAuth` and `projectAccess('editor')`. */
export function createTerminalRoutes(deps: {
  terminal: TerminalService;
  projectAccess: ProjectAccess;
  requireAuth: MiddlewareHandler;
  /** The IDE's base URL: a browser's Origin must be its origin. */
  publicUrl: string;
}): OpenAPIHono {
  const route = terminal([
    ideOrigin(deps.publicUrl),
    deps.requireAuth,
    deps.projectAccess('editor'),
  ]);
  return createRouter().openapi(route, async (c) => {
    requireWebSocketUpgrade(c);
    const query = c.req.valid('query');
    const tty = await deps.terminal.prepare(
      { projectId: c.var.project.id, userId: c.var.auth.userId, sessionId: c.var.auth.sessionId },
      { cols: Number(query.cols), rows: Number(query.rows) },
    );
    return acceptWebSocket(c, tty.open, { abandoned: tty.abandon });
  });
}
