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
import { ProjectName, ProjectSchema, type ProjectAccess } from '../projects/index.ts';
import type { CheckpointsService } from './service.ts';

const tags = ['checkpoints and forks'];

const CheckpointSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    kind: z.enum(['manual', 'assistant', 'restore']).openapi({
      description:
        '`assistant`: made before an assistant turn; `restore`: the state before a restore',
    }),
    createdAt: z.string(),
    createdBy: z.uuid().nullable(),
    files: z.number().int().openapi({ description: 'How many files the project had' }),
    envNames: z.array(z.string()).openapi({ description: 'Its environment variables (names)' }),
    chatMessageId: z.uuid().nullable().openapi({
      description: 'The last chat message visible then (null: the chat was empty)',
    }),
  })
  .openapi('Checkpoint');

const ProjectParam = z.object({ id: UuidParam.openapi({ param: { name: 'id', in: 'path' } }) });
const CheckpointParams = ProjectParam.extend({
  checkpointId: text().openapi({ param: { name: 'checkpointId', in: 'path' } }),
});
const restartField = z.boolean().openapi({
  description:
    'The container restarts: a root manifest or lockfile (package.json, requirements.txt…) ' +
    'differs, or an entry file (server.js…) appears or goes away — only when it is running',
});

/** /api/projects/:id/checkpoints… and /api/projects/:id/fork (mounted at /api/projects). */
export function createCheckpointsRoutes(deps: {
  checkpoints: CheckpointsService;
  requireAuth: MiddlewareHandler;
  projectAccess: ProjectAccess;
}): OpenAPIHono {
  const { checkpoints } = deps;
  const editor = deps.projectAccess('editor');
  const member = deps.projectAccess('viewer');
  const list = createRoute({
    method: 'get',
    path: '/{id}/checkpoints',
    tags,
    summary: 'The project’s checkpoints, newest first (editor)',
    security: bearerSecurity,
    middleware: [editor] as const,
    request: { params: ProjectParam },
    responses: {
      200: jsonResponse(z.object({ checkpoints: z.array(CheckpointSchema) }), 'Checkpoints'),
      ...errorResponses(401, 403, 404),
    },
  });
  const create = createRoute({
    method: 'post',
    path: '/{id}/checkpoints',
    tags,
    summary: 'Save a checkpoint (editor)',
    description:
      'Records every file’s version (nothing is copied), the chat position, the configuration ' +
      'and the environment’s names. One is also made before every assistant turn and before ' +
      'every restore.',
    security: bearerSecurity,
    middleware: [editor] as const,
    request: {
      params: ProjectParam,
      body: jsonBody(z.object({ name: text().trim().min(1).max(200) })),
    },
    responses: {
      201: jsonResponse(z.object({ checkpoint: CheckpointSchema }), 'The checkpoint'),
      ...errorResponses(400, 401, 403, 404),
    },
  });
  const preview = createRoute({
    method: 'get',
    path: '/{id}/checkpoints/{checkpointId}',
    tags,
    summary: 'A checkpoint and what restoring it would change now (editor)',
    security: bearerSecurity,
    middleware: [editor] as const,
    request: { params: CheckpointParams },
    responses: {
      200: jsonResponse(
        z.object({
          checkpoint: CheckpointSchema,
          write: z.array(z.string()).openapi({ description: 'Paths that would be written back' }),
          remove: z.array(z.string()).openapi({ description: 'Paths created since, removed' }),
          restart: restartField.openapi({
            description:
              'The run command or the dependencies differ (the container restarts if running)',
          }),
        }),
        'What a restore would change',
      ),
      ...errorResponses(401, 403, 404),
    },
  });
  const restore = createRoute({
    method: 'post',
    path: '/{id}/checkpoints/{checkpointId}/restore',
    tags,
    summary: 'Bring the project back to a checkpoint (editor)',
    description:
      'Every file goes back to its version then, as new versions in one transaction (files ' +
      'created since are removed, deleted ones come back); the chat is rewound (later ' +
      'messages stay in the history with `rewoundAt`). A checkpoint of the state before is ' +
      'made first (`checkpoint`): restoring it undoes this. Configuration and environment ' +
      'are left as they are. Answered once the database holds the files; the workspace ' +
      'follows before any later change, then a running container restarts when `restart`.',
    security: bearerSecurity,
    middleware: [editor] as const,
    request: { params: CheckpointParams },
    responses: {
      200: jsonResponse(
        z.object({
          restored: z.object({
            files: z.array(z.string()).openapi({ description: 'Paths written back' }),
            removed: z.array(z.string()).openapi({ description: 'Paths created since, removed' }),
          }),
          restart: restartField,
          checkpoint: CheckpointSchema.openapi({
            description: 'The state before the restore (restore it to undo)',
          }),
          from: CheckpointSchema.openapi({ description: 'The checkpoint restored' }),
        }),
        'What changed',
      ),
      ...errorResponses(401, 403, 404, 409, 413, 503),
    },
  });
  const fork = createRoute({
    method: 'post',
    path: '/{id}/fork',
    tags,
    summary: 'Fork the project (any member)',
    description:
      'A new project owned by you alone with the files as they are now (or at `checkpointId`), ' +
      'the configuration and the environment’s names. Values are copied only when you may ' +
      'read them (editor and up); otherwise the variables are empty. The fork records its ' +
      'origin (`origin`, and `project_forked` in both activity logs).',
    security: bearerSecurity,
    middleware: [member] as const,
    request: {
      params: ProjectParam,
      body: jsonBody(
        z.object({
          name: ProjectName.openapi({ description: 'Unique among your projects, ignoring case' }),
          checkpointId: text().max(100).optional(),
        }),
      ),
    },
    responses: {
      201: jsonResponse(
        z.object({
          project: ProjectSchema,
          origin: z.object({ projectId: z.uuid(), checkpointId: z.uuid().nullable() }),
        }),
        'The fork',
      ),
      ...errorResponses(400, 401, 403, 404, 409, 413),
    },
  });

  const app = createRouter();
  // Only these paths: other routers share /api/projects.
  for (const path of ['/:id/checkpoints', '/:id/checkpoints/*', '/:id/fork']) {
    app.use(path, deps.requireAuth);
  }
  return app
    .openapi(list, async (c) => {
      return c.json({ checkpoints: await checkpoints.list(c.var.project.id) }, 200);
    })
    .openapi(create, async (c) => {
      const { name } = c.req.valid('json');
      const checkpoint = await checkpoints.create(c.var.project.id, c.var.auth.userId, {
        name,
        kind: 'manual',
      });
      return c.json({ checkpoint }, 201);
    })
    .openapi(preview, async (c) => {
      const { checkpointId } = c.req.valid('param');
      return c.json(await checkpoints.preview(c.var.project.id, checkpointId), 200);
    })
    .openapi(restore, async (c) => {
      const { checkpointId } = c.req.valid('param');
      return c.json(
        await checkpoints.restore(c.var.project.id, checkpointId, c.var.auth.userId),
        200,
      );
    })
    .openapi(fork, async (c) => {
      const body = c.req.valid('json');
      const result = await checkpoints.fork(c.var.project, c.var.auth.userId, body);
      return c.json(result, 201);
    });
}
