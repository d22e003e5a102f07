import type { IncomingMessage } from 'node:http';
import { errors } from '../../common/errors.ts';

/**
 * Refuses a WebSocket upgrade that a browser sends from another origin than the IDE's
 * (cross-site WebSocket hijacking: a page elsewhere opening a socket with a token it holds or
 * guessed the route of). Clients that send no Origin (CLIs, servers) are let through: the
 * token still decides.
 * @param ideOrigin the IDE's origin, `new URL(VAPORFORM_PUBLIC_URL).origin`.
 * @throws AppError forbidden for any other Origin.
 */
export function requireIdeOrigin(req: IncomingMessage, ideOrigin: string): void {
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== ideOrigin) {
    throw errors.forbidden('This WebSocket opens only from the Vaporform IDE');
  }
}
