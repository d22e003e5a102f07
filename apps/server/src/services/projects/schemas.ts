import { z } from '@hono/zod-openapi';
import { text } from '../../common/text.ts';
import { TechStackSchema } from '../templates/index.ts';

// The project's shapes in the contract: the routes use them, and other services' routes
// (checkpoints) embed a project, through index.ts.

export const Architecture = z.enum(['pwa', 'microservices', 'monolithic']);
export const RoleSchema = z.enum(['owner', 'admin', 'editor', 'viewer']).openapi('ProjectRole');
/** A project name as people may give it. */
export const ProjectName = text()
  .trim()
  .min(1)
  .max(255)
  .regex(/^[^\p{Cc}]+$/u, 'must not contain control characters');

/** seeds/000 ProjectConfig: every part optional, unknown keys dropped. */
export const ProjectConfigSchema = TechStackSchema.extend({
  functionality: text()
    .max(20_000)
    .optional()
    .openapi({ description: 'What the app should do, in the person’s words' }),
}).openapi('ProjectConfig');

/** A project as one member sees it (API.md `project`). */
export const ProjectSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    description: z.string(),
    type: Architecture,
    status: z.enum(['creating', 'running', 'stopped', 'error', 'archived']),
    statusReason: z.string().optional().openapi({
      description:
        'Why the project is in `error`: the set-up failure or the crash, in words for people',
    }),
    /** Effective: the template's stack merged with the choices made. */
    config: ProjectConfigSchema,
    /** The caller's role. */
    role: RoleSchema,
    templateId: z.string().optional(),
    ownerId: z.uuid(),
    health: z.enum(['healthy', 'unhealthy', 'starting', 'unknown']),
    containerId: z.string().optional(),
    serviceUrl: z.string().optional(),
    previewUrl: z.string().optional(),
    totalFiles: z.number().int(),
    totalSizeBytes: z.number().int(),
    lastActivityAt: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Project');
