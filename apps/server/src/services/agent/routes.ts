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
import { acceptWebSocket, ideOrigin, requireWebSocketUpgrade } from '../../common/websocket.ts';
import type { AgentService, CommandEvent } from './service.ts';

const tags = ['infrastructure'];

const IdParams = z.object({
  deploymentId: z.string().openapi({
    param: { name: 'deploymentId', in: 'path' },
    format: 'uuid',
    description: 'Deployment id; a malformed one is 404',
  }),
});

const CommandBody = z.object({
  command: z.string().min(1).max(16_384).openapi({
    description: 'Run through `/bin/sh -c` on each machine, unless `args` is given',
  }),
  args: z.array(z.string().max(16_384)).max(256).optional().openapi({
    description: '`command` is then the executable and these its arguments (no shell)',
  }),
  timeoutMs: z
    .number()
    .int()
    .min(100)
    .max(3_600_000)
    .optional()
    .openapi({
      description:
        'Per machine (default 30 s): the process group is killed then; the request answers by ' +
        'timeout + a few seconds whatever the machines do',
    }),
  machines: z.array(z.string().max(200)).min(1).max(1000).optional().openapi({
    description: 'Machine names (default: every machine); an unknown one is 404',
  }),
  maxConcurrency: z.number().int().min(1).max(1000).optional().openapi({
    description: 'Machines running it at once (default: all)',
  }),
  maxErrors: z.number().int().min(0).max(1000).optional().openapi({
    description:
      'Machines allowed to fail before it is sent to no more (those are `skipped`; default: no limit)',
  }),
  maxOutputBytes: z.number().int().min(0).max(1_048_576).optional().openapi({
    description: 'Cap per stream and machine (default 64 KiB); past it `truncated` is true',
  }),
});

const CommandResultSchema = z
  .object({
    machine: z.string(),
    status: z.enum(['succeeded', 'failed', 'timed_out', 'agent_lost', 'canceled', 'skipped']),
    exitCode: z.number().int().nullable(),
    stdout: z.string(),
    stderr: z.string(),
    truncated: z.boolean(),
    durationMs: z.number().int(),
    error: z.string().optional().openapi({ description: 'Why it did not run or finish' }),
  })
  .openapi('CommandResult');

const CommandRecord = z.object({
  id: z.uuid(),
  command: z.string(),
  args: z.array(z.string()).nullable(),
  machines: z.array(z.string()),
  results: z.array(CommandResultSchema),
  userId: z.string().nullable(),
  createdAt: z.string(),
  finishedAt: z.string().nullable(),
});

const DeployResultSchema = z
  .object({
    machine: z.string(),
    status: z.enum(['succeeded', 'failed', 'rolled_back', 'agent_lost']),
    url: z.string().nullable().openapi({ description: 'Where the app answers on that machine' }),
    error: z.string().optional(),
    durationMs: z.number().int(),
  })
  .openapi('DeployResult');

const DeploySchema = z
  .object({
    id: z.uuid(),
    deploymentId: z.uuid(),
    release: z.string(),
    sha256: z.string().nullable().openapi({ description: "sha256 of the release's tar.gz" }),
    status: z.enum(['running', 'succeeded', 'failed', 'partial']),
    results: z.array(DeployResultSchema),
    createdAt: z.string(),
    finishedAt: z.string().nullable(),
  })
  .openapi('Deploy');

