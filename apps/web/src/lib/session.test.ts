import { inject } from 'vitest';
import { describe, expect, it } from 'vitest';
import { MemoryStorage, newUser } from '../../test/helpers.ts';
import { ApiConnection, unwrap } from './client.ts';
import { SessionStore } from './session.ts';

// Silent refresh against the real server: one rotation shared by every tab, a raced 409 read
// back from storage, and a revoked session ending in a sign-out (not an error loop).

/** Who the server says the session is (`GET /api/auth/me`). @throws ApiError */
async function me(api: ApiConnection) {
  return unwrap(await api.client.GET('/api/auth/me'));
}

describe('silent token refresh', () => {
  it('two tabs refreshing at once rotate the refresh token once and both stay signed in', async () => {
    const user = await newUser();
    const tabA = new ApiConnection(new SessionStore(user.storage), inject('vfServerUrl'));
    const tabB = new ApiConnection(new SessionStore(user.storage), inject('vfServerUrl'));
    const before = user.api.session.get()!;

    const [a, b] = await Promise.all([tabA.refresh(), tabB.refresh()]);
    expect(a?.refreshToken).toBeTruthy();
    expect(a?.refreshToken).toBe(b?.refreshToken);
    expect(a?.refreshToken).not.toBe(before.refreshToken);
    expect((await me(tabB)).user.email).toBe(user.email);
    expect((await me(tabA)).user.email).toBe(user.email);
  });

  it('many callers in one tab share one refresh', async () => {
    const user = await newUser();
    const results = await Promise.all(Array.from({ length: 5 }, () => user.api.refresh()));
    expect(new Set(results.map((r) => r?.refreshToken)).size).toBe(1);
    expect((await me(user.api)).user.email).toBe(user.email);
  });

  it('a refresh that raced a rotation elsewhere (409) takes the stored winner', async () => {
    const user = await newUser();
    const session = user.api.session;
    const stale = session.get()!;
    // Another tab (without the lock) rotates and stores its new pair while our call is in flight.
    const result = await session.refresh(async (refreshToken) => {
      const winner = await fetch(`${inject('vfServerUrl')}/api/auth/refresh`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refreshToken }),
      });
      const pair = (await winner.json()) as { token: string; refreshToken: string };
      setTimeout(() => session.set({ ...stale, ...pair, expiresAt: Date.now() + 900_000 }), 50);
      return { ok: false, status: 409 };
    });
    expect(result?.refreshToken).not.toBe(stale.refreshToken);
    expect(session.get()).not.toBeNull();
    expect((await me(user.api)).user.email).toBe(user.email);
  });

  it('an expired access token is refreshed silently before a request', async () => {
    const user = await newUser();
    const s = user.api.session.get()!;
    user.api.session.set({ ...s, expiresAt: Date.now() - 1000 });
    expect((await me(user.api)).user.email).toBe(user.email);
    expect(user.api.session.get()!.refreshToken).not.toBe(s.refreshToken);
  });

  it('a revoked session signs out with reason "expired" and keeps other local data', async () => {
    const user = await newUser();
    user.storage.setItem('vf.draft:p:file.txt', JSON.stringify({ content: 'x', baseVersion: 1 }));
    const reasons: (string | undefined)[] = [];
    user.api.session.subscribe((s, reason) => {
      if (!s) reasons.push(reason);
    });
    // Sign out on another device of the same session: the refresh token dies with it.
    const other = new ApiConnection(new SessionStore(new MemoryStorage()), inject('vfServerUrl'));
    other.session.set(user.api.session.get()!);
    await other.logout();

    await expect(me(user.api)).rejects.toMatchObject({ status: 401 });
    expect(user.api.session.get()).toBeNull();
    expect(reasons).toContain('expired');
    expect(user.storage.getItem('vf.draft:p:file.txt')).not.toBeNull();
  });
});
