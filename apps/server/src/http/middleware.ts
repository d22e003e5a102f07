import { randomUUID } from 'node:crypto';
import { createMiddleware } from 'hono/factory';
import { matchedRoutes } from 'hono/route';
import { requestIdScope, type Logger } from '../common/logger.ts';
import type { Metrics } from '../services/monitoring/index.ts';

const REQUEST_ID = /^[A-Za-z0-9._-]{8,128}$/;

/**
 * Stamps each request with its arrival time, a request id (the caller's X-Request-Id when sane)
 * and a child logger carrying it; records the duration metric and one access-log line.
 */
export function requestContext(log: Logger, metrics: Metrics) {
  return createMiddleware(async (c, next) => {
    const started = performance.now();
    // Sub-millisecond: a replay can arrive within the millisecond its rotation committed.
    c.set('receivedAt', performance.timeOrigin + performance.now());
    const incoming = c.req.header('x-request-id');
    const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    c.set('requestId', requestId);
    c.set('log', log);
    c.header('X-Request-Id', requestId);
    await requestIdScope.run(requestId, async () => {
      await next();
      const seconds = (performance.now() - started) / 1000;
      const status = c.res.status;
      // Label by the endpoint pattern that matched (bounded cardinality), never the raw path.
      const endpoint = matchedRoutes(c).find((r) => r.method === c.req.method);
      const route = endpoint ? endpoint.path : 'unmatched';
      metrics.httpRequestDuration.observe(
        { method: c.req.method, route, status: String(status) },
        seconds,
      );
      c.var.log[status >= 500 ? 'error' : 'info'](
        { method: c.req.method, path: c.req.path, route, status, ms: Math.round(seconds * 1000) },
        'request',
      );
    });
  });
}
