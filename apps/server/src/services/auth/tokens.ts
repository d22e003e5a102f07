import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';

export const ACCESS_TOKEN_TTL_SECONDS = 15 * 60;
const ISSUER = 'vaporform';
const AUDIENCE = 'vaporform-api';

export interface AccessClaims {
  userId: string;
  sessionId: string;
}

/** How many verified tokens to remember (each entry is a few hundred bytes). */
const VERIFIED_CACHE_SIZE = 10_000;

/**
 * Signs and verifies the short-lived access tokens (HS256 JWT carrying the session id).
 * A token's signature is checked once; later presentations of the same string hit a bounded
 * cache until the token expires (whether its session is still alive is checked separately).
 */
export class AccessTokens {
  readonly #key: Uint8Array;
  readonly #verified = new Map<string, { claims: AccessClaims; expiresAtMs: number }>();

  constructor(secret: string) {
    this.#key = new TextEncoder().encode(secret);
  }

  /** A 15-minute JWT for `userId` in session `sessionId`. */
  sign(claims: AccessClaims, now = Date.now()): Promise<string> {
    const iat = Math.floor(now / 1000);
    return new SignJWT({ sid: claims.sessionId })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(claims.userId)
      .setJti(randomUUID())
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ACCESS_TOKEN_TTL_SECONDS)
      .sign(this.#key);
  }

  /** The claims of a valid token, or null for an invalid, expired or foreign one. */
  async verify(token: string): Promise<AccessClaims | null> {
    const hit = this.#verified.get(token);
    if (hit) {
      if (hit.expiresAtMs > Date.now()) return hit.claims;
      this.#verified.delete(token);
    }
    try {
      const { payload } = await jwtVerify(token, this.#key, {
        issuer: ISSUER,
        audience: AUDIENCE,
        algorithms: ['HS256'],
      });
      if (typeof payload.sub !== 'string' || typeof payload.sid !== 'string') return null;
      const claims = { userId: payload.sub, sessionId: payload.sid };
      if (this.#verified.size >= VERIFIED_CACHE_SIZE) {
        // Maps iterate in insertion order: drop the oldest entry.
        this.#verified.delete(this.#verified.keys().next().value!);
      }
      this.#verified.set(token, { claims, expiresAtMs: (payload.exp ?? 0) * 1000 });
      return claims;
    } catch (err) {
      if (err instanceof joseErrors.JOSEError || err instanceof TypeError) return null;
      throw err;
    }
  }
}

/** A new opaque refresh token: 256 random bits, prefixed so leaked ones are recognisable. */
export function newRefreshToken(): string {
  return 'vfr_' + randomBytes(32).toString('base64url');
}

/** Refresh tokens are stored only as SHA-256 (they are random, so no slow hash is needed). */
export function hashRefreshToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
