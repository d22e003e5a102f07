import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import type { ErrorCode } from './errors.ts';

/**
 * A raw upgrade handler for a host that is not the API (a preview's hot-reload socket): returns
 * true when it took the request, false to let the WebSocket routes have it. Throwing an AppError
 * answers with the contract's error and status. API WebSockets are Hono routes instead
 * (common/websocket.ts); `serveApp` (http/server.ts) asks these handlers first.
 */
export type UpgradeHandler = (
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
) => boolean | Promise<boolean>;

/** Answers an upgrade request with a plain HTTP error in the contract's shape and closes it. */
export function rejectUpgrade(
  socket: Duplex,
  status: number,
  code: ErrorCode,
  message: string,
): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}
