import {
  createVaporformClient,
  unwrap,
  type Middleware,
  type VaporformClient,
} from '@vaporform/sdk';
import type { Api } from './api.ts';

/**
 * The session middleware of the generated client: the access token on every request (refreshed
 * first when it is about to expire, once for all tabs), and on a 401 one silent refresh and
 * retry; a refused refresh ends the session here (SessionStore, reason `expired`). Sign-in
 * routes are sent without a token.
 */
export function sessionMiddleware(api: Api): Middleware {
  const pending = new Map<string, Request>();
  return {
    async onRequest({ request, id, schemaPath }) {
      if (isAnonymous(schemaPath)) return request;
      const token = await api.accessToken();
      if (token) request.headers.set('authorization', `Bearer ${token}`);
      pending.set(id, request.clone());
      return request;
    },
    async onResponse({ response, id }) {
      const sent = pending.get(id);
      pending.delete(id);
      if (response.status !== 401 || !sent || !api.session.get()) return response;
      if ((await errorCode(response.clone())) === 'mfa_required') return response;
      const fresh = await api.refresh();
      if (!fresh) return response;
      sent.headers.set('authorization', `Bearer ${fresh.token}`);
      const again = await fetch(sent);
      if (again.status === 401) api.session.clear('expired');
      return again;
    },
    onError({ id }) {
      pending.delete(id);
    },
  };
}

const clients = new WeakMap<Api, VaporformClient>();

/** The generated API client signed in as the IDE's session (one per Api). */
export function clientFor(api: Api): VaporformClient {
  let client = clients.get(api);
  if (!client) {
    client = createVaporformClient({ baseUrl: api.baseUrl || window.location.origin });
    client.use(sessionMiddleware(api));
    clients.set(api, client);
  }
  return client;
}

export { unwrap };

function isAnonymous(schemaPath: string): boolean {
  return (
    schemaPath === '/api/auth/login' ||
    schemaPath === '/api/auth/register' ||
    schemaPath === '/api/auth/refresh'
  );
}

async function errorCode(res: Response): Promise<string | undefined> {
  try {
    return ((await res.json()) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}
