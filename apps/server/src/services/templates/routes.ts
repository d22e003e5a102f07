import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { createRouter, errorResponses, jsonResponse } from '../../common/router.ts';
import { text } from '../../common/text.ts';
import { TechStackSchema } from './schemas.ts';
import type { TemplatesService } from './service.ts';

const TemplateSummarySchema = z
  .object({
    id: z.string().openapi({ example: 'node-http' }),
    name: z.string(),
    description: z.string(),
    category: z.string(),
    tags: z.array(z.string()),
    techStack: TechStackSchema,
    featured: z.boolean(),
    official: z.boolean(),
    usageCount: z.number().int(),
  })
  .openapi('TemplateSummary');

const TemplateSchema = TemplateSummarySchema.extend({
  files: z.array(z.object({ path: z.string(), content: z.string() })),
  run: z.object({
    install: z
      .string()
      .nullable()
      .openapi({ description: 'Run once before dev; null when nothing to install' }),
    dev: z.string().nullable().openapi({ description: 'Starts the dev server' }),
    port: z.number().int().nullable().openapi({ description: 'Port the dev server listens on' }),
    image: z.string().nullable().openapi({ description: 'Runtime family: node, python, go…' }),
  }),
}).openapi('Template');

const list = createRoute({
  method: 'get',
  path: '/',
  tags: ['templates'],
  summary: 'List published templates (featured first)',
  responses: {
    200: jsonResponse(z.object({ templates: z.array(TemplateSummarySchema) }), 'The gallery'),
  },
});

const get = createRoute({
  method: 'get',
  path: '/{id}',
  tags: ['templates'],
  summary: 'One template with its files and run configuration',
  request: {
    params: z.object({
      id: text()
        .min(1)
        .max(100)
        .openapi({ param: { name: 'id', in: 'path' }, example: 'node-http' }),
    }),
  },
  responses: {
    200: jsonResponse(z.object({ template: TemplateSchema }), 'The template'),
    ...errorResponses(400, 404),
  },
});

/** /api/templates routes: public, no auth. */
export function createTemplatesRoutes(templates: TemplatesService): OpenAPIHono {
  return createRouter()
    .openapi(list, async (c) => c.json({ templates: await templates.list() }, 200))
    .openapi(get, async (c) =>
      c.json({ template: await templates.get(c.req.valid('param').id) }, 200),
    );
}
