import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { streamSSE } from 'hono/streaming';
import { bearerSecurity, createRouter, errorResponses, jsonResponse } from '../../common/router.ts';
import type { ProjectAccess } from '../projects/index.ts';
import type { ContainersService } from './service.ts';

const ContainerSchema = z
  .object({
    id: z.string().openapi({ description: 'Container id (docker) or process-<pid>' }),
    projectId: z.uuid(),
    status: z.enum(['starting', 'running', 'crashed', 'stopped', 'error']).openapi({
      description:
        'crashed: the dev server died while the project should run (see crash); error: it could not be started',
    }),
    ports: z.record(z.string(), z.number().int()).openapi({
      description:
        'Container port → published port (on 127.0.0.1, or on the engine’s address when it is remote)',
      example: { 3000: 49153 },
    }),
    serviceUrl: z.string().nullable().openapi({
      description: 'Internal address of the dev server (the host, or a remote engine)',
    }),
    previewUrl: z.string().nullable().openapi({ description: 'Where members see the preview' }),
    health: z.enum(['healthy', 'unhealthy', 'starting', 'unknown']),
    runtime: z.enum(['docker', 'process', 'kubernetes']),
    image: z.string(),
    pooled: z.boolean().openapi({ description: 'Taken ready-made from the warm pool' }),
    reason: z.string().nullable().openapi({ description: 'Why it stopped or failed' }),
    crash: z
      .object({
        reason: z.string(),
        lines: z.array(z.string()).openapi({ description: 'Its last log lines, oldest first' }),
        at: z.string(),
      })
      .nullable()
      .openapi({ description: 'How the dev server crashed, while status is crashed' }),
    resources: z.object({
      cpuPercent: z.number().nullable(),
      memoryMb: z.number().nullable(),
      sampledAt: z.string().nullable(),
    }),
    createdAt: z.string(),
    lastActivity: z.string(),
  })
  .openapi('Container');

// Any string: a malformed id is answered 404 like a project the caller cannot see.
const ProjectIdParams = z.object({
  projectId: z.string().openapi({
    param: { name: 'projectId', in: 'path' },
    format: 'uuid',
    description: 'Project id; a malformed one is 404',
  }),
});

const booleanQuery = (description: string) =>
  z.enum(['true', 'false', '1', '0']).optional().openapi({ description });

const tags = ['containers'];

function routes(access: ProjectAccess, requireAuth: MiddlewareHandler) {
  const list = createRoute({
    method: 'get',
    path: '/',
    tags,
    summary: 'Containers of the projects you are a member of',
    security: bearerSecurity,
    middleware: [requireAuth] as const,
    responses: {
      200: jsonResponse(z.object({ containers: z.array(ContainerSchema) }), 'Your containers'),
      ...errorResponses(401),
    },
  });
  const get = createRoute({
    method: 'get',
    path: '/{projectId}',
    tags,
    summary: "A project's container (viewer)",
    security: bearerSecurity,
    middleware: [requireAuth, access('viewer', 'projectId')] as const,
    request: { params: ProjectIdParams },
    responses: {
      200: jsonResponse(z.object({ container: ContainerSchema }), 'The container'),
      ...errorResponses(401, 404),
    },
  });
  const action = (verb: 'start' | 'restart' | 'stop' | 'rebuild', summary: string) =>
    createRoute({
      method: 'post',
      path: `/{projectId}/${verb}`,
      tags,
      summary,
      security: bearerSecurity,
      middleware: [requireAuth, access('editor', 'projectId')] as const,
      request: {
        params: ProjectIdParams,
        query: z.object({
          wait: booleanQuery('Answer once the dev server answers (at most 2 minutes)'),
        }),
      },
      responses: {
        200: jsonResponse(
          z.object({ success: z.boolean(), container: ContainerSchema }),
          'What runs now',
        ),
        ...errorResponses(400, 401, 403, 404, 409, 503),
      },
    });
  const logs = createRoute({
    method: 'get',
    path: '/{projectId}/logs',
    tags,
    summary: "The container's output as server-sent events (editor)",
    description:
      'Each line is one `log` event; `?follow=false` sends the recent lines and ends. Editors ' +
      'only: a dev server may print configuration values.',
    security: bearerSecurity,
    middleware: [requireAuth, access('editor', 'projectId')] as const,
    request: {
      params: ProjectIdParams,
      query: z.object({
        follow: booleanQuery('Keep streaming new lines (default true)'),
        tail: z.coerce
          .number()
          .int()
          .min(0)
          .max(10_000)
          .optional()
          .openapi({ description: 'Lines of history first (default 200)' }),
      }),
    },
    responses: {
      200: {
        description: 'text/event-stream of `log` events (data: one line)',
        content: { 'text/event-stream': { schema: z.string() } },
      },
      ...errorResponses(400, 401, 403, 404),
    },
  });
  return {
    list,
    get,
    logs,
    start: action('start', "Start the project's container (editor)"),
    restart: action('restart', 'Restart it (editor)'),
    stop: action('stop', 'Stop it (editor)'),
    rebuild: action('rebuild', 'Replace it with a new container on the same files (editor)'),
  };
}

const truthy = (value: string | undefined, fallback: boolean) =>
  value === undefined ? fallback : value === 'true' || value === '1';

/** /api/containers: list, inspect, lifecycle actions and logs. */
export function createContainersRoutes(deps: {
  containers: ContainersService;
  projectAccess: ProjectAccess;
  requireAuth: MiddlewareHandler;
}): OpenAPIHono {
  const { containers } = deps;
  const r = routes(deps.projectAccess, deps.requireAuth);
  const app = createRouter();
  return app
    .openapi(r.list, async (c) =>
      c.json({ containers: await containers.list(c.var.auth.userId) }, 200),
    )
    .openapi(r.get, async (c) => c.json({ container: await containers.get(c.var.project.id) }, 200))
    .openapi(r.start, async (c) => {
      const wait = truthy(c.req.valid('query').wait, false);
      const container = await containers.start(c.var.project.id, { wait });
      return c.json({ success: true, container }, 200);
    })
    .openapi(r.restart, async (c) => {
      const wait = truthy(c.req.valid('query').wait, false);
      const container = await containers.restart(c.var.project.id, { wait });
      return c.json({ success: true, container }, 200);
    })
    .openapi(r.stop, async (c) => {
      const container = await containers.stop(c.var.project.id);
      return c.json({ success: true, container }, 200);
    })
    .openapi(r.rebuild, async (c) => {
      const wait = truthy(c.req.valid('query').wait, false);
      const container = await containers.rebuild(c.var.project.id, { wait });
      return c.json({ success: true, container }, 200);
    })
    .openapi(r.logs, async (c) => {
      const query = c.req.valid('query');
      const follow = truthy(query.follow, true);
      const tail = query.tail ?? 200;
      const projectId = c.var.project.id;
      c.header('Cache-Control', 'no-cache');
      c.header('X-Accel-Buffering', 'no');
      return streamSSE(c, async (stream) => {
        const abort = new AbortController();
        stream.onAbort(() => abort.abort());
        let id = 0;
        for await (const line of containers.logs(projectId, {
          follow,
          tail,
          signal: abort.signal,
        })) {
          if (stream.aborted || stream.closed) break;
          await stream.writeSSE({ event: 'log', data: line, id: String(++id) });
        }
        if (!stream.aborted) await stream.writeSSE({ event: 'end', data: '' });
      }) as never;
    });
}
