import { createHash } from 'node:crypto';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';

/** What a verified Supabase access token says about its bearer. */
export interface SupabaseIdentity {
  /** Supabase's user id (`sub`). */
  subject: string;
  email: string;
  name: string | undefined;
  /** The Vaporform session this Supabase session maps to (a UUID derived from `session_id`). */
  sessionId: string;
}

/**
 * Verifies access tokens issued by a Supabase project's Auth (GoTrue): `aud` must be
 * `authenticated`, `iss` `${url}/auth/v1`, `exp` in the future. HS256 tokens are checked with the
 * project's JWT secret; asymmetric ones (ES256, RS256…) with the project's JWKS at
 * `${url}/auth/v1/.well-known/jwks.json` (fetched and cached by jose, refreshed on an unknown kid).
 */
export class SupabaseTokens {
  readonly #issuer: string;
  readonly #secret: Uint8Array | undefined;
  readonly #jwks: ReturnType<typeof createRemoteJWKSet>;

  constructor(options: { url: string; jwtSecret?: string }) {
    const base = options.url.replace(/\/+$/, '');
    this.#issuer = `${base}/auth/v1`;
    this.#secret = options.jwtSecret ? new TextEncoder().encode(options.jwtSecret) : undefined;
    this.#jwks = createRemoteJWKSet(new URL(`${this.#issuer}/.well-known/jwks.json`), {
      timeoutDuration: 5_000,
      cooldownDuration: 30_000,
    });
  }

  /** The identity in `token`, or null when it is not a valid Supabase access token. */
  async verify(token: string): Promise<SupabaseIdentity | null> {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      return null;
    }
    const options = {
      issuer: this.#issuer,
      audience: 'authenticated',
      requiredClaims: ['sub', 'exp'],
    };
    let payload: JWTPayload;
    try {
      if (alg === 'HS256') {
        if (!this.#secret) return null;
        ({ payload } = await jwtVerify(token, this.#secret, { ...options, algorithms: ['HS256'] }));
      } else {
        ({ payload } = await jwtVerify(token, this.#jwks, {
          ...options,
          algorithms: ['ES256', 'RS256', 'EdDSA'],
        }));
      }
    } catch {
      return null;
    }
    const email = typeof payload.email === 'string' ? payload.email : '';
    if (!payload.sub || !email) return null;
    const meta = payload.user_metadata as Record<string, unknown> | undefined;
    const name =
      typeof meta?.full_name === 'string'
        ? meta.full_name
        : typeof meta?.name === 'string'
          ? meta.name
          : undefined;
    const supabaseSession =
      typeof payload.session_id === 'string' ? payload.session_id : `sub:${payload.sub}`;
    return {
      subject: payload.sub,
      email,
      name,
      sessionId: sessionUuid(`${this.#issuer} ${supabaseSession}`),
    };
  }
}

/**
 * The same UUID on every instance for one Supabase session, so that revoking it (logout, reuse)
 * holds everywhere and a later request cannot open it again.
 */
function sessionUuid(key: string): string {
  const h = createHash('sha256').update(`vaporform.supabase-session:${key}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
