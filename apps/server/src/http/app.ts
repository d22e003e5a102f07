import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { secureHeaders } from 'hono/secure-headers';
import { errors } from '../common/errors.ts';
import type { Services } from '../compose.ts';
import { renderError } from './errors.ts';
import { requestContext } from './middleware.ts';
import { createOpsRoutes } from './ops-routes.ts';
import { createWebUiRoutes, defaultWebDist } from './web-ui.ts';

/**
 * Assembles the HTTP surface: middleware, every service's sub-app under /api, operations
 * routes and the OpenAPI document. No I/O happens here; `main.ts` listens.
 */
export function createApp(s: Services): OpenAPIHono {
  const app = new OpenAPIHono();

  app.use('*', requestContext(s.log, s.metrics));
  // Requests for <projectId>.preview.<host> never reach the API: checked, then proxied.
  app.use('*', s.routes.hosts);
  // JSON needs only nosniff; pages (docs, the IDE) get the full set of security headers.
  // Set before the handler so it joins the response's prepared headers (cheaper than editing
  // a finished response).
  app.use('/api/*', (c, next) => {
    c.header('X-Content-Type-Options', 'nosniff');
    return next();
  });
  const pageHeaders = secureHeaders({
    crossOriginResourcePolicy: false,
    crossOriginOpenerPolicy: false,
  });
  app.use('*', (c, next) => (c.req.path.startsWith('/api/') ? next() : pageHeaders(c, next)));
  const limitTo = (maxSize: number) =>
    bodyLimit({
      maxSize,
      onError: () => {
        throw errors.tooLarge(`Request body is larger than ${maxSize} bytes`);
      },
    });
  const jsonLimit = limitTo(s.config.bodyLimitBytes);
  // Uploads (file contents, zip imports) declare their own, larger limits.
  const largeBodies = s.routes.bodyLimits.map((l) => ({ ...l, limit: limitTo(l.maxBytes) }));
  app.use('/api/*', (c, next) => {
    // Bodiless reads skip the limiter: probing the body would materialise a full Request.
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    const large = largeBodies.find((l) => l.method === c.req.method && l.path.test(c.req.path));
    return (large?.limit ?? jsonLimit)(c, next);
  });

  app.route('/api/auth', s.routes.auth);
  for (const [path, routes] of s.routes.api) app.route(`/api/${path}`, routes);
  app.route('/', createOpsRoutes({ pool: s.pool, metrics: s.metrics }));

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
  });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Vaporform API',
      version: '0.1.0',
      description:
        'The HTTP contract of Vaporform (see API.md). Errors are `{error:{code,message,details?}}`.',
    },
    servers: [{ url: s.config.publicUrl }],
  });

  // The built IDE (apps/web/dist) for every other GET outside /api; after all other routes.
  // Pages asked for on another host go to the public URL (Origin checks, preview cookies).
  app.route(
    '/',
    createWebUiRoutes(defaultWebDist, {
      publicUrl: s.config.publicUrl,
      trustedProxies: s.config.trustedProxies,
    }),
  );

  app.notFound(() => {
    throw errors.notFound('route');
  });
  app.onError(renderError);
  return app;
}
