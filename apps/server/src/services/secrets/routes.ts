import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import {
  bearerSecurity,
  createRouter,
  errorResponses,
  jsonBody,
  jsonResponse,
} from '../../common/router.ts';
import { refuseUnsafeInput, text } from '../../common/text.ts';
import type { ProjectAccess } from '../projects/index.ts';
import {
  envNamePattern,
  maxEnvNameLength,
  maxEnvValueBytes,
  maxEnvVars,
  serviceNamePattern,
  type SecretsService,
} from './service.ts';

const maxConfigurationBytes = 16 * 1024;
/** Keys that name credentials: those belong in apiKey / webhookSecret, which are sealed. */
const credentialKey = /secret|passw|token|api[_-]?key|private[_-]?key|credential/i;

const SecretString = text()
  .min(1)
  .max(4096)
  .regex(/^[^\p{Cc}]+$/u, 'must not contain control characters');

const Configuration = z
  .record(z.string().max(100), z.unknown())
  .superRefine(refuseUnsafeInput())
  .superRefine((value, ctx) => {
    if (JSON.stringify(value).length > maxConfigurationBytes) {
      ctx.addIssue({
        code: 'custom',
        message: `must be at most ${maxConfigurationBytes} bytes as JSON`,
      });
    }
    for (const path of credentialPaths(value)) {
      ctx.addIssue({
        code: 'custom',
        path: path.split('.'),
        message: 'credentials belong in apiKey or webhookSecret (configuration is shown to admins)',
      });
    }
  })
  .openapi({
    description:
      'Non-secret settings, shown to admins (e.g. `{"mode": "test"}`). Keys naming credentials are refused.',
  });

function credentialPaths(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => {
    const path = prefix ? `${prefix}.${k}` : k;
    return [...(credentialKey.test(k) ? [path] : []), ...credentialPaths(v, path)];
  });
}

const TestSchema = z
  .object({
    result: z.enum(['passed', 'failed', 'untested']),
    message: z.string(),
    checks: z.array(z.object({ name: z.string(), ok: z.boolean().nullable(), detail: z.string() })),
    testedAt: z.string(),
  })
  .openapi('IntegrationTest');

