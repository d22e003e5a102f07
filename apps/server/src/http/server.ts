import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { serve } from '@hono/node-server';
import { WebSocketServer } from 'ws';
import { AppError } from '../common/errors.ts';
import { answerRefusedUpgrade, rejectUpgrade, type UpgradeHandler } from '../common/upgrade.ts';

/** What @hono/node-server passes as `env`: an upgrade has the request and no response. */
interface UpgradeEnv {
  incoming?: { socket: Duplex };
  outgoing?: unknown;
}

/**
 * Listens with the Hono app: HTTP requests and WebSocket upgrades both go through `app.fetch`
 * (@hono/node-server's own upgrade support over one `ws` server), so WebSocket routes pass the
 * same middleware as HTTP routes. `hostUpgrades` are asked first, with the raw request: they
 * are for hosts that are not the API (a preview's hot-reload socket, proxied byte for byte to
 * the project's dev server, which a WebSocket route could only re-frame).
 */
export function serveApp(
  app: { fetch: (request: Request, env: object) => Response | Promise<Response> },
  options: { port: number; hostname: string; hostUpgrades?: readonly UpgradeHandler[] },
  onListening?: (info: AddressInfo) => void,
): Server {
  // 1 MiB: the terminal's largest paste; the project socket refuses more than it reads itself.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1 << 20 });
  // A refused upgrade (an AppError rendered by the route: 401, 403, 404…) gets the same JSON
  // body as the HTTP routes answer, not just a status line (the adapter writes no body).
  const fetch = async (request: Request, env: UpgradeEnv): Promise<Response> => {
    const response = await app.fetch(request, env);
    if (env.incoming && env.outgoing === undefined && response.status >= 300) {
      await answerRefusedUpgrade(env.incoming.socket, response);
    }
    return response;
  };
  const server = serve(
    {
      fetch,
      port: options.port,
      hostname: options.hostname,
      websocket: { server: wss },
    },
    onListening,
  ) as Server;
  const hostUpgrades = options.hostUpgrades ?? [];
  if (hostUpgrades.length === 0) return server;
  // The adapter's listener answers refusals only while it is the sole 'upgrade' listener:
  // it stays the only one, called after the host handlers declined.
  const [routes] = server.listeners('upgrade') as ((
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
  ) => void)[];
  server.removeAllListeners('upgrade');
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    void (async () => {
      try {
        for (const handler of hostUpgrades) if (await handler(req, socket, head)) return;
      } catch (err) {
        socket.on('error', () => socket.destroy());
        if (err instanceof AppError) rejectUpgrade(socket, err.status, err.code, err.message);
        else rejectUpgrade(socket, 500, 'internal', 'Something went wrong on our side');
        return;
      }
      routes?.call(server, req, socket, head);
    })();
  });
  return server;
}
