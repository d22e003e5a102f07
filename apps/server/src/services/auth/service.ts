import { Secret, TOTP } from 'otpauth';
import { randomBytes } from 'node:crypto';
import { AppError, errors, isUniqueViolation } from '../../common/errors.ts';
import type { Metrics } from '../monitoring/index.ts';
import type { SupabaseTokens } from './supabase.ts';
import type { Logger } from '../../common/logger.ts';
import type { EventBus } from '../../common/bus.ts';
import { dummyHashPromise, hashPassword, verifyPassword } from './passwords.ts';
import type { LoginRateLimiter } from './rate-limit.ts';
import { mfaSecretContext, type AuthStore, type UserRow } from './store.ts';
import {
  ACCESS_TOKEN_TTL_SECONDS,
  AccessTokens,
  hashRefreshToken,
  newRefreshToken,
  type AccessClaims,
} from './tokens.ts';

/** The public face of a user (API.md › Auth): never a hash or an MFA secret. */
export interface PublicUser {
  id: string;
  email: string;
  name: string;
  username: string;
  avatarUrl?: string;
  createdAt: string;
  lastLoginAt?: string;
  mfaEnabled: boolean;
}

export interface TokenPair {
  token: string;
  refreshToken: string;
  expiresIn: number;
}

/** A session lives this long without sign-in; each refresh keeps it within this bound. */
const SESSION_TTL_MS = 30 * 24 * 3600 * 1000;
/** How long a "this session is active" answer is reused before asking the database again. */
const SESSION_CACHE_MS = 5_000;
const REVOCATION_CHANNEL = 'auth:session-revoked';

/** Seals values at rest (the secrets service); TOTP secrets go through it. */
export interface Sealer {
  seal(plaintext: string, context: string): Promise<string>;
  open(sealed: string, context: string): string;
}

/** Runs after an account is created, with its public profile. */
export type RegisteredHook = (user: PublicUser) => Promise<void> | void;

export interface AuthServiceDeps {
  store: AuthStore;
  sealer: Sealer;
  jwtSecret: string;
  limiter: LoginRateLimiter;
  bus: EventBus;
  log: Logger;
  /** Supabase Auth as an identity provider: its access tokens are accepted beside ours. */
  supabase?: SupabaseTokens;
  /** Sign-in attempts by outcome. */
  metrics?: Metrics;
}

/** Registration, sign-in, token rotation, sessions and MFA. */
export class AuthService {
  readonly #store: AuthStore;
  readonly #sealer: Sealer;
  readonly #tokens: AccessTokens;
  readonly #limiter: LoginRateLimiter;
  readonly #bus: EventBus;
  readonly #log: Logger;
  /** sessionId → cache expiry (ms) for sessions known to be active. */
  readonly #activeSessions = new Map<string, { userId: string; until: number }>();
  /** Refresh-token hash (hex) → when this instance committed its rotation. */
  readonly #recentRotations = new Map<string, number>();
  #unsubscribe: (() => Promise<void>) | undefined;
  readonly #revocationListeners = new Set<(sessionIds: string[]) => void>();
  readonly #registeredHooks: RegisteredHook[] = [];

  readonly #supabase: SupabaseTokens | undefined;
  readonly #metrics: Metrics | undefined;
  /** Supabase `sub` → Vaporform user id, for tokens seen before. */
  readonly #supabaseUsers = new Map<string, string>();

  constructor(deps: AuthServiceDeps) {
    this.#supabase = deps.supabase;
    this.#metrics = deps.metrics;
    this.#store = deps.store;
    this.#sealer = deps.sealer;
    this.#tokens = new AccessTokens(deps.jwtSecret);
    this.#limiter = deps.limiter;
    this.#bus = deps.bus;
    this.#log = deps.log;
  }