/** Command and deploy routes under /api/infrastructure, and the agent bundle under /api/agent. */
export function createAgentRoutes(deps: {
  agent: AgentService;
  requireAuth: MiddlewareHandler;
  /** The IDE's base URL: a browser's Origin must be its origin (machine terminal). */
  publicUrl: string;
}): { infrastructure: OpenAPIHono; agent: OpenAPIHono } {
  const { agent, requireAuth } = deps;
  const socketRoute = createRoute({
    method: 'get',
    path: '/',
    tags,
    summary: "WebSocket: a machine agent's channel (internal protocol)",
    description:
      'For the agent on each machine: `Authorization: Bearer <enrollment token or machine ' +
      'credential>`. An enrollment token is one-use and short-lived, traded on this connect ' +
      'for a credential (sent once, stored only hashed); a wrong, used or expired one is 401 ' +
      'before the upgrade. A newer connection of a machine replaces the older. A plain GET is 400.',
    responses: {
      101: { description: 'Switching protocols' },
      ...errorResponses(400, 401, 503),
    },
  });
  const terminalRoute = createRoute({
    method: 'get',
    path: '/{deploymentId}/machines/{machine}/terminal',
    tags,
    summary: 'WebSocket: a shell on one machine through its agent (admin)',
    description:
      'Upgrade to a WebSocket (`?token=<access token>`, optional `cols`, `rows`). Send ' +
      'keystrokes as text or binary frames; the shell’s output arrives as binary frames. A ' +
      'browser’s Origin must be the IDE’s. Close codes: 1000 shell exited, 1011 agent lost. ' +
      '409 when the machine’s agent is offline. A plain GET is 400.',
    security: bearerSecurity,
    middleware: [ideOrigin(deps.publicUrl), requireAuth] as const,
    request: {
      params: IdParams.extend({
        machine: z.string().openapi({ param: { name: 'machine', in: 'path' } }),
      }),
      query: z.object({
        token: z.string().optional(),
        cols: z.string().optional(),
        rows: z.string().optional(),
      }),
    },
    responses: {
      101: { description: 'Switching protocols' },
      ...errorResponses(400, 401, 403, 404, 409),
    },
  });
  const commandRoute = createRoute({
    method: 'post',
    path: '/{deploymentId}/command',
    tags,
    summary: 'Run a command on machines through their agents (admin)',
    description:
      'Fans out to every machine (or `machines`) with `maxConcurrency` and `maxErrors`, and ' +
      'answers per machine: `succeeded`, `failed` (non-zero exit, or refused by the agent), ' +
      '`timed_out`, `agent_lost` (agent offline or gone mid-command), `canceled`, `skipped`. ' +
      'Recorded in the activity log (`infrastructure_command`).',
    security: bearerSecurity,
    middleware: [requireAuth] as const,
    request: { params: IdParams, body: jsonBody(CommandBody) },
    responses: {
      200: jsonResponse(
        z.object({ id: z.uuid(), results: z.array(CommandResultSchema) }),
        'One result per machine, in the order of `machines`',
      ),
      ...errorResponses(400, 401, 403, 404),
    },
  });
  const streamRoute = createRoute({
    method: 'post',
    path: '/{deploymentId}/command/stream',
    tags,
    summary: 'Run a command on machines, streaming its output (admin)',
    description:
      'As `/command`, as server-sent events: `command` `{id, machines}`, then per machine ' +
      '`started` `{machine}`, `output` `{machine, stream, data}` while it runs and `result` ' +
      '(a CommandResult), and `end` `{id, results}`. Closing the stream cancels what still runs.',
    security: bearerSecurity,
    middleware: [requireAuth] as const,
    request: { params: IdParams, body: jsonBody(CommandBody) },
    responses: {
      200: {
        description: 'text/event-stream of command, started, output, result and end events',
        content: { 'text/event-stream': { schema: z.string() } },
      },
      ...errorResponses(400, 401, 403, 404),
    },
  });
  const cancelRoute = createRoute({
    method: 'post',
    path: '/{deploymentId}/commands/{commandId}/cancel',
    tags,
    summary: 'Cancel a running command (admin)',
    description: 'Kills its process groups; those machines answer `canceled`, queued ones too.',
    security: bearerSecurity,
    middleware: [requireAuth] as const,
    request: {
      params: IdParams.extend({
        commandId: z.string().openapi({ param: { name: 'commandId', in: 'path' } }),
      }),
    },
    responses: {
      202: jsonResponse(z.object({ canceled: z.boolean() }), 'Cancel sent'),
      ...errorResponses(401, 403, 404, 409),
    },
  });
  const historyRoute = createRoute({
    method: 'get',
    path: '/{deploymentId}/commands',
    tags,
    summary: 'Past commands with their results, newest first (member)',
    security: bearerSecurity,
    middleware: [requireAuth] as const,
    request: {
      params: IdParams,
      query: z.object({ limit: z.coerce.number().int().min(1).max(200).optional() }),
    },
    responses: {
      200: jsonResponse(z.object({ commands: z.array(CommandRecord) }), 'Commands'),
      ...errorResponses(400, 401, 404),
    },
  });
  const deployRoute = createRoute({
    method: 'post',
    path: '/{deploymentId}/deploy',
    tags,
    summary: "Deploy the project's files onto every machine (admin)",
    description:
      "Ships the project's current files as a checksummed tar.gz through each agent, runs the " +
      "template's install command, then its run command under the agent's supervisor (restarted " +
      'when it exits) with `PORT` = the template port. A release that does not answer HTTP there ' +
      'within 30 s is stopped and the previous one started again (`rolled_back`). Answers 202 ' +
      'at once; `deploy_progress` events on the project socket; the result in ' +
      '`/deploys/{deployId}`. Counts in the project’s `deployment_count` and `deployed_at`.',
    security: bearerSecurity,
    middleware: [requireAuth] as const,
    request: { params: IdParams },
    responses: {
      202: jsonResponse(z.object({ deploy: DeploySchema }), 'Deploy started'),
      ...errorResponses(401, 403, 404, 409),
    },
  });
  const deploysRoute = createRoute({
    method: 'get',
    path: '/{deploymentId}/deploys',
    tags,
    summary: 'Deploy history, newest first (member)',
    security: bearerSecurity,
    middleware: [requireAuth] as const,
    request: {
      params: IdParams,
      query: z.object({ limit: z.coerce.number().int().min(1).max(200).optional() }),
    },
    responses: {
      200: jsonResponse(z.object({ deploys: z.array(DeploySchema) }), 'Deploys'),
      ...errorResponses(400, 401, 404),
    },
  });
  const bundleRoute = createRoute({
    method: 'get',
    path: '/agent.js',
    tags,
    summary: 'The agent bundle machines install (one file for Node.js 18+)',
    description: 'Its sha256 is in `X-Vaporform-Sha256`; bootstraps check it.',
    responses: {
      200: {
        description: 'JavaScript',
        content: { 'text/javascript': { schema: z.string() } },
      },
      ...errorResponses(503),
    },
  });

  const size = (value: string | undefined, fallback: number) => {
    const n = Number(value);
    return Number.isInteger(n) && n > 0 && n < 1000 ? n : fallback;
  };
  const infrastructure = createRouter()
    .openapi(terminalRoute, async (c) => {
      requireWebSocketUpgrade(c);
      const { deploymentId, machine } = c.req.valid('param');
      const query = c.req.valid('query');
      const { userId, sessionId } = c.var.auth;
      const terminal = await agent.prepareTerminal({ userId, sessionId }, deploymentId, machine, {
        cols: size(query.cols, 80),
        rows: size(query.rows, 24),
      });
      return acceptWebSocket(c, terminal.open) as never;
    })
    .openapi(commandRoute, async (c) => {
      const { deploymentId } = c.req.valid('param');
      const result = await agent.command(c.var.auth.userId, deploymentId, c.req.valid('json'));
      return c.json(result, 200);
    })
    .openapi(streamRoute, async (c) => {
      const { deploymentId } = c.req.valid('param');
      const body = c.req.valid('json');
      const userId = c.var.auth.userId;
      // Access is checked before the stream opens: refusals keep their status.
      await agent.requireAdmin(userId, deploymentId);
      c.header('Cache-Control', 'no-cache');
      c.header('X-Accel-Buffering', 'no');
      return streamSSE(c, async (stream) => {
        const abort = new AbortController();
        stream.onAbort(() => abort.abort());
        let chain = Promise.resolve();
        const write = (event: CommandEvent) => {
          chain = chain.then(() =>
            stream.aborted
              ? undefined
              : stream.writeSSE({ event: event.type, data: JSON.stringify(event.data) }),
          );
        };
        const result = await agent.command(userId, deploymentId, body, write, abort.signal);
        await chain;
        if (!stream.aborted) {
          await stream.writeSSE({ event: 'end', data: JSON.stringify(result) });
        }
      }) as never;
    })
    .openapi(cancelRoute, async (c) => {
      const { deploymentId, commandId } = c.req.valid('param');
      await agent.cancelCommand(c.var.auth.userId, deploymentId, commandId);
      return c.json({ canceled: true }, 202);
    })
    .openapi(deployRoute, async (c) => {
      const { deploymentId } = c.req.valid('param');
      return c.json({ deploy: await agent.deploy(c.var.auth.userId, deploymentId) }, 202);
    })
    .openapi(deploysRoute, async (c) => {
      const { deploymentId } = c.req.valid('param');
      const deploys = await agent.deploys(
        c.var.auth.userId,
        deploymentId,
        c.req.valid('query').limit,
      );
      return c.json({ deploys }, 200);
    })
    .openapi(historyRoute, async (c) => {
      const { deploymentId } = c.req.valid('param');
      const rows = await agent.commands(
        c.var.auth.userId,
        deploymentId,
        c.req.valid('query').limit,
      );
      return c.json(
        {
          commands: rows.map((r) => ({
            id: r.id,
            command: r.command,
            args: (r.args as string[] | null) ?? null,
            machines: r.machines as string[],
            results: r.results as z.infer<typeof CommandResultSchema>[],
            userId: r.user_id,
            createdAt: r.created_at.toISOString(),
            finishedAt: r.finished_at?.toISOString() ?? null,
          })),
        },
        200,
      );
    });

  const bundle = createRouter()
    .openapi(socketRoute, async (c) => {
      requireWebSocketUpgrade(c);
      // The same gate as the local gateway's: AgentService.authenticate.
      const identity = await agent.authenticate(c.req.header('authorization'));
      return acceptWebSocket(c, (ws) => agent.accept(ws, identity)) as never;
    })
    .openapi(bundleRoute, async (c) => {
      const { code, sha256 } = await agent.bundle();
      c.header('X-Vaporform-Sha256', sha256);
      c.header('Content-Type', 'text/javascript');
      return c.body(new Uint8Array(code), 200) as never;
    });
  return { infrastructure, agent: bundle };
}
