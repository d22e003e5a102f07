import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { errors } from '../../common/errors.ts';
import { bearerSecurity, createRouter, errorResponses } from '../../common/router.ts';
import type { ProjectAccess } from '../projects/index.ts';

const terminal = (access: ProjectAccess, requireAuth: MiddlewareHandler) =>
  createRoute({
    method: 'get',
    path: '/{id}/terminal',
    tags: ['terminal'],
    summary: 'WebSocket: a TTY in the project’s container (editor)',
    description:
      'Upgrade to a WebSocket (`?token=<access token>`, optional `cols`, `rows`). Send ' +
      'keystrokes as text or binary frames and `{"type":"resize","cols":n,"rows":n}` to resize; ' +
      'the TTY’s output arrives as binary frames. A browser’s Origin must be the IDE’s. Close ' +
      'codes: 1000 shell exited, 4401 session revoked, 4403 access removed. A plain GET is 400.',
    security: bearerSecurity,
    middleware: [requireAuth, access('editor')] as const,
    request: {
      params: z.object({
        id: z.string().openapi({ param: { name: 'id', in: 'path' }, format: 'uuid' }),
      }),
    },
    responses: {
      101: { description: 'Switching protocols' },
      ...errorResponses(400, 401, 403, 404, 409),
    },
  });

/** Documents the terminal WebSocket in OpenAPI; a request without an upgrade is refused. */
export function createTerminalRoutes(deps: {
  projectAccess: ProjectAccess;
  requireAuth: MiddlewareHandler;
}): OpenAPIHono {
  return createRouter().openapi(terminal(deps.projectAccess, deps.requireAuth), () => {
    throw errors.invalid('This endpoint is a WebSocket: send an Upgrade request');
  });
}
