import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { UserEvent } from '@vaporform/sdk';
import type { MiddlewareHandler } from 'hono';
import { streamSSE } from 'hono/streaming';
import { bearerSecurity, createRouter, errorResponses } from '../../common/router.ts';
import type { AuthService } from '../auth/index.ts';
import type { ProjectsService } from './service.ts';

/** A comment line this often keeps idle proxies from closing the stream (ms). */
const KEEP_ALIVE_MS = 25_000;

const events = createRoute({
  method: 'get',
  path: '/events',
  tags: ['projects'],
  summary: 'The signed-in user’s own events, streamed (server-sent events)',
  description:
    'A `text/event-stream` for as long as the session lasts: `membership` `{projectId, role}` when the caller is added to a project (an invitation accepted included) or their role changes, `role: null` when they are no longer a member (removed, or the project deleted). The dashboard reads its list again on each. Events are the `userEvent` union of @vaporform/sdk; a comment line every 25 s keeps the connection open. The stream ends when the session is revoked.',
  security: bearerSecurity,
  responses: {
    200: {
      description: 'text/event-stream of `membership` events (data: JSON `{projectId, role}`)',
      content: { 'text/event-stream': { schema: z.string() } },
    },
    ...errorResponses(401),
  },
});

/** `GET /api/me/events`: membership changes of the signed-in user, on whichever instance. */
export function createUserEventsRoutes(deps: {
  projects: ProjectsService;
  auth: AuthService;
  requireAuth: MiddlewareHandler;
}): OpenAPIHono {
  const app = createRouter();
  app.use('/events', deps.requireAuth);
  return app.openapi(events, (c) => {
    const { userId, sessionId } = c.var.auth;
    return streamSSE(c, async (stream) => {
      let chain = Promise.resolve();
      const send = (event: UserEvent) => {
        chain = chain
          .then(() => stream.writeSSE({ event: event.type, data: JSON.stringify(event.data) }))
          .catch(() => undefined);
      };
      let end: () => void = () => undefined;
      const ended = new Promise<void>((resolve) => (end = resolve));
      const stopMembership = deps.projects.onMembershipChanged((change) => {
        if (change.userId !== userId) return;
        send({ type: 'membership', data: { projectId: change.projectId, role: change.role } });
      });
      const stopRevocations = deps.auth.onSessionsRevoked((ids) => {
        if (ids.includes(sessionId)) end();
      });
      const keepAlive = setInterval(() => {
        chain = chain
          .then(() => stream.write(': keep-alive\n\n'))
          .then(
            () => undefined,
            () => undefined,
          );
      }, KEEP_ALIVE_MS);
      stream.onAbort(end);
      // Headers go out at once, so the client knows it is listening.
      await stream.write(': listening\n\n');
      await ended;
      clearInterval(keepAlive);
      stopMembership();
      stopRevocations();
      await chain;
    });
  });
}
