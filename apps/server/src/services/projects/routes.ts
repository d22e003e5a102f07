import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import {
  bearerSecurity,
  createRouter,
  errorResponses,
  jsonBody,
  jsonResponse,
} from '../../common/router.ts';
import { text } from '../../common/text.ts';
import { defaultActivityLimit, maxActivityLimit, type ActivityService } from '../activity/index.ts';
import { createProjectAccess, type ProjectAccess } from './access.ts';
import {
  Architecture,
  ProjectConfigSchema,
  ProjectName,
  ProjectSchema,
  RoleSchema,
} from './schemas.ts';
import type { ProjectsService } from './service.ts';

const GrantableRole = z
  .enum(['admin', 'editor', 'viewer'])
  .openapi({ description: 'Only the owner may grant admin' });

const Description = text().max(10_000);

const MemberSchema = z
  .object({
    userId: z.uuid(),
    email: z.string(),
    name: z.string(),
    username: z.string(),
    role: RoleSchema,
    addedAt: z.string(),
  })
  .openapi('ProjectMember');

const InvitationSchema = z
  .object({
    id: z.uuid(),
    email: z.string().openapi({ description: 'Trimmed and lower-cased, as accounts store it' }),
    role: GrantableRole,
    invitedBy: z.uuid().optional().openapi({ description: 'Absent when that account is gone' }),
    createdAt: z.string(),
  })
  .openapi('ProjectInvitation', {
    description: 'Pending until someone registers with the email (then a membership) or revoked',
  });

const ActivitySchema = z
  .object({
    id: z.uuid(),
    type: z.string().openapi({ example: 'project_created' }),
    description: z.string(),
    userId: z.uuid().optional(),
    sourceType: z.enum(['user', 'claude', 'system', 'webhook']),
    createdAt: z.string(),
    metadata: z.record(z.string(), z.unknown()),
  })
  .openapi('ProjectActivity');

// Any string: a malformed id is answered 404 like a project the caller cannot see.
const ProjectId = text().openapi({
  param: { name: 'id', in: 'path' },
  format: 'uuid',
  description: 'Project id; a malformed one is 404',
  example: '2f6d9c1e-8f7b-4e0a-9a57-4d2f8e3c1b20',
});
const ProjectParams = z.object({ id: ProjectId });
const MemberParams = z.object({
  id: ProjectId,
  userId: text().openapi({
    param: { name: 'userId', in: 'path' },
    format: 'uuid',
    description: 'The member’s user id; a malformed one is 404',
  }),
});

const InvitationParams = z.object({
  id: ProjectId,
  invitationId: z.string().openapi({
    param: { name: 'invitationId', in: 'path' },
    format: 'uuid',
    description: 'A pending invitation’s id; a malformed, accepted or revoked one is 404',
  }),
});

const tags = ['projects'];
const memberTags = ['project members'];

const create = createRoute({
  method: 'post',
  path: '/',
  tags,
  summary: 'Create a project (you become its owner)',
  security: bearerSecurity,
  request: {
    body: jsonBody(
      z.object({
        name: ProjectName.openapi({ description: 'Unique among your projects, ignoring case' }),
        description: Description.optional(),
        type: Architecture.optional().openapi({
          description: 'Defaults to config.architecture, then the template’s, then monolithic',
        }),
        templateId: text().min(1).max(100).optional().openapi({ example: 'node-http' }),
        config: ProjectConfigSchema.optional(),
      }),
    ),
  },
  responses: {
    201: jsonResponse(z.object({ project: ProjectSchema }), 'The new project'),
    ...errorResponses(400, 401, 409),
  },
});

const list = createRoute({
  method: 'get',
  path: '/',
  tags,
  summary: 'Projects you are a member of, newest first',
  security: bearerSecurity,
  request: {
    query: z.object({
      q: text().max(200).optional().openapi({ description: 'Matches name or description' }),
    }),
  },
  responses: {
    200: jsonResponse(z.object({ projects: z.array(ProjectSchema) }), 'Your projects'),
    ...errorResponses(400, 401),
  },
});

/**
 * Routes under one project. Each runs `projectAccess(min)` before validating anything, so a
 * non-member gets 404 and a member below `min` 403 whatever the body. The service checks the
 * same roles again (it is also called from outside HTTP).
 */
