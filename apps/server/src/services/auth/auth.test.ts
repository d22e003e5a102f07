import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Secret, TOTP } from 'otpauth';
import pg from 'pg';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t?.close();
});

function peer(address: string) {
  return {
    incoming: { socket: { remoteAddress: address, remotePort: 50000, remoteFamily: 'IPv4' } },
  };
}

async function sessionRow(sessionIdOfToken: string) {
  const client = new pg.Client({ connectionString: t.databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query(
      'SELECT revoked_at, revoked_reason FROM sessions WHERE id = $1',
      [sessionIdOfToken],
    );
    return rows[0] as { revoked_at: Date | null; revoked_reason: string | null };
  } finally {
    await client.end();
  }
}

function sessionIdOf(token: string): string {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).sid;
}

describe('register', () => {
  it('creates an account and never returns the hash', async () => {
    const res = await call(t.app, 'POST', '/api/auth/register', {
      body: {
        email: 'Ada@Example.test',
        password: 'a long passphrase',
        name: 'Ada',
        username: 'ada',
      },
    });
    expect(res.status).toBe(201);
    expect(res.body.user).toMatchObject({
      email: 'ada@example.test',
      name: 'Ada',
      username: 'ada',
    });
    expect(JSON.stringify(res.body)).not.toMatch(/argon|hash|passphrase/i);
  });

  it('refuses a second account with the same email, whatever its case', async () => {
    const res = await call(t.app, 'POST', '/api/auth/register', {
      body: { email: 'ADA@example.test', password: 'another passphrase', name: 'Other' },
    });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('conflict');
  });

  it('names every invalid field', async () => {
    const res = await call(t.app, 'POST', '/api/auth/register', {
      body: { email: 'not-an-email', password: 'short', name: '' },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    const fields = res.body.error.details.map((d: { field: string }) => d.field).sort();
    expect(fields).toEqual(['email', 'name', 'password']);
  });

  it('answers 400, not 500, to a body that is not JSON', async () => {
    const res = await call(t.app, 'POST', '/api/auth/register', { body: '{"email": ' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(JSON.stringify(res.body)).not.toMatch(/at .*\.ts|stack/);
  });
});

describe('login', () => {
  it('gives the same answer for an unknown email and a wrong password', async () => {
    const { user } = await registerAndLogin(t.app);
    const wrong = await call(t.app, 'POST', '/api/auth/login', {
      body: { email: user.email, password: 'nope nope' },
    });
    const unknown = await call(t.app, 'POST', '/api/auth/login', {
      body: { email: 'nobody@example.test', password: 'nope nope' },
    });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(wrong.body).toEqual(unknown.body);
    expect(wrong.body.error.code).toBe('unauthenticated');
  });

  it('issues a 15-minute access token that opens /me', async () => {
    const { token, user } = await registerAndLogin(t.app);
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
    expect(claims.exp - claims.iat).toBe(900);
    expect(claims.sid).toMatch(/^[0-9a-f-]{36}$/);
    const me = await call(t.app, 'GET', '/api/auth/me', { token });
    expect(me.status).toBe(200);
    expect(me.body.user.id).toBe(user.id);
    expect(me.body.user.lastLoginAt).toBeTruthy();
  });

  it('refuses missing, malformed and forged tokens', async () => {
    const { token } = await registerAndLogin(t.app);
    expect((await call(t.app, 'GET', '/api/auth/me')).status).toBe(401);
    expect((await call(t.app, 'GET', '/api/auth/me', { token: 'garbage' })).status).toBe(401);
    const [h, p] = token.split('.');
    const forged = `${h}.${p}.${'A'.repeat(43)}`;
    const res = await call(t.app, 'GET', '/api/auth/me', { token: forged });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('unauthenticated');
  });
});

describe('refresh tokens', () => {
  it('rotates: the new pair works and the old refresh token is spent', async () => {
    const first = await registerAndLogin(t.app);
    const res = await call(t.app, 'POST', '/api/auth/refresh', {
      body: { refreshToken: first.refreshToken },
    });
    expect(res.status).toBe(200);
    expect(res.body.refreshToken).not.toBe(first.refreshToken);
    expect(res.body.expiresIn).toBe(900);
    expect((await call(t.app, 'GET', '/api/auth/me', { token: res.body.token })).status).toBe(200);
  });

  it('a reused refresh token is token_reused and revokes the whole session, committed', async () => {
    const first = await registerAndLogin(t.app);
    const second = await call(t.app, 'POST', '/api/auth/refresh', {
      body: { refreshToken: first.refreshToken },
    });
    expect(second.status).toBe(200);

    const replay = await call(t.app, 'POST', '/api/auth/refresh', {
      body: { refreshToken: first.refreshToken },
    });
    expect(replay.status).toBe(401);
    expect(replay.body.error.code).toBe('token_reused');

    // Every token of the family is dead: the child refresh token and both access tokens.
    const child = await call(t.app, 'POST', '/api/auth/refresh', {
      body: { refreshToken: second.body.refreshToken },
    });
    expect(child.status).toBe(401);
    expect((await call(t.app, 'GET', '/api/auth/me', { token: second.body.token })).status).toBe(
      401,
    );
    expect((await call(t.app, 'GET', '/api/auth/me', { token: first.token })).status).toBe(401);
    const row = await sessionRow(sessionIdOf(first.token));
    expect(row.revoked_at).not.toBeNull();
    expect(row.revoked_reason).toBe('refresh_token_reused');
  });

  it('20 concurrent refreshes of one token yield exactly one new chain', async () => {
    const first = await registerAndLogin(t.app);
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        call(t.app, 'POST', '/api/auth/refresh', { body: { refreshToken: first.refreshToken } }),
      ),
    );
    const ok = results.filter((r) => r.status === 200);
    expect(ok).toHaveLength(1);
    for (const r of results.filter((r) => r.status !== 200)) {
      expect([409, 401]).toContain(r.status);
    }
    // The one chain lives on.
    const next = await call(t.app, 'POST', '/api/auth/refresh', {
      body: { refreshToken: ok[0]!.body.refreshToken },
    });
    expect(next.status).toBe(200);
    expect((await call(t.app, 'GET', '/api/auth/me', { token: next.body.token })).status).toBe(200);
    const row = await sessionRow(sessionIdOf(first.token));
    expect(row.revoked_at).toBeNull();
  });

  it('an unknown refresh token is 401', async () => {
    const res = await call(t.app, 'POST', '/api/auth/refresh', {
      body: { refreshToken: 'vfr_nope' },
    });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('unauthenticated');
  });
});

describe('logout', () => {
  it('refuses the access token on the very next request and kills the refresh token', async () => {
    const s = await registerAndLogin(t.app);
    expect((await call(t.app, 'GET', '/api/auth/me', { token: s.token })).status).toBe(200); // now cached
    const out = await call(t.app, 'POST', '/api/auth/logout', {
      token: s.token,
      body: { refreshToken: s.refreshToken },
    });
    expect(out.status).toBe(204);
    expect((await call(t.app, 'GET', '/api/auth/me', { token: s.token })).status).toBe(401);
    const refresh = await call(t.app, 'POST', '/api/auth/refresh', {
      body: { refreshToken: s.refreshToken },
    });
    expect(refresh.status).toBe(401);
  });

  it("leaves the user's other sessions alone", async () => {
    const a = await registerAndLogin(t.app);
    const b = await call(t.app, 'POST', '/api/auth/login', {
      body: { email: a.user.email, password: a.password },
    });
    await call(t.app, 'POST', '/api/auth/logout', { token: a.token });
    expect((await call(t.app, 'GET', '/api/auth/me', { token: b.body.token })).status).toBe(200);
  });
});

describe('MFA (TOTP)', () => {
  it('set-up, enable with a valid code, then login needs the code', async () => {
    const s = await registerAndLogin(t.app);
    const setup = await call(t.app, 'POST', '/api/auth/mfa/setup', { token: s.token });
    expect(setup.status).toBe(200);
    expect(setup.body.otpauthUrl).toMatch(/^otpauth:\/\/totp\//);
    const totp = new TOTP({ secret: Secret.fromBase32(setup.body.secret), digits: 6, period: 30 });

    const bad = await call(t.app, 'POST', '/api/auth/mfa/enable', {
      token: s.token,
      body: { code: '000000' === totp.generate() ? '111111' : '000000' },
    });
    expect(bad.status).toBe(400);
    // Not yet enabled: login without a code still works.
    expect(
      (
        await call(t.app, 'POST', '/api/auth/login', {
          body: { email: s.user.email, password: s.password },
        })
      ).status,
    ).toBe(200);

    const ok = await call(t.app, 'POST', '/api/auth/mfa/enable', {
      token: s.token,
      body: { code: totp.generate() },
    });
    expect(ok.status).toBe(204);

    const without = await call(t.app, 'POST', '/api/auth/login', {
      body: { email: s.user.email, password: s.password },
    });
    expect(without.status).toBe(401);
    expect(without.body.error.code).toBe('mfa_required');
    const wrongCode = String((Number(totp.generate()) + 1) % 1_000_000).padStart(6, '0');
    const wrong = await call(t.app, 'POST', '/api/auth/login', {
      body: { email: s.user.email, password: s.password, totp: wrongCode },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('mfa_required');
    const withCode = await call(t.app, 'POST', '/api/auth/login', {
      body: { email: s.user.email, password: s.password, totp: totp.generate() },
    });
    expect(withCode.status).toBe(200);
    expect(withCode.body.user.mfaEnabled).toBe(true);
    // The TOTP secret is sealed at rest, bound to this user.
    const client = new pg.Client({ connectionString: t.databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query('SELECT mfa_secret FROM users WHERE id = $1', [
        s.user.id,
      ]);
      expect(rows[0].mfa_secret).toMatch(/^vf1:aes-256-gcm:/);
      expect(rows[0].mfa_secret).not.toContain(setup.body.secret);
    } finally {
      await client.end();
    }
    // The same code cannot sign in twice.
    const replay = await call(t.app, 'POST', '/api/auth/login', {
      body: { email: s.user.email, password: s.password, totp: totp.generate() },
    });
    expect(replay.status).toBe(401);
  });
});

describe('password change', () => {
  it('ends every other session, keeps this one, and swaps the password', async () => {
    const a = await registerAndLogin(t.app);
    const other = await call(t.app, 'POST', '/api/auth/login', {
      body: { email: a.user.email, password: a.password },
    });
    expect((await call(t.app, 'GET', '/api/auth/me', { token: other.body.token })).status).toBe(
      200,
    );

    const wrong = await call(t.app, 'POST', '/api/auth/password', {
      token: a.token,
      body: { currentPassword: 'not it at all', newPassword: 'a brand new passphrase' },
    });
    expect(wrong.status).toBe(401);

    const res = await call(t.app, 'POST', '/api/auth/password', {
      token: a.token,
      body: { currentPassword: a.password, newPassword: 'a brand new passphrase' },
    });
    expect(res.status).toBe(204);
    expect((await call(t.app, 'GET', '/api/auth/me', { token: other.body.token })).status).toBe(
      401,
    );
    expect(
      (
        await call(t.app, 'POST', '/api/auth/refresh', {
          body: { refreshToken: other.body.refreshToken },
        })
      ).status,
    ).toBe(401);
    expect((await call(t.app, 'GET', '/api/auth/me', { token: a.token })).status).toBe(200);
    expect(
      (
        await call(t.app, 'POST', '/api/auth/login', {
          body: { email: a.user.email, password: a.password },
        })
      ).status,
    ).toBe(401);
    expect(
      (
        await call(t.app, 'POST', '/api/auth/login', {
          body: { email: a.user.email, password: 'a brand new passphrase' },
        })
      ).status,
    ).toBe(200);
  });
});

describe('login rate limit', () => {
  let limited: TestApp;
  beforeAll(async () => {
    limited = await createTestApp({
      VAPORFORM_LOGIN_LIMIT_PER_ACCOUNT: '3',
      VAPORFORM_LOGIN_LIMIT_PER_IP: '6',
      VAPORFORM_TRUSTED_PROXIES: '10.0.0.1',
    });
  });
  afterAll(async () => {
    await limited?.close();
  });

  it('per account: the attempt past the limit is 429 with Retry-After', async () => {
    const s = await registerAndLogin(limited.app);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await call(limited.app, 'POST', '/api/auth/login', {
        body: { email: s.user.email, password: 'wrong wrong' },
        env: peer('192.0.2.1'),
      });
      statuses.push(r.status);
    }
    const blocked = await call(limited.app, 'POST', '/api/auth/login', {
      body: { email: s.user.email, password: s.password },
      env: peer('192.0.2.2'),
    });
    expect(statuses).toEqual([401, 401, 401]);
    expect(blocked.status).toBe(429);
    expect(blocked.body.error.code).toBe('rate_limited');
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('per IP, and X-Forwarded-For from an untrusted peer does not dodge it', async () => {
    for (let i = 0; i < 6; i++) {
      const r = await call(limited.app, 'POST', '/api/auth/login', {
        body: { email: `spray${i}@example.test`, password: 'whatever1' },
        headers: { 'x-forwarded-for': `198.51.100.${i}` },
        env: peer('192.0.2.50'),
      });
      expect(r.status).toBe(401);
    }
    const blocked = await call(limited.app, 'POST', '/api/auth/login', {
      body: { email: 'spray-last@example.test', password: 'whatever1' },
      headers: { 'x-forwarded-for': '198.51.100.99' },
      env: peer('192.0.2.50'),
    });
    expect(blocked.status).toBe(429);
  });

  it('believes X-Forwarded-For from a configured proxy', async () => {
    for (let i = 0; i < 6; i++) {
      await call(limited.app, 'POST', '/api/auth/login', {
        body: { email: `proxied${i}@example.test`, password: 'whatever1' },
        headers: { 'x-forwarded-for': '203.0.113.7' },
        env: peer('10.0.0.1'),
      });
    }
    const sameClient = await call(limited.app, 'POST', '/api/auth/login', {
      body: { email: 'proxied-x@example.test', password: 'whatever1' },
      headers: { 'x-forwarded-for': '203.0.113.7' },
      env: peer('10.0.0.1'),
    });
    const otherClient = await call(limited.app, 'POST', '/api/auth/login', {
      body: { email: 'proxied-y@example.test', password: 'whatever1' },
      headers: { 'x-forwarded-for': '203.0.113.8' },
      env: peer('10.0.0.1'),
    });
    expect(sameClient.status).toBe(429);
    expect(otherClient.status).toBe(401);
  });
});

describe('secrets stay out of logs', () => {
  it('no password, refresh token or access token appears in any log line', async () => {
    const password = 'canary-password-7f3a9c';
    const s = await registerAndLogin(t.app, { password });
    await call(t.app, 'POST', '/api/auth/refresh', { body: { refreshToken: s.refreshToken } });
    await call(t.app, 'POST', '/api/auth/login', {
      body: { email: s.user.email, password: 'canary-wrong-1b2c' },
    });
    const all = t.logs.join('\n');
    expect(all).toContain('/api/auth/login'); // the logs are really captured
    expect(all).not.toContain(password);
    expect(all).not.toContain('canary-wrong-1b2c');
    expect(all).not.toContain(s.refreshToken);
    expect(all).not.toContain(s.token);
    expect(t.logs.every((l) => JSON.parse(l).requestId || !JSON.parse(l).path)).toBe(true);
  });
});
