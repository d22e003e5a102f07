import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { streamSSE } from 'hono/streaming';
import {
  bearerSecurity,
  createRouter,
  errorResponses,
  jsonBody,
  jsonResponse,
} from '../../common/router.ts';
import type { InfraEvent, InfrastructureService } from './service.ts';

const statuses = [
  'queued',
  'planning',
  'applying',
  'ready',
  'failed',
  'canceled',
  'destroying',
  'destroyed',
] as const;

const DeploymentSchema = z
  .object({
    id: z.uuid(),
    projectId: z.uuid(),
    provider: z.enum(['local', 'aws', 'gcp', 'azure']),
    status: z.enum(statuses),
    variables: z.record(z.string(), z.unknown()),
    machines: z.array(
      z.object({
        name: z.string(),
        id: z.string(),
        address: z.string(),
        publicAddress: z.string().optional(),
        agent: z.enum(['pending', 'online', 'offline']),
        app: z
          .object({
            status: z.enum(['running', 'failed']),
            url: z.string().nullable(),
            release: z.string(),
            deployedAt: z.string(),
            rolledBack: z.boolean().optional(),
          })
          .nullable()
          .openapi({
            description:
              "The project's app on this machine from the last deploy that reached it: `running` " +
              '(answering at `url`; `rolledBack`: the previous release) or `failed`; null before any',
          }),
      }),
    ),
    outputs: z.record(z.string(), z.unknown()),
    drift: z
      .object({
        drift: z.boolean(),
        changes: z.array(z.object({ address: z.string(), action: z.string() })),
        checkedAt: z.string(),
      })
      .nullable(),
    lastRun: z
      .object({
        id: z.uuid(),
        kind: z.enum(['apply', 'destroy', 'refresh']),
        status: z.enum(statuses),
        startedAt: z.string(),
        finishedAt: z.string().nullable(),
        summary: z.unknown(),
        error: z.string().nullable(),
      })
      .nullable(),
    createdAt: z.string(),
  })
  .openapi('Deployment');

const RunSchema = z
  .object({
    id: z.uuid(),
    kind: z.enum(['apply', 'destroy', 'refresh']),
    status: z.enum(statuses),
    startedBy: z
      .object({ id: z.uuid(), name: z.string() })
      .nullable()
      .openapi({ description: 'Who started the run; null once their account is gone' }),
    startedAt: z.string(),
    finishedAt: z.string().nullable(),
    durationMs: z.number().int().nullable().openapi({ description: 'Null while it runs' }),
    planSummary: z
      .object({ add: z.number().int(), change: z.number().int(), destroy: z.number().int() })
      .nullable()
      .openapi({ description: "Terraform's plan; null for a refresh or a run stopped before" }),
    exitCode: z
      .number()
      .int()
      .nullable()
      .openapi({ description: 'Of `terraform apply` (a refresh: its plan); null before' }),
    error: z.string().nullable(),
  })
  .openapi('InfrastructureRun');

const variableValue = z.union([z.string().max(1000), z.number(), z.boolean()]);
const Variables = {
  machines: z.number().int().min(0).max(20).optional().openapi({ description: 'Machine count' }),
  size: z.enum(['small', 'medium', 'large']).optional(),
  variables: z
    .record(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/), variableValue)
    .optional()
    .openapi({ description: "More of the target module's variables" }),
};

const IdParams = z.object({
  deploymentId: z.string().openapi({
    param: { name: 'deploymentId', in: 'path' },
    format: 'uuid',
    description: 'Deployment id; a malformed one is 404',
  }),
});

const tags = ['infrastructure'];

const truthy = (value: string | undefined, fallback: boolean) =>
  value === undefined ? fallback : value === 'true' || value === '1';

