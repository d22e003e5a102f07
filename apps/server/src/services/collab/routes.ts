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
import { checkFilePath } from '../files/index.ts';
import type { ProjectAccess } from '../projects/index.ts';
import type { CollabService } from './server.ts';

const ProjectParam = z.object({ id: UuidParam.openapi({ param: { name: 'id', in: 'path' } }) });

/** /api/projects/:id/collab/save (mounted at /api/projects). */
export function createCollabRoutes(deps: {
  collab: CollabService;
  requireAuth: MiddlewareHandler;
  projectAccess: ProjectAccess;
}): OpenAPIHono {
  const { collab, requireAuth } = deps;
  const save = createRoute({
    method: 'post',
    path: '/{id}/collab/save',
    tags: ['collab'],
    summary: 'Ctrl+S on a shared document: write its text to its file now (editors)',
    description:
      'A file co-edited over `WS /api/collab` is written back after a pause in typing; a save ' +
      'writes it at once (a new file version by the saver, then `file_changed`, the workspace ' +
      'and the preview). Send it once your ops are acknowledged. `written: false` means ' +
      'another writer is mid-write: the text follows within a second or two.',
    security: bearerSecurity,
    middleware: [requireAuth, deps.projectAccess('editor')] as const,
    request: {
      params: ProjectParam,
      body: jsonBody(z.object({ path: text().openapi({ example: 'index.html' }) })),
    },
    responses: {
      200: jsonResponse(
        z.object({ written: z.boolean() }),
        'Whether the file now holds the document’s text',
      ),
      ...errorResponses(400, 401, 403, 404),
    },
  });
  return createRouter().openapi(save, async (c) => {
    const path = checkFilePath(c.req.valid('json').path);
    const written = await collab.save(c.var.project.id, path, c.var.auth.userId);
    return c.json({ written }, 200);
  });
}
