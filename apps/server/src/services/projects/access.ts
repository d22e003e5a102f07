import type { MiddlewareHandler } from 'hono';
import { createMiddleware } from 'hono/factory';
import { errors } from '../../common/errors.ts';
import type { Project, ProjectsService } from './service.ts';

/** A member's role on a project, strongest first: owner > admin > editor > viewer. */
export type Role = 'owner' | 'admin' | 'editor' | 'viewer';

export const roles: readonly Role[] = ['owner', 'admin', 'editor', 'viewer'];

const rank: Record<Role, number> = { owner: 4, admin: 3, editor: 2, viewer: 1 };

/** True when `role` grants at least what `min` grants (`roleAtLeast('admin', 'editor')`). */
export function roleAtLeast(role: Role, min: Role): boolean {
  return rank[role] >= rank[min];
}

declare module 'hono' {
  interface ContextVariableMap {
    /** The project named by the path, with the caller's role; set by `projectAccess`. */
    project: Project;
  }
}

/**
 * Builds the `projectAccess(min, param)` middleware factory for routes under a project.
 *
 * @example
 *   const projectAccess = createProjectAccess(projects);
 *   app.use('/:id/files/*', requireAuth, projectAccess('editor'));
 *   // handlers read c.var.project.id and c.var.project.role
 */
export function createProjectAccess(projects: ProjectsService) {
  /**
   * Requires the caller (`c.var.auth`, so mount after the auth middleware) to hold at least
   * `min` on the project whose id is the path parameter `param`, and sets `c.var.project`.
   * @throws AppError not_found for non-members and malformed ids, forbidden below `min`.
   */
  return function projectAccess(min: Role, param = 'id'): MiddlewareHandler {
    return createMiddleware(async (c, next) => {
      const auth = c.get('auth') as { userId: string } | undefined;
      if (!auth) throw errors.unauthenticated();
      const { project } = await projects.requireRole(c.req.param(param) ?? '', auth.userId, min);
      c.set('project', project);
      await next();
    });
  };
}

/** The middleware factory {@link createProjectAccess} returns. */
export type ProjectAccess = ReturnType<typeof createProjectAccess>;