function projectRoutes(access: ProjectAccess) {
  const get = createRoute({
    method: 'get',
    path: '/{id}',
    tags,
    summary: 'One project (viewer)',
    security: bearerSecurity,
    middleware: [access('viewer')] as const,
    request: { params: ProjectParams },
    responses: {
      200: jsonResponse(z.object({ project: ProjectSchema }), 'The project'),
      ...errorResponses(401, 404),
    },
  });

  const update = createRoute({
    method: 'patch',
    path: '/{id}',
    tags,
    summary: 'Rename or reconfigure a project (admin)',
    description: 'config is merged into the current one: objects merge, arrays and values replace.',
    security: bearerSecurity,
    middleware: [access('admin')] as const,
    request: {
      params: ProjectParams,
      body: jsonBody(
        z.object({
          name: ProjectName.optional(),
          description: Description.optional(),
          config: ProjectConfigSchema.optional(),
        }),
      ),
    },
    responses: {
      200: jsonResponse(z.object({ project: ProjectSchema }), 'The updated project'),
      ...errorResponses(400, 401, 403, 404, 409),
    },
  });

  const remove = createRoute({
    method: 'delete',
    path: '/{id}',
    tags,
    summary: 'Delete a project and its container (owner)',
    security: bearerSecurity,
    middleware: [access('owner')] as const,
    request: { params: ProjectParams },
    responses: { 204: { description: 'Deleted' }, ...errorResponses(401, 403, 404) },
  });

  const listMembers = createRoute({
    method: 'get',
    path: '/{id}/members',
    tags: memberTags,
    summary: 'Members of a project (viewer)',
    security: bearerSecurity,
    middleware: [access('viewer')] as const,
    request: { params: ProjectParams },
    responses: {
      200: jsonResponse(z.object({ members: z.array(MemberSchema) }), 'Owner first'),
      ...errorResponses(401, 404),
    },
  });

  const addMember = createRoute({
    method: 'post',
    path: '/{id}/members',
    tags: memberTags,
    summary:
      'Add a member by email, or invite an email with no account (admin; only the owner adds admins)',
    description:
      'An email with an account becomes a member (201). An email without one is invited (202): the invitation becomes a membership with that role when someone registers with the email, unless it is revoked first. 409 when already a member or already invited.',
    security: bearerSecurity,
    middleware: [access('admin')] as const,
    request: {
      params: ProjectParams,
      body: jsonBody(z.object({ email: z.email().max(255), role: GrantableRole })),
    },
    responses: {
      201: jsonResponse(z.object({ member: MemberSchema }), 'The new member'),
      202: jsonResponse(
        z.object({ invitation: InvitationSchema }),
        'No account has this email: it is invited',
      ),
      ...errorResponses(400, 401, 403, 404, 409),
    },
  });

  const listInvitations = createRoute({
    method: 'get',
    path: '/{id}/invitations',
    tags: memberTags,
    summary: 'Pending invitations of a project (viewer)',
    security: bearerSecurity,
    middleware: [access('viewer')] as const,
    request: { params: ProjectParams },
    responses: {
      200: jsonResponse(
        z.object({ invitations: z.array(InvitationSchema) }),
        'Pending invitations, oldest first',
      ),
      ...errorResponses(401, 404),
    },
  });

  const revokeInvitation = createRoute({
    method: 'delete',
    path: '/{id}/invitations/{invitationId}',
    tags: memberTags,
    summary: 'Revoke a pending invitation (admin; admin invitations by the owner only)',
    security: bearerSecurity,
    middleware: [access('admin')] as const,
    request: { params: InvitationParams },
    responses: { 204: { description: 'Revoked' }, ...errorResponses(401, 403, 404) },
  });

  const changeMember = createRoute({
    method: 'patch',
    path: '/{id}/members/{userId}',
    tags: memberTags,
    summary: 'Change a member’s role (admin; admin granted or taken away by the owner only)',
    description: 'The owner’s role cannot be changed.',
    security: bearerSecurity,
    middleware: [access('admin')] as const,
    request: { params: MemberParams, body: jsonBody(z.object({ role: GrantableRole })) },
    responses: {
      200: jsonResponse(z.object({ member: MemberSchema }), 'The member'),
      ...errorResponses(400, 401, 403, 404, 409),
    },
  });

  const removeMember = createRoute({
    method: 'delete',
    path: '/{id}/members/{userId}',
    tags: memberTags,
    summary: 'Remove a member, or leave (admin for others; admins by the owner only)',
    description: 'Any member but the owner may remove themselves. The owner cannot be removed.',
    security: bearerSecurity,
    // Viewers may reach it to leave; the service decides the rest.
    middleware: [access('viewer')] as const,
    request: { params: MemberParams },
    responses: { 204: { description: 'Removed' }, ...errorResponses(401, 403, 404) },
  });

  const activity = createRoute({
    method: 'get',
    path: '/{id}/activity',
    tags,
    summary: 'The project’s activity log, newest first (viewer)',
    security: bearerSecurity,
    middleware: [access('viewer')] as const,
    request: {
      params: ProjectParams,
      query: z.object({
        limit: z.coerce
          .number()
          .int()
          .min(1)
          .max(maxActivityLimit)
          .default(defaultActivityLimit)
          .openapi({
            type: 'integer',
            minimum: 1,
            maximum: maxActivityLimit,
            default: defaultActivityLimit,
          }),
        before: text()
          .max(200)
          .optional()
          .openapi({ description: 'nextCursor of the previous page' }),
      }),
    },
    responses: {
      200: jsonResponse(
        z.object({
          activity: z.array(ActivitySchema),
          nextCursor: z.string().optional().openapi({ description: 'Present when there is more' }),
        }),
        'A page of activity',
      ),
      ...errorResponses(400, 401, 404),
    },
  });

  return {
    get,
    update,
    remove,
    listMembers,
    addMember,
    changeMember,
    removeMember,
    listInvitations,
    revokeInvitation,
    activity,
  };
}