const IntegrationSchema = z
  .object({
    id: z.uuid(),
    service: z.string().openapi({ example: 'stripe' }),
    serviceType: z.string().openapi({ example: 'payment' }),
    configuration: z.record(z.string(), z.unknown()),
    last4: z.string().nullable().openapi({
      description:
        'The key’s last four characters (keys of 12+ characters); the key itself is never returned',
      example: '4242',
    }),
    webhookUrl: z.string().optional(),
    hasWebhookSecret: z.boolean(),
    active: z.boolean(),
    configured: z.boolean(),
    status: z.enum(['untested', 'ok', 'failing', 'inactive']),
    lastTest: TestSchema.optional(),
    usage: z.object({
      requestCount: z.number().int(),
      errorCount: z.number().int(),
      lastRequestAt: z.string().optional(),
      lastErrorAt: z.string().optional(),
    }),
    envNames: z.array(z.string()).openapi({
      description: 'Variables the project’s container receives for this integration',
      example: ['STRIPE_API_KEY'],
    }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Integration');

// Any string: a malformed id is answered 404 like a project the caller cannot see.
const ProjectId = text().openapi({
  param: { name: 'id', in: 'path' },
  format: 'uuid',
  description: 'Project id; a malformed one is 404',
});
const ServiceName = z
  .string()
  .regex(serviceNamePattern, 'lowercase letters, digits, - and _, starting with a letter')
  .openapi({ param: { name: 'service', in: 'path' }, example: 'stripe' });
const EnvName = z
  .string()
  .max(maxEnvNameLength)
  .regex(envNamePattern, 'letters, digits and _, not starting with a digit');

const ProjectParams = z.object({ id: ProjectId });
const IntegrationParams = z.object({ id: ProjectId, service: ServiceName });
const EnvVarParams = z.object({
  id: ProjectId,
  name: EnvName.openapi({ param: { name: 'name', in: 'path' }, example: 'DATABASE_URL' }),
});

const NamesSchema = z.array(z.string()).openapi({ example: ['API_BASE_URL', 'DATABASE_URL'] });

const integrationTags = ['integrations'];
const envTags = ['environment'];

const RestartRequired = z.boolean().openapi({
  description:
    'The project’s container is running with the previous environment: restart it to apply',
  example: true,
});

/** A change reaches a running container only at its next (re)start. */
function restartRequired(project: { status: string }): boolean {
  return project.status === 'running';
}

function routes(access: ProjectAccess) {
  const list = createRoute({
    method: 'get',
    path: '/{id}/integrations',
    tags: integrationTags,
    summary: 'A project’s integrations (admin); keys are never returned',
    security: bearerSecurity,
    middleware: [access('admin')] as const,
    request: { params: ProjectParams },
    responses: {
      200: jsonResponse(z.object({ integrations: z.array(IntegrationSchema) }), 'By service name'),
      ...errorResponses(401, 403, 404),
    },
  });

  const get = createRoute({
    method: 'get',
    path: '/{id}/integrations/{service}',
    tags: integrationTags,
    summary: 'One integration (admin)',
    security: bearerSecurity,
    middleware: [access('admin')] as const,
    request: { params: IntegrationParams },
    responses: {
      200: jsonResponse(z.object({ integration: IntegrationSchema }), 'The integration'),
      ...errorResponses(400, 401, 403, 404),
    },
  });

  const put = createRoute({
    method: 'put',
    path: '/{id}/integrations/{service}',
    tags: integrationTags,
    summary: 'Add or replace an integration (admin)',
    description:
      'The key and webhook secret are sealed with AES-256-GCM and never returned; `last4` shows ' +
      'the key’s end. Absent fields keep their value (apiKey is required for a new integration); ' +
      '`null` clears. The project’s container receives `<SERVICE>_API_KEY` (and ' +
      '`<SERVICE>_WEBHOOK_SECRET`) at its next start, unless a project variable of that name exists.',
    security: bearerSecurity,
    middleware: [access('admin')] as const,
    request: {
      params: IntegrationParams,
      body: jsonBody(
        z.object({
          apiKey: SecretString.optional().openapi({ example: 'sk_test_51Hx…' }),
          serviceType: z
            .string()
            .regex(/^[a-z][a-z0-9_-]{0,49}$/, 'lowercase letters, digits, - and _')
            .optional()
            .openapi({
              description: 'Defaults to the known type of the service, else `other`',
              example: 'payment',
            }),
          configuration: Configuration.optional(),
          webhookSecret: SecretString.nullable().optional(),
          webhookUrl: z
            .url({ protocol: /^https?$/ })
            .max(2048)
            .nullable()
            .optional(),
          active: z.boolean().optional(),
        }),
      ),
    },
    responses: {
      200: jsonResponse(z.object({ integration: IntegrationSchema }), 'The integration'),
      ...errorResponses(400, 401, 403, 404),
    },
  });

  const remove = createRoute({
    method: 'delete',
    path: '/{id}/integrations/{service}',
    tags: integrationTags,
    summary: 'Remove an integration and its sealed key (admin)',
    security: bearerSecurity,
    middleware: [access('admin')] as const,
    request: { params: IntegrationParams },
    responses: { 204: { description: 'Removed' }, ...errorResponses(400, 401, 403, 404) },
  });

  const test = createRoute({
    method: 'post',
    path: '/{id}/integrations/{service}/test',
    tags: integrationTags,
    summary: 'Test an integration (admin)',
    description:
      'Checks offline that the stored key opens and, for known services, looks like their keys. ' +
      'No request leaves the server, so the result is `untested` with the reason, or `failed` ' +
      'when the stored key cannot be used.',
    security: bearerSecurity,
    middleware: [access('admin')] as const,
    request: { params: IntegrationParams },
    responses: {
      200: jsonResponse(
        z.object({ integration: IntegrationSchema, test: TestSchema }),
        'The result, also kept as the integration’s lastTest',
      ),
      ...errorResponses(400, 401, 403, 404),
    },
  });

  const listEnv = createRoute({
    method: 'get',
    path: '/{id}/env',
    tags: envTags,
    summary: 'Names of the project’s environment variables (editor); values are never returned',
    security: bearerSecurity,
    middleware: [access('editor')] as const,
    request: { params: ProjectParams },
    responses: {
      200: jsonResponse(
        z.object({
          names: NamesSchema,
          fromIntegrations: z.array(z.string()).openapi({
            description:
              'Variables the project’s integrations add (a project variable of the same name wins)',
            example: ['STRIPE_API_KEY'],
          }),
        }),
        'Sorted names',
      ),
      ...errorResponses(401, 403, 404),
    },
  });

  const putEnv = createRoute({
    method: 'put',
    path: '/{id}/env',
    tags: envTags,
    summary: 'Set (or with null, remove) environment variables (admin)',
    description:
      'Values are sealed with AES-256-GCM, injected into the project’s container at its next ' +
      '(re)start, and never returned or logged. Variables not named are kept. ' +
      'While the container runs, `restartRequired` is true (it keeps the old values until ' +
      'restarted) and members hear `environment_changed` on the project socket. ' +
      `At most ${maxEnvVars} per project, ${maxEnvValueBytes} bytes per value.`,
    security: bearerSecurity,
    middleware: [access('admin')] as const,
    request: {
      params: ProjectParams,
      body: jsonBody(
        z.object({
          vars: z
            .record(
              EnvName,
              text()
                .max(maxEnvValueBytes)
                .regex(/^[^\0]*$/, 'must not contain NUL characters')
                .nullable(),
            )
            .openapi({ example: { API_BASE_URL: 'https://api.example.com', OLD_FLAG: null } }),
        }),
      ),
    },
    responses: {
      200: jsonResponse(
        z.object({ names: NamesSchema, restartRequired: RestartRequired }),
        'Every variable name after the change',
      ),
      ...errorResponses(400, 401, 403, 404),
    },
  });

  const deleteEnv = createRoute({
    method: 'delete',
    path: '/{id}/env/{name}',
    tags: envTags,
    summary: 'Remove one environment variable (admin)',
    description:
      'Members hear `environment_changed {names, restartRequired}` on the project socket; ' +
      '`restartRequired` is true while the container runs with the old environment.',
    security: bearerSecurity,
    middleware: [access('admin')] as const,
    request: { params: EnvVarParams },
    responses: { 204: { description: 'Removed' }, ...errorResponses(400, 401, 403, 404) },
  });

  return { list, get, put, remove, test, listEnv, putEnv, deleteEnv };
}

/** /api/projects/:id/integrations… and /api/projects/:id/env… (mounted at /api/projects). */
export function createSecretsRoutes(deps: {
  secrets: SecretsService;
  requireAuth: MiddlewareHandler;
  projectAccess: ProjectAccess;
}): OpenAPIHono {
  const { secrets } = deps;
  const r = routes(deps.projectAccess);
  const app = createRouter();
  // Only these paths: other routers share /api/projects.
  for (const path of ['/:id/integrations', '/:id/integrations/*', '/:id/env', '/:id/env/*']) {
    app.use(path, deps.requireAuth);
  }
  return app
    .openapi(r.list, async (c) =>
      c.json({ integrations: await secrets.listIntegrations(c.var.project.id) }, 200),
    )
    .openapi(r.get, async (c) => {
      const { service } = c.req.valid('param');
      return c.json({ integration: await secrets.getIntegration(c.var.project.id, service) }, 200);
    })
    .openapi(r.put, async (c) => {
      const { service } = c.req.valid('param');
      const { integration } = await secrets.putIntegration(
        c.var.project.id,
        c.var.auth.userId,
        service,
        c.req.valid('json'),
      );
      return c.json({ integration }, 200);
    })
    .openapi(r.remove, async (c) => {
      const { service } = c.req.valid('param');
      await secrets.deleteIntegration(c.var.project.id, c.var.auth.userId, service);
      return c.body(null, 204);
    })
    .openapi(r.test, async (c) => {
      const { service } = c.req.valid('param');
      return c.json(
        await secrets.testIntegration(c.var.project.id, c.var.auth.userId, service),
        200,
      );
    })
    .openapi(r.listEnv, async (c) => {
      const projectId = c.var.project.id;
      const names = await secrets.environmentVariableNames(projectId);
      const all = await secrets.environmentNames(projectId);
      return c.json({ names, fromIntegrations: all.filter((n) => !names.includes(n)) }, 200);
    })
    .openapi(r.putEnv, async (c) => {
      const { vars } = c.req.valid('json');
      const project = c.var.project;
      const pending = restartRequired(project) && Object.keys(vars).length > 0;
      const names = await secrets.setEnvironment(project.id, c.var.auth.userId, vars, {
        restartRequired: pending,
      });
      return c.json({ names, restartRequired: pending }, 200);
    })
    .openapi(r.deleteEnv, async (c) => {
      const { name } = c.req.valid('param');
      await secrets.deleteEnvironmentVariable(c.var.project.id, c.var.auth.userId, name, {
        restartRequired: restartRequired(c.var.project),
      });
      return c.body(null, 204);
    });
}
