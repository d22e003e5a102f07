import { sql, type Kysely, type Selectable, type Generated, type ColumnType } from 'kysely';
import type { Db } from '../../db/index.ts';
import type { SealedColumn } from '../../common/sealed-column.ts';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

interface UsersTable {
  id: Generated<string>;
  email: string;
  username: string;
  full_name: string;
  avatar_url: string | null;
  password_hash: string;
  is_active: Generated<boolean>;
  preferences: Generated<unknown>;
  mfa_secret: string | null;
  mfa_enabled: Generated<boolean>;
  mfa_enabled_at: Date | null;
  mfa_last_used_step: number | null;
  password_changed_at: Generated<Date>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  last_login_at: Date | null;
}

interface SessionsTable {
  id: Generated<string>;
  user_id: string;
  user_agent: string | null;
  ip: string | null;
  created_at: Generated<Date>;
  last_used_at: Generated<Date>;
  expires_at: Timestamp;
  revoked_at: Date | null;
  revoked_reason: string | null;
}

interface RefreshTokensTable {
  id: Generated<string>;
  session_id: string;
  token_hash: Buffer;
  parent_id: string | null;
  created_at: Generated<Date>;
  used_at: Date | null;
}

type AuthTables = {
  users: UsersTable;
  sessions: SessionsTable;
  refresh_tokens: RefreshTokensTable;
};

export type UserRow = Selectable<UsersTable>;
export type SessionRow = Selectable<SessionsTable>;

/** What a refresh attempt found, decided inside one transaction. */
export type RotationOutcome =
  | { kind: 'rotated'; userId: string; sessionId: string }
  | { kind: 'unknown' }
  | { kind: 'session_ended' }
  | { kind: 'used'; sessionId: string; usedAt: Date };

/** SQL for users, sessions and refresh tokens. */
export class AuthStore {
  readonly #db: Kysely<AuthTables>;

  constructor(db: Db) {
    this.#db = db.withTables<AuthTables>();
  }