/** POST /api/provision and /api/infrastructure/*. */
export function createInfrastructureRoutes(deps: {
  infrastructure: InfrastructureService;
  requireAuth: MiddlewareHandler;
}): { provision: OpenAPIHono; infrastructure: OpenAPIHono } {
  const { infrastructure, requireAuth } = deps;
  const provisionRoute = createRoute({
    method: 'post',
    path: '/',
    tags,
    summary: 'Provision machines for a project (admin)',
    description:
      'Starts Terraform (init → plan → apply) and answers 202 at once; progress on ' +
      '`/api/infrastructure/{id}/logs` and the project socket. Cloud targets answer 503 on a ' +
      'server that cannot install their providers, 400 when the project has no credentials for ' +
      'them (its `aws`, `gcp` or `azure` integration; they reach Terraform only as environment ' +
      'variables).',
    security: bearerSecurity,
    middleware: [requireAuth] as const,
    request: {
      body: jsonBody(
        z.object({
          projectId: z.uuid(),
          provider: z.enum(['local', 'aws', 'gcp', 'azure']),
          region: z.string().max(100).optional(),
          ...Variables,
        }),
      ),
    },
    responses: {
      202: jsonResponse(z.object({ deployment: DeploymentSchema }), 'Provisioning started'),
      ...errorResponses(400, 401, 403, 404, 409, 503),
    },
  });
  const listRoute = createRoute({
    method: 'get',
    path: '/',
    tags,
    summary: "A project's deployments (member)",
    security: bearerSecurity,
    middleware: [requireAuth] as const,
    request: { query: z.object({ projectId: z.string() }) },
    responses: {
      200: jsonResponse(z.object({ deployments: z.array(DeploymentSchema) }), 'Deployments'),
      ...errorResponses(400, 401, 404),
    },
  });
  const targetsRoute = createRoute({
    method: 'get',
    path: '/targets',
    tags,
    summary: 'The targets a project can provision, with their credentials (admin)',
    description:
      "`credentials`: whether the project's integration for the cloud (`aws`, `gcp`, `azure`) " +
      'holds what its provider needs (the values are never returned); `available`: whether ' +
      "this server has the target's Terraform provider.",
    security: bearerSecurity,
    middleware: [requireAuth] as const,
    request: { query: z.object({ projectId: z.uuid() }) },
    responses: {
      200: jsonResponse(
        z.object({
          targets: z.array(
            z
              .object({
                target: z.enum(['local', 'aws', 'gcp', 'azure']),
                credentials: z.enum(['configured', 'missing', 'not_needed']),
                available: z.boolean(),
              })
              .openapi('InfrastructureTarget'),
          ),
        }),
        'Every target',
      ),
      ...errorResponses(400, 401, 403, 404),
    },
  });
  const getRoute = createRoute({
    method: 'get',
    path: '/{deploymentId}',
    tags,
    summary: 'A deployment (member)',
    security: bearerSecurity,
    middleware: [requireAuth] as const,
    request: { params: IdParams },
    responses: {
      200: jsonResponse(z.object({ deployment: DeploymentSchema }), 'The deployment'),
      ...errorResponses(401, 404),
    },
  });
  const runsRoute = createRoute({
    method: 'get',
    path: '/{deploymentId}/runs',
    tags,
    summary: "A deployment's run history, newest first (member)",
    security: bearerSecurity,
    middleware: [requireAuth] as const,
    request: {
      params: IdParams,
      query: z.object({
        limit: z.coerce.number().int().min(1).max(200).optional().openapi({
          description: 'At most this many runs (default 50)',
        }),
      }),
    },
    responses: {
      200: jsonResponse(z.object({ runs: z.array(RunSchema) }), 'Runs, newest first'),
      ...errorResponses(400, 401, 404),
    },
  });
  const logsRoute = createRoute({
    method: 'get',
    path: '/{deploymentId}/logs',
    tags,
    summary: "Terraform's progress as server-sent events (member)",
    description:
      'Each `-json` event of every run is an `event` with `id` = its offset and data ' +
      '`{seq, runId, event}`; `Last-Event-ID` or `?after=` resumes. Ends with `end` when no ' +
      'run is in progress (at once with `?follow=false`).',
    security: bearerSecurity,
    middleware: [requireAuth] as const,
    request: {
      params: IdParams,
      query: z.object({
        follow: z.enum(['true', 'false', '1', '0']).optional(),
        after: z.coerce.number().int().min(0).optional(),
      }),
    },
    responses: {
      200: {
        description: 'text/event-stream of `event` events',
        content: { 'text/event-stream': { schema: z.string() } },
      },
      ...errorResponses(400, 401, 404),
    },
  });
  const applyRoute = createRoute({
    method: 'post',
    path: '/{deploymentId}/apply',
    tags,
    summary: 'Re-apply with new variables (admin)',
    security: bearerSecurity,
    middleware: [requireAuth] as const,
    request: { params: IdParams, body: jsonBody(z.object(Variables)) },
    responses: {
      202: jsonResponse(z.object({ deployment: DeploymentSchema }), 'Run started'),
      ...errorResponses(400, 401, 403, 404, 409),
    },
  });
  const refreshRoute = createRoute({
    method: 'post',
    path: '/{deploymentId}/refresh',
    tags,
    summary: 'Detect drift: plan -refresh-only (admin)',
    security: bearerSecurity,
    middleware: [requireAuth] as const,
    request: { params: IdParams },
    responses: {
      200: jsonResponse(
        z.object({
          drift: z.boolean(),
          changes: z.array(z.object({ address: z.string(), action: z.string() })),
        }),
        'What changed outside Terraform',
      ),
      ...errorResponses(401, 403, 404, 409, 503),
    },
  });
  const cancelRoute = createRoute({
    method: 'post',
    path: '/{deploymentId}/cancel',
    tags,
    summary: 'Cancel the run in progress (admin)',
    security: bearerSecurity,
    middleware: [requireAuth] as const,
    request: { params: IdParams },
    responses: {
      202: jsonResponse(z.object({ canceled: z.boolean() }), 'Cancel sent'),
      ...errorResponses(401, 403, 404, 409),
    },
  });
  const destroyRoute = createRoute({
    method: 'delete',
    path: '/{deploymentId}',
    tags,
    summary: 'Destroy the machines and the state (admin)',
    security: bearerSecurity,
    middleware: [requireAuth] as const,
    request: { params: IdParams },
    responses: {
      202: jsonResponse(z.object({ deployment: DeploymentSchema }), 'Destroy started'),
      ...errorResponses(401, 403, 404, 409),
    },
  });

  const provision = createRouter().openapi(provisionRoute, async (c) => {
    const body = c.req.valid('json');
    const deployment = await infrastructure.provision(c.var.auth.userId, body);
    return c.json({ deployment }, 202);
  });
  const routes = createRouter()
    .openapi(listRoute, async (c) => {
      const { projectId } = c.req.valid('query');
      const deployments = await infrastructure.list(c.var.auth.userId, projectId);
      return c.json({ deployments }, 200);
    })
    .openapi(targetsRoute, async (c) => {
      const { projectId } = c.req.valid('query');
      return c.json({ targets: await infrastructure.targets(c.var.auth.userId, projectId) }, 200);
    })
    .openapi(getRoute, async (c) => {
      const { deploymentId } = c.req.valid('param');
      return c.json({ deployment: await infrastructure.get(c.var.auth.userId, deploymentId) }, 200);
    })
    .openapi(runsRoute, async (c) => {
      const { deploymentId } = c.req.valid('param');
      const { limit } = c.req.valid('query');
      const runs = await infrastructure.runs(c.var.auth.userId, deploymentId, limit);
      return c.json({ runs }, 200);
    })
    .openapi(applyRoute, async (c) => {
      const { deploymentId } = c.req.valid('param');
      const deployment = await infrastructure.apply(
        c.var.auth.userId,
        deploymentId,
        c.req.valid('json'),
      );
      return c.json({ deployment }, 202);
    })
    .openapi(refreshRoute, async (c) => {
      const { deploymentId } = c.req.valid('param');
      return c.json(await infrastructure.refresh(c.var.auth.userId, deploymentId), 200);
    })
    .openapi(cancelRoute, async (c) => {
      const { deploymentId } = c.req.valid('param');
      await infrastructure.cancel(c.var.auth.userId, deploymentId);
      return c.json({ canceled: true }, 202);
    })
    .openapi(destroyRoute, async (c) => {
      const { deploymentId } = c.req.valid('param');
      const deployment = await infrastructure.destroy(c.var.auth.userId, deploymentId);
      return c.json({ deployment }, 202);
    })
    .openapi(logsRoute, async (c) => {
      const { deploymentId } = c.req.valid('param');
      const query = c.req.valid('query');
      const id = await infrastructure.requireLogs(c.var.auth.userId, deploymentId);
      const follow = truthy(query.follow, true);
      const lastEventId = Number(c.req.header('Last-Event-ID'));
      let after = query.after ?? (Number.isInteger(lastEventId) ? lastEventId : 0);
      c.header('Cache-Control', 'no-cache');
      c.header('X-Accel-Buffering', 'no');
      return streamSSE(c, async (stream) => {
        // Subscribe first, then read what is stored: nothing falls between the two.
        const live: (InfraEvent | { end: true })[] = [];
        let wake: (() => void) | undefined;
        const unsubscribe = follow
          ? await infrastructure.subscribe(id, (message) => {
              live.push(message);
              wake?.();
            })
          : undefined;
        stream.onAbort(() => wake?.());
        try {
          const send = async (e: InfraEvent) => {
            if (e.seq <= after) return;
            after = e.seq;
            await stream.writeSSE({ event: 'event', id: String(e.seq), data: JSON.stringify(e) });
          };
          for (const e of await infrastructure.events(id, after)) await send(e);
          let ended = !follow || !infrastructure.running(id);
          while (!ended && !stream.aborted) {
            if (live.length === 0) await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
            for (const message of live.splice(0)) {
              if ('end' in message) ended = true;
              else await send(message);
            }
          }
          // Events stored after the last live one (published before the subscription).
          for (const e of await infrastructure.events(id, after)) await send(e);
          if (!stream.aborted) await stream.writeSSE({ event: 'end', data: '' });
        } finally {
          await unsubscribe?.();
        }
      }) as never;
    });
  return { provision, infrastructure: routes };
}
