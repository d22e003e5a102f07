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
  const body = Buffer.from(JSON.stringify({ error: { code, message } }));
  socket.end(responseBytes(status, [['content-type', 'application/json']], body));
}

/** Headers that describe the connection, not the answer: never copied onto an upgrade's socket. */
const connectionHeaders = new Set([
  'connection',
  'content-length',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Writes a Hono route's refusal of a WebSocket upgrade on the raw socket — its status, headers
 * and body (the contract's `{error:{code,message}}`) — and closes the socket once it is sent.
 * `@hono/node-server` would answer the status alone (`Content-Length: 0`); `serveApp` calls
 * this first, and the adapter then finds the socket closed.
 */
export async function answerRefusedUpgrade(socket: Duplex, response: Response): Promise<void> {
  const body = Buffer.from(await response.arrayBuffer());
  if (socket.destroyed) return;
  const headers: [string, string][] = [];
  response.headers.forEach((value, key) => {
    if (!connectionHeaders.has(key)) headers.push([key, value]);
  });
  await new Promise<void>((resolve) => {
    socket.on('error', () => socket.destroy());
    socket.once('close', resolve);
    socket.end(responseBytes(response.status, headers, body), resolve);
  });
  socket.destroy();
}

function responseBytes(status: number, headers: [string, string][], body: Buffer): Buffer {
  const head =
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    headers.map(([k, v]) => `${k}: ${v}\r\n`).join('') +
    `Content-Length: ${body.length}\r\n` +
    'Connection: close\r\n\r\n';
  return Buffer.concat([Buffer.from(head), body]);
}
