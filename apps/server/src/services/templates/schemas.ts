import { z } from '@hono/zod-openapi';
import { text } from '../../common/text.ts';

const Name = text().trim().min(1).max(100);
const Names = z.array(Name).max(50);

/**
 * The technology choices of a template or project (seeds/000 `ProjectConfig`), every part
 * optional. Used for template responses and, extended, for project config input.
 */
export const TechStackSchema = z
  .object({
    architecture: z.enum(['pwa', 'microservices', 'monolithic']).optional(),
    backend: z
      .object({
        language: Name.optional(),
        framework: Name.optional(),
        isBaaS: z.boolean().optional(),
      })
      .optional(),
    frontend: z
      .object({
        framework: Name.optional(),
        cssFrameworks: Names.optional(),
        buildTool: Name.optional(),
      })
      .optional(),
    database: Names.optional(),
    integrations: z.object({ apis: Names.optional(), packages: Names.optional() }).optional(),
  })
  .openapi('TechStack', {
    example: { architecture: 'monolithic', backend: { language: 'javascript' } },
  });