  async createUser(u: {
    email: string;
    username: string;
    fullName: string;
    passwordHash: string;
  }): Promise<UserRow> {
    return this.#db
      .insertInto('users')
      .values({
        email: u.email,
        username: u.username,
        full_name: u.fullName,
        password_hash: u.passwordHash,
        avatar_url: null,
        mfa_secret: null,
        mfa_enabled_at: null,
        mfa_last_used_step: null,
        last_login_at: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  findUserByEmail(email: string): Promise<UserRow | undefined> {
    return this.#db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
  }

  async countUsers(): Promise<number> {
    const row = await this.#db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  findUserById(id: string): Promise<UserRow | undefined> {
    return this.#db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  }

  findUsersByIds(ids: string[]): Promise<UserRow[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return this.#db.selectFrom('users').selectAll().where('id', 'in', ids).execute();
  }

  async usernameTaken(username: string): Promise<boolean> {
    const row = await this.#db
      .selectFrom('users')
      .select('id')
      .where(sql<string>`lower(username)`, '=', username.toLowerCase())
      .executeTakeFirst();
    return row !== undefined;
  }

  async recordLogin(userId: string, totpStep: number | null): Promise<void> {
    await this.#db
      .updateTable('users')
      .set({
        last_login_at: new Date(),
        ...(totpStep !== null ? { mfa_last_used_step: totpStep } : {}),
      })
      .where('id', '=', userId)
      .execute();
  }

  async setMfaSecret(userId: string, secret: string): Promise<void> {
    await this.#db
      .updateTable('users')
      .set({ mfa_secret: secret, mfa_enabled: false, mfa_enabled_at: null })
      .where('id', '=', userId)
      .execute();
  }

  async enableMfa(userId: string): Promise<void> {
    await this.#db
      .updateTable('users')
      .set({ mfa_enabled: true, mfa_enabled_at: new Date(), mfa_last_used_step: null })
      .where('id', '=', userId)
      .execute();
  }

  /** Sets a new password hash and revokes every other session of the user, atomically. */
  async changePassword(
    userId: string,
    passwordHash: string,
    keepSessionId: string,
  ): Promise<string[]> {
    return this.#db.transaction().execute(async (tx) => {
      await tx
        .updateTable('users')
        .set({ password_hash: passwordHash, password_changed_at: new Date() })
        .where('id', '=', userId)
        .execute();
      const revoked = await tx
        .updateTable('sessions')
        .set({ revoked_at: new Date(), revoked_reason: 'password_changed' })
        .where('user_id', '=', userId)
        .where('id', '!=', keepSessionId)
        .where('revoked_at', 'is', null)
        .returning('id')
        .execute();
      return revoked.map((r) => r.id);
    });
  }

  /**
   * `users.mfa_secret` as a sealed column, so master-key rotation re-seals it. Each value is
   * sealed with the context {@link mfaSecretContext}.
   */
  mfaSecretColumn(): SealedColumn {
    return {
      name: 'users.mfa_secret',
      stale: async (keyId, after, limit) => {
        const { rows } = await sql<{ id: string; mfa_secret: string }>`
          SELECT id::text AS id, mfa_secret FROM users
          WHERE mfa_secret IS NOT NULL AND split_part(mfa_secret, ':', 3) <> ${keyId}
            AND id::text > ${after ?? ''}
          ORDER BY id::text LIMIT ${limit}`.execute(this.#db);
        return rows.map((r) => ({
          cursor: r.id,
          sealed: r.mfa_secret,
          context: mfaSecretContext(r.id),
        }));
      },
      replace: async (cursor, expected, next) => {
        const result = await this.#db
          .updateTable('users')
          .set({ mfa_secret: next })
          .where('id', '=', cursor)
          .where('mfa_secret', '=', expected)
          .executeTakeFirst();
        return result.numUpdatedRows > 0n;
      },
      countByKey: async () => {
        const { rows } = await sql<{ key_id: string; n: number }>`
          SELECT split_part(mfa_secret, ':', 3) AS key_id, count(*)::int AS n
          FROM users WHERE mfa_secret IS NOT NULL GROUP BY 1`.execute(this.#db);
        return Object.fromEntries(rows.map((r) => [r.key_id, Number(r.n)]));
      },
    };
  }

  /** Opens a session with its first refresh token. */
  /**
   * Opens a session with a given id (an outside identity provider's session, e.g. Supabase's),
   * unless one with that id exists already: a revoked one stays revoked.
   */
  async openExternalSession(s: { id: string; userId: string; expiresAt: Date }): Promise<void> {
    await this.#db
      .insertInto('sessions')
      .values({
        id: s.id,
        user_id: s.userId,
        user_agent: null,
        ip: null,
        expires_at: s.expiresAt,
        revoked_at: null,
        revoked_reason: null,
      })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
  }

  async createSession(s: {
    userId: string;
    userAgent: string | null;
    ip: string | null;
    expiresAt: Date;
    tokenHash: Buffer;
  }): Promise<string> {
    return this.#db.transaction().execute(async (tx) => {
      const { id } = await tx
        .insertInto('sessions')
        .values({
          user_id: s.userId,
          user_agent: s.userAgent,
          ip: s.ip,
          expires_at: s.expiresAt,
          revoked_at: null,
          revoked_reason: null,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      await tx
        .insertInto('refresh_tokens')
        .values({ session_id: id, token_hash: s.tokenHash, parent_id: null, used_at: null })
        .execute();
      return id;
    });
  }

  /** The session if it exists, is not revoked, has not expired and its user is active. */
  async findActiveSession(
    sessionId: string,
  ): Promise<{ userId: string; expiresAt: Date } | undefined> {
    const row = await this.#db
      .selectFrom('sessions')
      .innerJoin('users', 'users.id', 'sessions.user_id')
      .select(['sessions.user_id as userId', 'sessions.expires_at as expiresAt'])
      .where('sessions.id', '=', sessionId)
      .where('sessions.revoked_at', 'is', null)
      .where('sessions.expires_at', '>', sql<Date>`now()`)
      .where('users.is_active', '=', true)
      .executeTakeFirst();
    return row;
  }

  /**
   * Rotates a refresh token in one transaction. The row lock makes concurrent presentations of
   * one token take turns: the first rotates, the others find it `used` and the service decides
   * whether that was a concurrent request or a replay. Marking the token used is the last
   * statement before COMMIT so `usedAt` is as close to the commit as possible.
   */
  async rotateRefreshToken(presentedHash: Buffer, newHash: Buffer): Promise<RotationOutcome> {
    return this.#db.transaction().execute(async (tx) => {
      const token = await tx
        .selectFrom('refresh_tokens')
        .innerJoin('sessions', 'sessions.id', 'refresh_tokens.session_id')
        .select([
          'refresh_tokens.id',
          'refresh_tokens.used_at',
          'refresh_tokens.session_id',
          'sessions.user_id',
          'sessions.revoked_at',
          'sessions.expires_at',
        ])
        .where('refresh_tokens.token_hash', '=', presentedHash)
        .forUpdate('refresh_tokens')
        .executeTakeFirst();
      if (!token) return { kind: 'unknown' } as const;
      if (token.revoked_at !== null || token.expires_at.getTime() <= Date.now()) {
        return { kind: 'session_ended' } as const;
      }
      if (token.used_at !== null) {
        return { kind: 'used', sessionId: token.session_id, usedAt: token.used_at } as const;
      }
      await tx
        .insertInto('refresh_tokens')
        .values({
          session_id: token.session_id,
          token_hash: newHash,
          parent_id: token.id,
          used_at: null,
        })
        .execute();
      await tx
        .updateTable('sessions')
        .set({ last_used_at: new Date() })
        .where('id', '=', token.session_id)
        .execute();
      await tx
        .updateTable('refresh_tokens')
        .set({ used_at: new Date() })
        .where('id', '=', token.id)
        .execute();
      return { kind: 'rotated', userId: token.user_id, sessionId: token.session_id } as const;
    });
  }

  /** The session a refresh token belongs to, if it belongs to `userId`. */
  async sessionOfRefreshToken(tokenHash: Buffer, userId: string): Promise<string | undefined> {
    const row = await this.#db
      .selectFrom('refresh_tokens')
      .innerJoin('sessions', 'sessions.id', 'refresh_tokens.session_id')
      .select('sessions.id')
      .where('refresh_tokens.token_hash', '=', tokenHash)
      .where('sessions.user_id', '=', userId)
      .executeTakeFirst();
    return row?.id;
  }

  async revokeSession(sessionId: string, reason: string): Promise<void> {
    await this.#db
      .updateTable('sessions')
      .set({ revoked_at: new Date(), revoked_reason: reason })
      .where('id', '=', sessionId)
      .where('revoked_at', 'is', null)
      .execute();
  }
}

/** What binds a sealed TOTP secret to its user: a value copied to another user does not open. */
export function mfaSecretContext(userId: string): string {
  return `users.mfa_secret:${userId}`;
}
