import {
  VaporformApiError,
  createVaporformClient,
  toApiError,
  unwrap,
  type VaporformClient,
} from '@vaporform/sdk';
import { CredentialStore, type ServerCredentials } from './credentials.ts';

/** Refresh the access token when it has less than this left. */
const REFRESH_MARGIN_MS = 30_000;

/** The server's origin from `--server`/`--url`, `VAPORFORM_URL`, or the default. */
export function serverOrigin(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const raw = flag || env.VAPORFORM_URL || 'http://localhost:4000';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new VaporformApiError(0, 'invalid_server', `not a URL: ${raw}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new VaporformApiError(0, 'invalid_server', `not an http(s) URL: ${raw}`);
  }
  return url.origin;
}

/** A signed-in connection to one server: the typed client and an authenticated `fetch`. */
export class Session {
  readonly api: VaporformClient;

  constructor(
    readonly server: string,
    private readonly store: CredentialStore,
    private credentials: ServerCredentials,
  ) {
    this.api = createVaporformClient({ baseUrl: server, fetch: (req) => this.fetch(req) });
  }

  /** The signed-in user's email. */
  get email(): string {
    return this.credentials.email;
  }

  /** The refresh token (for logout). */
  get refreshToken(): string {
    return this.credentials.refreshToken;
  }

  /**
   * Sends `request` with the access token, refreshing it first when it is about to expire and
   * once more (then retrying) when the server answers 401.
   */
  async fetch(request: Request): Promise<Response> {
    if (this.credentials.expiresAt - Date.now() < REFRESH_MARGIN_MS) await this.refresh();
    const retry = request.clone();
    request.headers.set('authorization', `Bearer ${this.credentials.token}`);
    const res = await fetch(request);
    if (res.status !== 401) return res;
    await res.body?.cancel();
    await this.refresh();
    retry.headers.set('authorization', `Bearer ${this.credentials.token}`);
    return fetch(retry);
  }

  /** A raw request on the server (streams, archives), authenticated like the client's. */
  request(path: string, init: RequestInit = {}): Promise<Response> {
    return this.fetch(new Request(new URL(path, this.server), init));
  }

  /**
   * Trades the refresh token for a new pair and saves it; a rejected one signs the user out.
   * @throws VaporformApiError when the session is over.
   */
  private async refresh(): Promise<void> {
    const anonymous = createVaporformClient({ baseUrl: this.server });
    const result = await anonymous.POST('/api/auth/refresh', {
      body: { refreshToken: this.credentials.refreshToken },
    });
    if (!result.response.ok) {
      const err = toApiError(result.response.status, result.error);
      if (result.response.status === 401) {
        this.store.set(this.server, undefined);
        throw new VaporformApiError(
          401,
          err.code,
          `${err.message}; sign in again with \`vaporform login\``,
        );
      }
      throw err;
    }
    const pair = unwrap(result);
    this.credentials = {
      ...this.credentials,
      token: pair.token,
      refreshToken: pair.refreshToken,
      expiresAt: Date.now() + pair.expiresIn * 1000,
    };
    this.store.set(this.server, this.credentials);
  }
}

/**
 * The saved session for `server`.
 * @throws VaporformApiError (`unauthenticated`) when nobody is signed in there.
 */
export function openSession(server: string, store: CredentialStore): Session {
  const credentials = store.get(server);
  if (!credentials) {
    throw new VaporformApiError(
      401,
      'unauthenticated',
      `not signed in to ${server}: run \`vaporform login\``,
    );
  }
  return new Session(server, store, credentials);
}
