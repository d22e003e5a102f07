import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { Hono } from 'hono';
import type pg from 'pg';
import type { Metrics } from '../services/monitoring/index.ts';

const require = createRequire(import.meta.url);
let scalarBundle: string | undefined;
/** How long /readyz waits for the database before saying not ready. */
const READY_TIMEOUT_MS = 2000;

/** /healthz, /readyz, /metrics and the API docs page (served offline, no CDN). */
export function createOpsRoutes(deps: { pool: pg.Pool; metrics: Metrics }): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    let timer: NodeJS.Timeout | undefined;
    try {
      // A database that hangs (not only one that refuses) makes us not ready, quickly.
      await Promise.race([
        deps.pool.query('SELECT 1'),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('no answer in time')), READY_TIMEOUT_MS);
        }),
      ]);
      return c.json({ status: 'ready', database: 'ok' });
    } catch {
      // Down or restarting (the embedded server is restarted automatically).
      c.header('Retry-After', '1');
      return c.json(
        { error: { code: 'unavailable', message: 'The database is not reachable' } },
        503,
      );
    } finally {
      clearTimeout(timer);
    }
  });
  app.get('/metrics', async (c) => {
    const { contentType, body } = await deps.metrics.render();
    return c.body(body, 200, { 'Content-Type': contentType });
  });
  app.get('/docs/scalar.js', (c) => {
    scalarBundle ??= readFileSync(
      require.resolve('@scalar/api-reference/browser/standalone.js'),
      'utf8',
    );
    return c.body(scalarBundle, 200, {
      'Content-Type': 'text/javascript; charset=utf-8',
      'Cache-Control': 'public, max-age=86400',
    });
  });
  app.get('/docs', (c) =>
    c.html(`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Vaporform API</title>
  </head>
  <body>
    <script id="api-reference" data-url="/openapi.json"></script>
    <script src="/docs/scalar.js"></script>
  </body>
</html>`),
  );
  return app;
}