/** /api/projects routes; every one requires a signed-in caller. */
export function createProjectsRoutes(deps: {
  projects: ProjectsService;
  activity: ActivityService;
  requireAuth: MiddlewareHandler;
}): OpenAPIHono {
  const { projects, activity } = deps;
  const r = projectRoutes(createProjectAccess(projects));
  const app = createRouter();
  // Only these paths: other routers (files, containers…) are mounted at /api/projects too.
  for (const path of [
    '/',
    '/:id',
    '/:id/members',
    '/:id/members/:userId',
    '/:id/invitations',
    '/:id/invitations/:invitationId',
    '/:id/activity',
  ]) {
    app.use(path, deps.requireAuth);
  }

  return app
    .openapi(create, async (c) => {
      const project = await projects.create(c.var.auth.userId, c.req.valid('json'));
      return c.json({ project }, 201);
    })
    .openapi(list, async (c) => {
      const { q } = c.req.valid('query');
      if (q?.trim())
        return c.json({ projects: await projects.list(c.var.auth.userId, { q }) }, 200);
      // Same body as c.json({projects}), reusing the serialisation of a cached list.
      // (Typed as the JSON response it is; hono cannot see through a pre-serialised body.)
      return c.body(await projects.listJson(c.var.auth.userId), 200, {
        'Content-Type': 'application/json',
      }) as never;
    })
    .openapi(r.get, async (c) => c.json({ project: c.var.project }, 200))
    .openapi(r.update, async (c) => {
      const project = await projects.update(
        c.var.project.id,
        c.var.auth.userId,
        c.req.valid('json'),
      );
      return c.json({ project }, 200);
    })
    .openapi(r.remove, async (c) => {
      await projects.delete(c.var.project.id, c.var.auth.userId);
      return c.body(null, 204);
    })
    .openapi(r.listMembers, async (c) => {
      const members = await projects.listMembers(c.var.project.id, c.var.auth.userId);
      return c.json({ members }, 200);
    })
    .openapi(r.addMember, async (c) => {
      const added = await projects.addMember(
        c.var.project.id,
        c.var.auth.userId,
        c.req.valid('json'),
      );
      if ('member' in added) return c.json({ member: added.member }, 201);
      return c.json({ invitation: added.invitation }, 202);
    })
    .openapi(r.changeMember, async (c) => {
      const member = await projects.changeMemberRole(
        c.var.project.id,
        c.var.auth.userId,
        c.req.valid('param').userId,
        c.req.valid('json').role,
      );
      return c.json({ member }, 200);
    })
    .openapi(r.removeMember, async (c) => {
      await projects.removeMember(c.var.project.id, c.var.auth.userId, c.req.valid('param').userId);
      return c.body(null, 204);
    })
    .openapi(r.listInvitations, async (c) => {
      const invitations = await projects.listInvitations(c.var.project.id, c.var.auth.userId);
      return c.json({ invitations }, 200);
    })
    .openapi(r.revokeInvitation, async (c) => {
      await projects.revokeInvitation(
        c.var.project.id,
        c.var.auth.userId,
        c.req.valid('param').invitationId,
      );
      return c.body(null, 204);
    })
    .openapi(r.activity, async (c) => {
      const { limit, before } = c.req.valid('query');
      return c.json(await activity.list(c.var.project.id, { limit, before }), 200);
    });
}

/** `GET /api/me/events` (mounted at /api/me by the composition root). */
export { createUserEventsRoutes } from './user-events.ts';
