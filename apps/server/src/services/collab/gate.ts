import type { IncomingMessage } from 'node:http';
import type { AuthService } from '../auth/index.ts';
import type { AccessClaims } from '../auth/index.ts';
import { requireIdeOrigin } from '../realtime/index.ts';

/** The upgrade path of the OT channel. */
export const COLLAB_PATH = '/api/collab';

/**
 * The gate of `WS /api/collab`, independent of how the upgrade is routed: a browser's Origin
 * must be the IDE's (403), and `?token=` (or `Authorization: Bearer`) must be a valid access
 * token of a live session (401). Project membership is checked per document afterwards, in
 * ShareDB middleware (the socket is not tied to one project).
 * @param ideOrigin `new URL(VAPORFORM_PUBLIC_URL).origin`.
 * @throws AppError forbidden, unauthenticated.
 */
export async function authorizeCollabUpgrade(
  req: IncomingMessage,
  deps: { auth: AuthService; ideOrigin: string },
): Promise<AccessClaims> {
  requireIdeOrigin(req, deps.ideOrigin);
  const url = new URL(req.url ?? '/', 'http://localhost');
  const token = url.searchParams.get('token') ?? bearer(req.headers.authorization);
  return deps.auth.authenticate(token ?? undefined);
}

function bearer(header: string | undefined): string | undefined {
  return /^Bearer\s+(.+)$/i.exec(header ?? '')?.[1];
}
