import type { IncomingMessage } from 'node:http';
import { upgradeWebSocket } from '@hono/node-server';
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { createMiddleware } from 'hono/factory';
import type { WebSocket } from 'ws';
import { errors } from './errors.ts';
import { bearerSecurity, createRouter, errorResponses } from './router.ts';

/**
 * WebSocket routes are Hono routes: the route's middleware (`ideOrigin`, `requireAuth`,
 * `projectAccess(…)`) runs on the upgrade request like on any request, and a refusal is the
 * route's HTTP error status (the node adapter writes it on the socket). The server must be made
 * by `serveApp` (http/server.ts), which gives @hono/node-server its `ws` WebSocketServer.
 *
 * @example
 *   router.openapi(route, async (c) =>            // route.middleware: [ideOrigin, requireAuth, …]
 *     acceptWebSocket(c, (ws) => ws.send('hello')));
 */

/**
 * Refuses a WebSocket upgrade that a browser sends from another origin than the IDE's
 * (cross-site WebSocket hijacking: a page elsewhere opening a socket with a token it holds).
 * Clients that send no Origin (CLIs, servers) are let through: the token still decides. Put it
 * first, before `requireAuth`: a wrong Origin is 403 whoever asks.
 * @param publicUrl the IDE's base URL (`VAPORFORM_PUBLIC_URL`).
 */
export function ideOrigin(publicUrl: string): MiddlewareHandler {
  const allowed = new URL(publicUrl).origin;
  return createMiddleware(async (c, next) => {
    const origin = c.req.header('origin');
    if (origin !== undefined && origin !== allowed) {
      throw errors.forbidden('This WebSocket opens only from the Vaporform IDE');
    }
    await next();
  });
}

/** True when the request asks to upgrade to a WebSocket. */
export function isWebSocketUpgrade(c: Context): boolean {
  return c.req.header('upgrade')?.toLowerCase() === 'websocket';
}

/**
 * Refuses a request that cannot become a WebSocket before the handler prepares anything.
 * @throws AppError invalid for a plain request (no Upgrade header), unavailable outside the
 *   Node.js server (`app.request()` in tests).
 */
export function requireWebSocketUpgrade(c: Context): IncomingMessage {
  if (!isWebSocketUpgrade(c)) {
    throw errors.invalid('This endpoint is a WebSocket: send an Upgrade request');
  }
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (!incoming) throw errors.unavailable('WebSockets are served by the Node.js server only');
  return incoming;
}

/**
 * Accepts the upgrade of a WebSocket route (call it as the handler's last step, after every
 * check and after {@link requireWebSocketUpgrade}): `open` gets the `ws` socket once the
 * handshake is done. `abandoned` runs instead when the client went away before that (release
 * what the handler prepared for it).
 *
 * Once open, the socket keeps nothing of its upgrade request: the adapter's per-socket
 * listeners (which close over the Hono Context, the Request, its headers and the
 * IncomingMessage, ~10 KiB a socket) are removed, so what `open` keeps (ids, role) is all that
 * stays. Routes here pass no onMessage/onClose/onError: `open` listens on the `ws` socket.
 * @throws AppError as {@link requireWebSocketUpgrade}.
 */
export function acceptWebSocket(
  c: Context,
  open: (ws: WebSocket) => void,
  options: { abandoned?: () => void } = {},
): Promise<Response> {
  const socket = requireWebSocketUpgrade(c).socket;
  let abandoned = options.abandoned;
  const onClose = () => abandoned?.();
  socket.once('close', onClose);
  return upgradeWebSocket(c, {
    onOpen: (_event, ctx) => {
      socket.off('close', onClose);
      abandoned = undefined;
      const ws = ctx.raw as unknown as WebSocket;
      // A socket error is never unhandled, whatever `open` listens to. (A module-level
      // function: a closure made here would keep this call's scope, and the Context, alive.)
      ws.on('error', terminate);
      open(ws);
      const ours = new Map(adapterEvents.map((e) => [e, new Set(ws.listeners(e))]));
      // The adapter adds its listeners right after onOpen returns, synchronously.
      queueMicrotask(() => {
        for (const [event, kept] of ours) {
          for (const listener of ws.listeners(event)) {
            if (!kept.has(listener)) ws.off(event, listener as (...args: unknown[]) => void);
          }
        }
      });
    },
  });
}

function terminate(this: WebSocket): void {
  this.terminate();
}

/** The events @hono/node-server's upgradeWebSocket listens to on each socket. */
const adapterEvents = ['message', 'close', 'error'] as const;

/** What a WebSocket route prepared for one socket (see {@link acceptWebSocket}). */
export interface PreparedSocket {
  open(ws: WebSocket): void;
  abandon?(): void;
}

/**
 * A documented WebSocket route without path parameters, in one call: its gate is `middleware`
 * (put `ideOrigin(publicUrl)` first, then `requireAuth`…); `prepare` runs after it and before
 * the handshake (throw an AppError to refuse with its status).
 * @example
 *   // compose.ts, routes.api:
 *   ['collab', createWebSocketRoute({
 *     summary: 'WebSocket: ShareDB', description: '…',
 *     middleware: [ideOrigin(config.publicUrl), requireAuth],
 *     prepare: (c) => { const claims = c.var.auth; return { open: (ws) => collab.accept(ws, claims) }; },
 *   })]
 */
export function createWebSocketRoute(spec: {
  /** Below the mount path; '/' by default. */
  path?: string;
  tags?: string[];
  summary: string;
  description: string;
  middleware: MiddlewareHandler[];
  /** Query parameters beside `token` (validated: a bad one is a 400 before the handshake). */
  query?: z.ZodRawShape;
  prepare: (c: Context) => PreparedSocket | Promise<PreparedSocket>;
}): OpenAPIHono {
  const route = createRoute({
    method: 'get',
    path: spec.path ?? '/',
    tags: spec.tags ?? ['realtime'],
    summary: spec.summary,
    description: `${spec.description} A plain GET is 400.`,
    security: bearerSecurity,
    middleware: spec.middleware,
    request: { query: z.object({ token: z.string().optional(), ...spec.query }) },
    responses: {
      101: { description: 'Switching protocols' },
      ...errorResponses(400, 401, 403, 503),
    },
  });
  return createRouter().openapi(route, async (c) => {
    requireWebSocketUpgrade(c);
    const socket = await spec.prepare(c);
    return acceptWebSocket(c, (ws) => socket.open(ws), { abandoned: () => socket.abandon?.() });
  });
}
