import { createServer, type Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, listen, registerAndLogin, type TestApp } from '../../../test/app.ts';

// Supabase Auth as an identity provider: a local stand-in for the project's JWKS endpoint
// (`/auth/v1/.well-known/jwks.json`, what GoTrue serves) and tokens shaped like GoTrue's.

type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

const jwtSecret = 'super-secret-jwt-token-with-at-least-32-characters-long';
let jwksServer: Server;
let supabaseUrl: string;
let t: TestApp;
let signingKey: SigningKey;
let otherKey: SigningKey;
let jwksRequests = 0;

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  signingKey = pair.privateKey;
  otherKey = (await generateKeyPair('ES256')).privateKey;
  const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'key-1', alg: 'ES256', use: 'sig' };
  jwksServer = createServer((req, res) => {
    if (req.url === '/auth/v1/.well-known/jwks.json') {
      jwksRequests++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  supabaseUrl = `http://127.0.0.1:${(jwksServer.address() as { port: number }).port}`;
  t = await createTestApp({ SUPABASE_URL: supabaseUrl, SUPABASE_JWT_SECRET: jwtSecret });
});

afterAll(async () => {
  await t?.close();
  await new Promise((r) => jwksServer?.close(r));
});

interface TokenOptions {
  email?: string;
  sub?: string;
  sessionId?: string;
  aud?: string;
  iss?: string;
  expiresIn?: string | number;
  alg?: 'HS256' | 'ES256';
  key?: SigningKey | Uint8Array;
}

/** A token as Supabase Auth issues it (claims of GoTrue's access tokens). */
function supabaseToken(o: TokenOptions = {}): Promise<string> {
  const alg = o.alg ?? 'HS256';
  const key = o.key ?? (alg === 'HS256' ? new TextEncoder().encode(jwtSecret) : signingKey);
  return new SignJWT({
    email: o.email ?? 'supa@example.test',
    role: 'authenticated',
    session_id: o.sessionId ?? randomUUID(),
    user_metadata: { full_name: 'Supa Base' },
    app_metadata: { provider: 'email' },
  })
    .setProtectedHeader(alg === 'HS256' ? { alg, typ: 'JWT' } : { alg, typ: 'JWT', kid: 'key-1' })
    .setSubject(o.sub ?? randomUUID())
    .setAudience(o.aud ?? 'authenticated')
    .setIssuer(o.iss ?? `${supabaseUrl}/auth/v1`)
    .setIssuedAt()
    .setExpirationTime(o.expiresIn ?? '1h')
    .sign(key);
}

describe('Supabase access tokens', () => {
  it('an HS256 token (project JWT secret) is accepted and maps to a Vaporform user on first use', async () => {
    const sub = randomUUID();
    const token = await supabaseToken({ sub, email: 'Supa.HS@Example.test' });
    const me = await call(t.app, 'GET', '/api/auth/me', { token });
    expect(me.status).toBe(200);
    expect(me.body.user.email).toBe('supa.hs@example.test');
    expect(me.body.user.name).toBe('Supa Base');
    // Another token of the same person, a new session: the same user.
    const again = await call(t.app, 'GET', '/api/auth/me', {
      token: await supabaseToken({ sub, email: 'supa.hs@example.test' }),
    });
    expect(again.body.user.id).toBe(me.body.user.id);
  });

  it('an ES256 token checked against the project JWKS works on routes and on the project socket', async () => {
    const token = await supabaseToken({ alg: 'ES256', email: 'supa.jwks@example.test' });
    const created = await call(t.app, 'POST', '/api/projects', {
      token,
      body: { name: 'from supabase', description: 'jwks' },
    });
    expect(created.status).toBe(201);
    expect(jwksRequests).toBeGreaterThan(0);
    const id = created.body.project.id as string;
    const put = await call(t.app, 'PUT', `/api/projects/${id}/files/a.txt`, {
      token,
      body: { content: 'hi' },
    });
    expect(put.status).toBe(201);

    const server = await listen(t);
    try {
      const ws = new WebSocket(
        `${server.url.replace('http', 'ws')}/api/projects/${id}/ws?token=${token}`,
      );
      const first = await new Promise<string>((resolve, reject) => {
        ws.once('message', (m) => resolve(m.toString()));
        ws.once('unexpected-response', (_q, res) => reject(new Error(`${res.statusCode}`)));
        ws.once('error', reject);
      });
      expect(JSON.parse(first).type).toBe('presence');
      ws.terminate();
    } finally {
      await server.close();
    }
  });

  it('a Supabase identity with the email of an existing account is that account; own login keeps working', async () => {
    const own = await registerAndLogin(t.app, { email: 'both@example.test' });
    expect((await call(t.app, 'GET', '/api/auth/me', { token: own.token })).status).toBe(200);
    const token = await supabaseToken({ email: 'both@example.test' });
    const me = await call(t.app, 'GET', '/api/auth/me', { token });
    expect(me.status).toBe(200);
    expect(me.body.user.id).toBe(own.user.id);
    const login = await call(t.app, 'POST', '/api/auth/login', {
      body: { email: 'both@example.test', password: own.password },
    });
    expect(login.status).toBe(200);
  });

  it('forged, expired, wrong-audience and wrong-issuer tokens are 401', async () => {
    const bad = [
      await supabaseToken({ key: new TextEncoder().encode('x'.repeat(40)) }),
      await supabaseToken({ alg: 'ES256', key: otherKey }),
      await supabaseToken({ expiresIn: Math.floor(Date.now() / 1000) - 60 }),
      await supabaseToken({ aud: 'anon' }),
      await supabaseToken({ alg: 'ES256', aud: 'service_role' }),
      await supabaseToken({ iss: 'http://127.0.0.1:1/auth/v1' }),
      'not.a.jwt',
    ];
    for (const token of bad) {
      const res = await call(t.app, 'GET', '/api/auth/me', { token });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('unauthenticated');
    }
  });

  it('logout ends the Supabase session here for good: the same token is 401 afterwards', async () => {
    const token = await supabaseToken({ email: 'supa.out@example.test' });
    expect((await call(t.app, 'GET', '/api/auth/me', { token })).status).toBe(200);
    expect((await call(t.app, 'POST', '/api/auth/logout', { token })).status).toBe(204);
    expect((await call(t.app, 'GET', '/api/auth/me', { token })).status).toBe(401);
  });
});
