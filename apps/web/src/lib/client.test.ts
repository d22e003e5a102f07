import { inject } from 'vitest';
import { describe, expect, it } from 'vitest';
import { MemoryStorage, newUser } from '../../test/helpers.ts';
import { ApiConnection, unwrap } from './client.ts';
import { SessionStore } from './session.ts';

// The generated client's session middleware against the real server: the bearer on every
// request, one silent refresh and retry on a 401, and a dead session signed out.

describe('the generated client of the IDE', () => {
  it('sends the session’s token and answers with the contract’s types', async () => {
    const user = await newUser();
    const me = unwrap(await user.api.client.GET('/api/auth/me'));
    expect(me.user.email).toBe(user.email);
  });

  it('refreshes once and retries a request the server refused with 401 (a POST with a body)', async () => {
    const user = await newUser();
    const s = user.api.session.get()!;
    // A token the server no longer takes, but that the tab still thinks is fresh.
    user.api.session.set({ ...s, token: `${s.token}x`, expiresAt: Date.now() + 600_000 });
    const created = unwrap(
      await user.api.client.POST('/api/projects', { body: { name: 'Through the SDK' } }),
    );
    expect(created.project.name).toBe('Through the SDK');
    expect(user.api.session.get()!.refreshToken).not.toBe(s.refreshToken);
  });

  it('signs out with reason "expired" when the session is gone', async () => {
    const user = await newUser();
    const reasons: (string | undefined)[] = [];
    user.api.session.subscribe((next, reason) => {
      if (!next) reasons.push(reason);
    });
    const other = new ApiConnection(new SessionStore(new MemoryStorage()), inject('vfServerUrl'));
    other.session.set(user.api.session.get()!);
    await other.logout();
    const s = user.api.session.get()!;
    user.api.session.set({ ...s, token: `${s.token}x`, expiresAt: Date.now() + 600_000 });
    const answer = await user.api.client.GET('/api/auth/me');
    expect(answer.response.status).toBe(401);
    expect(user.api.session.get()).toBeNull();
    expect(reasons).toContain('expired');
  });
});