  /** Listens for revocations made by other instances. */
  async start(): Promise<void> {
    this.#unsubscribe = await this.#bus.subscribe(REVOCATION_CHANNEL, (message) => {
      const ids = (message as { sessionIds?: unknown }).sessionIds;
      if (!Array.isArray(ids)) return;
      const sessionIds = ids.map(String);
      for (const id of sessionIds) this.#activeSessions.delete(id);
      for (const listener of this.#revocationListeners) listener(sessionIds);
    });
  }

  /**
   * Calls `listener` with the ids of sessions revoked anywhere (this or another instance), so
   * long-lived connections (WebSockets, terminals) can close.
   * @returns a function that removes the listener.
   */
  onSessionsRevoked(listener: (sessionIds: string[]) => void): () => void {
    this.#revocationListeners.add(listener);
    return () => this.#revocationListeners.delete(listener);
  }

  async stop(): Promise<void> {
    await this.#unsubscribe?.();
  }

  /**
   * Registers a hook run right after an account is created (e.g. pending project invitations
   * becoming memberships). A failing hook is logged; the registration stands.
   */
  onRegistered(hook: RegisteredHook): void {
    this.#registeredHooks.push(hook);
  }

  /**
   * Creates an account.
   * @throws conflict when the email or username is taken.
   */
  async register(input: {
    email: string;
    password: string;
    name: string;
    username?: string;
  }): Promise<PublicUser> {
    const email = normaliseEmail(input.email);
    const username = input.username
      ? input.username.toLowerCase()
      : await this.#freeUsername(email.split('@')[0]!);
    const passwordHash = await hashPassword(input.password);
    let registered: PublicUser;
    try {
      const user = await this.#store.createUser({
        email,
        username,
        fullName: input.name,
        passwordHash,
      });
      this.#log.info({ userId: user.id }, 'user registered');
      registered = toPublicUser(user);
    } catch (err) {
      if (isUniqueViolation(err, 'users_email_key')) {
        throw errors.conflict('An account with this email already exists', { field: 'email' });
      }
      if (isUniqueViolation(err, 'users_username_key')) {
        throw errors.conflict('This username is taken', { field: 'username' });
      }
      throw err;
    }
    for (const hook of this.#registeredHooks) {
      try {
        await hook(registered);
      } catch (err) {
        this.#log.warn({ err, userId: registered.id }, 'a registration hook failed');
      }
    }
    return registered;
  }

  /**
   * Verifies credentials (and the TOTP code when MFA is on) and opens a session.
   * @throws rate_limited, unauthenticated (same message for unknown email and wrong password),
   *   mfa_required.
   */
  async login(input: {
    email: string;
    password: string;
    totp?: string;
    ip: string;
    userAgent: string | null;
  }): Promise<TokenPair & { user: PublicUser }> {
    try {
      const result = await this.#login(input);
      this.#metrics?.loginAttempts.labels('success').inc();
      return result;
    } catch (err) {
      this.#metrics?.loginAttempts.labels(err instanceof AppError ? err.code : 'error').inc();
      throw err;
    }
  }

  async #login(input: {
    email: string;
    password: string;
    totp?: string;
    ip: string;
    userAgent: string | null;
  }): Promise<TokenPair & { user: PublicUser }> {
    const email = normaliseEmail(input.email);
    await this.#limiter.consume(input.ip, email);
    const user = await this.#store.findUserByEmail(email);
    const ok = user
      ? await verifyPassword(user.password_hash, input.password)
      : (await verifyPassword(await dummyHashPromise, input.password), false);
    if (!user || !ok || !user.is_active) {
      throw errors.unauthenticated('Email or password is incorrect');
    }
    let totpStep: number | null = null;
    if (user.mfa_enabled) {
      if (!input.totp) throw errors.mfaRequired();
      totpStep = verifyTotp(this.#mfaSecret(user), input.totp, user.mfa_last_used_step);
      if (totpStep === null) throw errors.mfaRequired();
    }
    await this.#limiter.reset(email);
    const refreshToken = newRefreshToken();
    const sessionId = await this.#store.createSession({
      userId: user.id,
      userAgent: input.userAgent?.slice(0, 500) ?? null,
      ip: input.ip,
      expiresAt: new Date(Date.now() + SESSION_TTL_MS),
      tokenHash: hashRefreshToken(refreshToken),
    });
    await this.#store.recordLogin(user.id, totpStep);
    const token = await this.#tokens.sign({ userId: user.id, sessionId });
    this.#log.info({ userId: user.id, sessionId }, 'signed in');
    return {
      token,
      refreshToken,
      expiresIn: ACCESS_TOKEN_TTL_SECONDS,
      user: toPublicUser({ ...user, last_login_at: new Date() }),
    };
  }

  /**
   * Trades a refresh token for a new pair. A token presented again after its rotation revokes
   * the whole session (`token_reused`), and that revocation stands although the request fails.
   * Requests that raced the rotation (arrived before it committed) are refused with 409 and
   * leave the session alone, so 20 simultaneous refreshes yield exactly one new chain.
   */
  async refresh(refreshToken: string, receivedAt: number): Promise<TokenPair> {
    const presented = hashRefreshToken(refreshToken);
    const next = newRefreshToken();
    const outcome = await this.#store.rotateRefreshToken(presented, hashRefreshToken(next));
    switch (outcome.kind) {
      case 'unknown':
      case 'session_ended':
        throw errors.unauthenticated('The refresh token is not valid; sign in again');
      case 'used': {
        const key = presented.toString('hex');
        const rotatedAt = Math.max(outcome.usedAt.getTime(), this.#recentRotations.get(key) ?? 0);
        if (receivedAt <= rotatedAt) {
          throw errors.conflict('This refresh token was just rotated by a concurrent request');
        }
        await this.#store.revokeSession(outcome.sessionId, 'refresh_token_reused');
        await this.#forgetSessions([outcome.sessionId]);
        this.#log.warn({ sessionId: outcome.sessionId }, 'refresh token reused: session revoked');
        throw errors.tokenReused();
      }
      case 'rotated': {
        this.#rememberRotation(presented.toString('hex'));
        const token = await this.#tokens.sign({
          userId: outcome.userId,
          sessionId: outcome.sessionId,
        });
        return { token, refreshToken: next, expiresIn: ACCESS_TOKEN_TTL_SECONDS };
      }
    }
  }

  /** Ends the caller's session (and the session of `refreshToken`, if it is the caller's). */
  async logout(auth: AccessClaims, refreshToken?: string): Promise<void> {
    const ids = [auth.sessionId];
    if (refreshToken) {
      const other = await this.#store.sessionOfRefreshToken(
        hashRefreshToken(refreshToken),
        auth.userId,
      );
      if (other && other !== auth.sessionId) ids.push(other);
    }
    for (const id of ids) await this.#store.revokeSession(id, 'logout');
    await this.#forgetSessions(ids);
  }

  /**
   * Resolves a bearer token to its caller, checking that the session is still active (cached
   * for a few seconds; revocations clear the cache at once, across instances through the bus).
   * @throws unauthenticated
   */
  async authenticate(bearer: string | undefined): Promise<AccessClaims> {
    if (!bearer) throw errors.unauthenticated();
    const claims = (await this.#tokens.verify(bearer)) ?? (await this.#supabaseClaims(bearer));
    if (!claims) throw errors.unauthenticated('The access token is invalid or expired');
    const cached = this.#activeSessions.get(claims.sessionId);
    const now = Date.now();
    if (cached && cached.until > now && cached.userId === claims.userId) return claims;
    const session = await this.#store.findActiveSession(claims.sessionId);
    if (!session || session.userId !== claims.userId) {
      this.#activeSessions.delete(claims.sessionId);
      throw errors.unauthenticated('The session has ended; sign in again');
    }
    this.#activeSessions.set(claims.sessionId, {
      userId: claims.userId,
      until: now + SESSION_CACHE_MS,
    });
    return claims;
  }

  /**
   * A Supabase access token's bearer as a Vaporform user (found by email, or registered on first
   * use) in a session whose id is derived from Supabase's session, opened on first use.
   */
  async #supabaseClaims(bearer: string): Promise<AccessClaims | null> {
    const identity = await this.#supabase?.verify(bearer);
    if (!identity) return null;
    let userId = this.#supabaseUsers.get(identity.subject);
    if (!userId) {
      const email = normaliseEmail(identity.email);
      let user = await this.#store.findUserByEmail(email);
      if (!user) {
        try {
          // No password of ours: the account signs in through Supabase (or resets one later).
          await this.register({
            email,
            password: randomBytes(32).toString('base64url'),
            name: identity.name ?? email.split('@')[0]!,
          });
        } catch (err) {
          if (!(err instanceof AppError && err.code === 'conflict')) throw err;
        }
        user = await this.#store.findUserByEmail(email);
      }
      if (!user || !user.is_active) return null;
      userId = user.id;
      this.#supabaseUsers.set(identity.subject, userId);
    }
    if (!this.#activeSessions.has(identity.sessionId)) {
      await this.#store.openExternalSession({
        id: identity.sessionId,
        userId,
        expiresAt: new Date(Date.now() + SESSION_TTL_MS),
      });
    }
    return { userId, sessionId: identity.sessionId };
  }

  /**
   * Whether a session is still alive for `userId` (not revoked, not expired), with the same cache
   * as {@link authenticate}: for credentials derived from a session (preview cookies).
   */
  async isSessionActive(sessionId: string, userId: string): Promise<boolean> {
    const cached = this.#activeSessions.get(sessionId);
    const now = Date.now();
    if (cached && cached.until > now) return cached.userId === userId;
    const session = await this.#store.findActiveSession(sessionId);
    if (!session) return false;
    this.#activeSessions.set(sessionId, { userId: session.userId, until: now + SESSION_CACHE_MS });
    return session.userId === userId;
  }

  /** @throws not_found when the user no longer exists. */
  async me(userId: string): Promise<PublicUser> {
    const user = await this.#store.findUserById(userId);
    if (!user) throw errors.notFound('user');
    return toPublicUser(user);
  }

  /** How many accounts exist (an unisolated process runtime runs projects for one only). */
  async countAccounts(): Promise<number> {
    return this.#store.countUsers();
  }

  /** Public profiles by id (for member lists). */
  async usersByIds(ids: string[]): Promise<PublicUser[]> {
    return (await this.#store.findUsersByIds(ids)).map(toPublicUser);
  }

  /** Looks a user up by email, for adding members. */
  async userByEmail(email: string): Promise<PublicUser | undefined> {
    const user = await this.#store.findUserByEmail(normaliseEmail(email));
    return user ? toPublicUser(user) : undefined;
  }

  /**
   * Starts MFA set-up: a new secret, not yet required at login until enabled.
   * @throws conflict when MFA is already enabled.
   */
  async mfaSetup(userId: string): Promise<{ secret: string; otpauthUrl: string }> {
    const user = await this.#store.findUserById(userId);
    if (!user) throw errors.notFound('user');
    if (user.mfa_enabled) throw errors.conflict('Two-factor authentication is already enabled');
    const secret = new Secret({ size: 20 }).base32;
    await this.#store.setMfaSecret(
      userId,
      await this.#sealer.seal(secret, mfaSecretContext(userId)),
    );
    return { secret, otpauthUrl: totpFor(secret, user.email).toString() };
  }

  /**
   * Turns MFA on after proving the authenticator works.
   * @throws invalid_request for a wrong code or when set-up was not started.
   */
  async mfaEnable(userId: string, code: string): Promise<void> {
    const user = await this.#store.findUserById(userId);
    if (!user) throw errors.notFound('user');
    if (user.mfa_enabled) throw errors.conflict('Two-factor authentication is already enabled');
    if (!user.mfa_secret) throw errors.invalid('Call /api/auth/mfa/setup first');
    // The enabling code is not recorded as used: it proves the authenticator, it signs nobody in.
    if (verifyTotp(this.#mfaSecret(user), code, null) === null) {
      throw errors.invalid('The code is not valid', [{ field: 'code', message: 'invalid code' }]);
    }
    await this.#store.enableMfa(userId);
  }

  /**
   * Changes the password; every other session of the user ends.
   * @throws unauthenticated when the current password is wrong.
   */
  async changePassword(
    auth: AccessClaims,
    currentPassword: string,
    newPassword: string,
  ): Promise<void> {
    const user = await this.#store.findUserById(auth.userId);
    if (!user || !(await verifyPassword(user.password_hash, currentPassword))) {
      throw errors.unauthenticated('The current password is incorrect');
    }
    const revoked = await this.#store.changePassword(
      auth.userId,
      await hashPassword(newPassword),
      auth.sessionId,
    );
    await this.#forgetSessions(revoked);
  }

  /** The user's TOTP secret, opened (it is sealed at rest). */
  #mfaSecret(user: UserRow): string {
    return this.#sealer.open(user.mfa_secret!, mfaSecretContext(user.id));
  }

  async #forgetSessions(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    for (const id of ids) this.#activeSessions.delete(id);
    await this.#bus.publish(REVOCATION_CHANNEL, { sessionIds: ids });
  }

  #rememberRotation(hashHex: string): void {
    // The same sub-millisecond clock as the request's receivedAt.
    const now = performance.timeOrigin + performance.now();
    this.#recentRotations.set(hashHex, now);
    if (this.#recentRotations.size > 10_000) {
      for (const [k, t] of this.#recentRotations)
        if (now - t > 60_000) this.#recentRotations.delete(k);
    }
  }

  async #freeUsername(base: string): Promise<string> {
    const stem = (
      base
        .toLowerCase()
        .replace(/[^a-z0-9_.-]/g, '')
        .replace(/^[^a-z0-9]+/, '') || 'user'
    )
      .slice(0, 40)
      .padEnd(2, '0');
    if (!(await this.#store.usernameTaken(stem))) return stem;
    for (let i = 0; i < 20; i++) {
      const candidate = `${stem}${Math.floor(1000 + Math.random() * 9000)}`;
      if (!(await this.#store.usernameTaken(candidate))) return candidate;
    }
    return `${stem}${crypto.randomUUID().slice(0, 8)}`;
  }
}

/** An email as accounts store it (trimmed, lower case): compare emails in this form. */
export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

function totpFor(secret: string, label: string): TOTP {
  return new TOTP({
    issuer: 'Vaporform',
    label,
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
    secret: Secret.fromBase32(secret),
  });
}

/**
 * The time step of a valid code (±1 step of clock drift), or null. A step at or before
 * `lastUsedStep` is refused so a code cannot be replayed.
 */
function verifyTotp(secret: string, code: string, lastUsedStep: number | null): number | null {
  const totp = totpFor(secret, 'x');
  const delta = totp.validate({ token: code, window: 1 });
  if (delta === null) return null;
  const step = Math.floor(Date.now() / 1000 / 30) + delta;
  if (lastUsedStep !== null && step <= lastUsedStep) return null;
  return step;
}

function toPublicUser(u: UserRow): PublicUser {
  return {
    id: u.id,
    email: u.email,
    name: u.full_name,
    username: u.username,
    ...(u.avatar_url ? { avatarUrl: u.avatar_url } : {}),
    createdAt: u.created_at.toISOString(),
    ...(u.last_login_at ? { lastLoginAt: u.last_login_at.toISOString() } : {}),
    mfaEnabled: u.mfa_enabled,
  };
}
