import {
  createVaporformClient,
  isApiErrorBody,
  unwrap,
  VaporformApiError,
  type Middleware,
  type paths,
  type VaporformClient,
} from '@vaporform/sdk';
import type { Session, SessionStore } from './session.ts';

export { unwrap };
/** An error answered by the API in the contract's shape `{error:{code,message,details?}}`. */
export { VaporformApiError as ApiError };

/**
 * What to tell the person about a failed call: the contract's message (from a thrown
 * `ApiError`, or the `{error:{code,message}}` body TanStack Query hooks throw as is), else the
 * error's own message, else `fallback`.
 */
export function errorMessage(err: unknown, fallback = 'Something went wrong'): string {
  if (isApiErrorBody(err)) return err.error.message;
  if (err instanceof Error && err.message) return err.message;
  if (typeof err === 'string' && err) return err;
  return fallback;
}

/** The contract's error code of a failed call (thrown `ApiError` or error body), if any. */
export function errorCode(err: unknown): string | undefined {
  if (err instanceof VaporformApiError) return err.code;
  if (isApiErrorBody(err)) return err.error.code;
  return undefined;
}

/**
 * The IDE's connection to the API as the signed-in person: the generated client (`client`,
 * with the session middleware), the access token for sockets and streams, sign-in and sign-out.
 */
export class ApiConnection {
  readonly baseUrl: string;
  readonly session: SessionStore;
  /** The generated openapi-fetch client, signed in as this session. */
  readonly client: VaporformClient;

  constructor(session: SessionStore, baseUrl = '') {
    this.session = session;
    this.baseUrl = baseUrl.replace(/\/$/, '');
    this.client = createVaporformClient({ baseUrl: this.baseUrl || window.location.origin });
    this.client.use(sessionMiddleware(this));
  }

  /** A valid access token, refreshed first when it is about to expire. */
  async accessToken(): Promise<string | null> {
    const s = this.session.get();
    if (!s) return null;
    if (s.expiresAt - Date.now() > 30_000) return s.token;
    return (await this.refresh())?.token ?? null;
  }

  /** Rotates the token pair (shared across tabs); null when the session is over. */
  refresh(): Promise<Session | null> {
    return this.session.refresh(async (refreshToken) => {
      const r = await this.client.POST('/api/auth/refresh', { body: { refreshToken } });
      if (!r.data) return { ok: false, status: r.response.status };
      return { ok: true, ...r.data };
    });
  }

  /** Signs in and stores the session. @throws ApiError 401 `mfa_required` when a code is needed */
  async login(body: LoginBody): Promise<Session> {
    const r = unwrap(await this.client.POST('/api/auth/login', { body }));
    const session: Session = {
      token: r.token,
      refreshToken: r.refreshToken,
      expiresAt: Date.now() + r.expiresIn * 1000,
      user: r.user,
    };
    this.session.set(session);
    return session;
  }

  /** Ends the session on the server and forgets it here. */
  async logout(): Promise<void> {
    const s = this.session.get();
    try {
      if (s) await this.client.POST('/api/auth/logout', { body: { refreshToken: s.refreshToken } });
    } catch {
      // Signed out here whatever the server says.
    }
    this.session.clear('logout');
  }
}

/** What `POST /api/auth/login` takes: email, password, and the MFA code when enabled. */
type LoginBody = NonNullable<
  paths['/api/auth/login']['post']['requestBody']
>['content']['application/json'];

/**
 * The session middleware of the generated client: the access token on every request (refreshed
 * first when it is about to expire, once for all tabs), and on a 401 one silent refresh and
 * retry; a refused refresh ends the session here (SessionStore, reason `expired`). Sign-in
 * routes are sent without a token.
 */
function sessionMiddleware(api: ApiConnection): Middleware {
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
      if ((await responseCode(response.clone())) === 'mfa_required') return response;
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

function isAnonymous(schemaPath: string): boolean {
  return (
    schemaPath === '/api/auth/login' ||
    schemaPath === '/api/auth/register' ||
    schemaPath === '/api/auth/refresh'
  );
}

async function responseCode(res: Response): Promise<string | undefined> {
  try {
    return ((await res.json()) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}
