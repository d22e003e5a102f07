import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { AppError, type ErrorCode } from './errors.ts';

/**
 * Handles an HTTP upgrade (WebSocket) request it recognises and returns true; returns false to
 * let the next handler look. Throwing an AppError answers with the contract's error and status.
 */
export type UpgradeHandler = (
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
) => boolean | Promise<boolean>;

/**
 * Dispatches HTTP upgrades (project events, collaboration, terminals, preview HMR) to the service
 * that owns the path or host. Services register handlers in compose; main.ts attaches the router
 * to the HTTP server.
 */
export class UpgradeRouter {
  readonly #handlers: UpgradeHandler[] = [];

  /** Registers a handler; handlers are asked in registration order. */
  add(handler: UpgradeHandler): void {
    this.#handlers.push(handler);
  }

  /** Routes every upgrade request of `server`; unknown paths get 404. */
  attach(server: Pick<Server, 'on'>): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      void this.handle(req, socket, head);
    });
  }

  async handle(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    try {
      for (const handler of this.#handlers) {
        if (await handler(req, socket, head)) return;
      }
      rejectUpgrade(socket, 404, 'not_found', 'No WebSocket endpoint here');
    } catch (err) {
      if (err instanceof AppError) rejectUpgrade(socket, err.status, err.code, err.message);
      else rejectUpgrade(socket, 500, 'internal', 'Something went wrong on our side');
    }
  }
}

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
