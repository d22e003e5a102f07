import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { startRedis, type TestRedis } from '../../../test/redis.ts';

// Two server instances of one deployment: same database, same JWT secret, one Redis.
let redis: TestRedis;
let a: TestApp;
let b: TestApp;
beforeAll(async () => {
  redis = await startRedis();
  const env = {
    REDIS_URL: redis.url,
    JWT_SECRET: 'cluster-test-secret-0123456789-abcdefghij',
    VAPORFORM_LOGIN_LIMIT_PER_ACCOUNT: '4',
  };
  a = await createTestApp(env);
  b = await createTestApp(env, { databaseUrl: a.databaseUrl, dataDir: a.config.dataDir });
});
afterAll(async () => {
  await b?.close();
  await a?.close();
  await redis?.stop();
});

describe('auth across two instances sharing Redis', () => {
  it('a logout on one instance is refused at once on the other, although it had cached the session', async () => {
    const s = await registerAndLogin(a.app);
    expect((await call(b.app, 'GET', '/api/auth/me', { token: s.token })).status).toBe(200);
    expect((await call(a.app, 'POST', '/api/auth/logout', { token: s.token })).status).toBe(204);
    // The revocation travels through Redis pub/sub; allow it a moment, no more.
    let status = 200;
    for (let i = 0; i < 50 && status === 200; i++) {
      await new Promise((r) => setTimeout(r, 20));
      status = (await call(b.app, 'GET', '/api/auth/me', { token: s.token })).status;
    }
    expect(status).toBe(401);
  });

  it('the per-account login limit is shared: attempts on either instance count', async () => {
    const s = await registerAndLogin(a.app);
    const wrong = { email: s.user.email, password: 'not the password' };
    expect((await call(a.app, 'POST', '/api/auth/login', { body: wrong })).status).toBe(401);
    expect((await call(b.app, 'POST', '/api/auth/login', { body: wrong })).status).toBe(401);
    expect((await call(a.app, 'POST', '/api/auth/login', { body: wrong })).status).toBe(401);
    expect((await call(b.app, 'POST', '/api/auth/login', { body: wrong })).status).toBe(401);
    const fifth = await call(a.app, 'POST', '/api/auth/login', { body: wrong });
    expect(fifth.status).toBe(429);
    expect(fifth.headers.get('retry-after')).toMatch(/^\d+$/);
  });
});

describe('preview links across two instances sharing Redis', () => {
  it('a preview link is used once: traded for its cookie on one instance, refused on the other', async () => {
    const s = await registerAndLogin(a.app);
    const created = await call(a.app, 'POST', '/api/projects', {
      token: s.token,
      body: { name: 'Preview once' },
    });
    const projectId: string = created.body.project.id;
    const issued = await call(a.app, 'POST', `/api/projects/${projectId}/preview-token`, {
      token: s.token,
    });
    expect(issued.status).toBe(201);
    const url = new URL(issued.body.url as string);
    const trade = (t: TestApp) =>
      t.app.request(url.toString(), { headers: { host: url.host }, redirect: 'manual' });
    const first = await trade(b);
    expect(first.status).toBe(302);
    expect(first.headers.get('set-cookie')).toMatch(/^vf_preview=/);
    const again = await trade(a);
    expect(again.status).toBe(401);
    const body = (await again.json()) as { error: { message: string } };
    expect(body.error.message).toBe('This preview link was already used; open it again');
  });
});
