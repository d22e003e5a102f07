import { createHash, randomBytes } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';

export const ACCESS_TOKEN_TTL_SECONDS = 15 * 60;
const ISSUER = 'vaporform';
const AUDIENCE = 'vaporform-api';

export interface AccessClaims {
  userId: string;
  sessionId: string;
}

/** Signs and verifies the short-lived access tokens (HS256 JWT carrying the session id). */
export class AccessTokens {
  readonly #key: Uint8Array;

  constructor(secret: string) {
    this.#key = new TextEncoder().encode(secret);
  }

  /** A 15-minute JWT for `userId` in session `sessionId`. */
  sign(claims: AccessClaims, now = Date.now()): Promise<string> {
    const iat = Math.floor(now / 1000);
    return new SignJWT({ sid: claims.sessionId })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(claims.userId)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ACCESS_TOKEN_TTL_SECONDS)
      .sign(this.#key);
  }

  /** The claims of a valid token, or null for an invalid, expired or foreign one. */
  async verify(token: string): Promise<AccessClaims | null> {
    try {
      const { payload } = await jwtVerify(token, this.#key, {
        issuer: ISSUER,
        audience: AUDIENCE,
        algorithms: ['HS256'],
      });
      if (typeof payload.sub !== 'string' || typeof payload.sid !== 'string') return null;
      return { userId: payload.sub, sessionId: payload.sid };
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
