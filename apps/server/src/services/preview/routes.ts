import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { getConnInfo } from '@hono/node-server/conninfo';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context, MiddlewareHandler } from 'hono';
import { createMiddleware } from 'hono/factory';
import { errors } from '../../common/errors.ts';
import { bearerSecurity, createRouter, errorResponses, jsonResponse } from '../../common/router.ts';
import type { UpgradeHandler } from '../../common/upgrade.ts';
import type { ProjectAccess } from '../projects/index.ts';
import { PREVIEW_AUTH_PATH, type PreviewService } from './service.ts';

const ProjectParams = z.object({
  id: z.string().openapi({
    param: { name: 'id', in: 'path' },
    format: 'uuid',
    description: 'Project id; a malformed one is 404',
  }),
});

const previewToken = (access: ProjectAccess, requireAuth: MiddlewareHandler) =>
  createRoute({
    method: 'post',
    path: '/{id}/preview-token',
    tags: ['preview'],
    summary: 'A short-lived link that signs you in to the project’s preview origin (viewer)',
    description:
      'Open `url` (it carries the token, valid once for 60 s) in the preview frame: the preview ' +
      'origin sets an HttpOnly cookie scoped to itself and redirects to `/`.',
    security: bearerSecurity,
    middleware: [requireAuth, access('viewer')] as const,
    request: { params: ProjectParams },
    responses: {
      201: jsonResponse(
        z.object({ token: z.string(), url: z.string(), expiresAt: z.string() }),
        'The preview link',
      ),
      ...errorResponses(401, 404),
    },
  });

/** `POST /api/projects/:id/preview-token`, mounted at /api/projects beside the projects router. */
export function createPreviewRoutes(deps: {
  preview: PreviewService;
  projectAccess: ProjectAccess;
  requireAuth: MiddlewareHandler;
}): OpenAPIHono {
  return createRouter().openapi(previewToken(deps.projectAccess, deps.requireAuth), async (c) =>
    c.json(await deps.preview.issueToken(c.var.project.id, c.var.auth), 201),
  );
}

/** The Host a request is for: `Host`, or `X-Forwarded-Host` only from a trusted proxy. */
function requestHost(
  host: string | undefined,
  forwardedHost: string | undefined,
  peer: string | undefined,
  trustedProxies: readonly string[],
): string | undefined {
  const normalised = peer?.startsWith('::ffff:') ? peer.slice(7) : peer;
  if (forwardedHost && normalised && trustedProxies.includes(normalised)) {
    return forwardedHost.split(',')[0]!.trim();
  }
  return host;
}

/** `host[:port]` of an Origin header, or undefined when it is not a URL (`null`). */
function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}

function peerOf(c: Context): string | undefined {
  try {
    return getConnInfo(c).remote.address;
  } catch {
    return undefined; // app.request() in tests has no socket
  }
}

/**
 * First middleware of the app: a request whose Host is a preview host never reaches the API.
 * It is either the cookie exchange, or checked (member cookie) and proxied to the project's
 * dev server; anything else under `.preview.` is 404.
 */
export function createPreviewMiddleware(deps: {
  preview: PreviewService;
  trustedProxies: readonly string[];
}): MiddlewareHandler {
  const { preview } = deps;
  return createMiddleware(async (c, next) => {
    const host = requestHost(
      c.req.header('host'),
      c.req.header('x-forwarded-host'),
      peerOf(c),
      deps.trustedProxies,
    );
    if (!preview.isPreviewHost(host)) return next();
    const projectId = preview.projectForHost(host);
    if (!projectId) throw errors.notFound('preview');

    if (c.req.path === PREVIEW_AUTH_PATH) {
      const { cookie } = await preview.exchange(projectId, c.req.query('token'));
      c.header('Set-Cookie', cookie);
      c.header('Cache-Control', 'no-store');
      c.header('Referrer-Policy', 'no-referrer');
      return c.redirect('/', 302);
    }
    await preview.authorize(projectId, c.req.header('cookie'));
    const env = c.env as { incoming?: IncomingMessage; outgoing?: ServerResponse } | undefined;
    if (!env?.incoming || !env.outgoing) {
      throw errors.unavailable('Previews are served by the Node.js server only');
    }
    await preview.proxyWeb(projectId, env.incoming, env.outgoing);
    return RESPONSE_ALREADY_SENT;
  });
}

/** Upgrade handler for preview hosts (hot-reload WebSockets); register it before the others. */
export function createPreviewUpgradeHandler(deps: {
  preview: PreviewService;
  trustedProxies: readonly string[];
}): UpgradeHandler {
  const { preview } = deps;
  return async (req, socket, head) => {
    const forwarded = req.headers['x-forwarded-host'];
    const host = requestHost(
      req.headers.host,
      Array.isArray(forwarded) ? forwarded[0] : forwarded,
      req.socket.remoteAddress,
      deps.trustedProxies,
    );
    if (!preview.isPreviewHost(host)) return false;
    const projectId = preview.projectForHost(host);
    if (!projectId) throw errors.notFound('preview');
    // WebSockets escape CORS: a page of another project's preview (same site, framed in the
    // same IDE, so sent the same partitioned cookie) must not open this one's hot-reload socket.
    const origin = req.headers.origin;
    if (origin !== undefined && preview.projectForHost(hostOf(origin)) !== projectId) {
      throw errors.forbidden('This preview’s WebSockets open only from its own pages');
    }
    const caller = await preview.authorize(projectId, req.headers.cookie);
    await preview.proxyWs(projectId, caller, req, socket, head);
    return true;
  };
}
