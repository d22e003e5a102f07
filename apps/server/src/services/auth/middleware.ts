import { createMiddleware } from 'hono/factory';
import type { AuthService } from './service.ts';

/**
 * Requires a valid access token of a live session (`Authorization: Bearer …`, or `?token=` for
 * WebSocket upgrades, where browsers cannot set headers) and sets `c.var.auth`.
 */
export function createRequireAuth(auth: AuthService) {
  return createMiddleware(async (c, next) => {
    const header = c.req.header('authorization');
    let token: string | undefined;
    if (header) {
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      token = match?.[1];
    } else if (c.req.header('upgrade')?.toLowerCase() === 'websocket') {
      token = c.req.query('token');
    }
    c.set('auth', await auth.authenticate(token));
    await next();
  });
}
