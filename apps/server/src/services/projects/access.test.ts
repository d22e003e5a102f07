import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { roleAtLeast, type Role } from './index.ts';

type Session = Awaited<ReturnType<typeof registerAndLogin>>;
type Caller = Role | 'stranger' | 'anonymous';

const callers: Caller[] = ['owner', 'admin', 'editor', 'viewer', 'stranger', 'anonymous'];

let t: TestApp;
/** One account per caller kind, plus `member` (an editor acted on) and `newcomer` (added). */
let people: Record<Exclude<Caller, 'anonymous'> | 'member' | 'newcomer', Session>;
let projectCount = 0;

beforeAll(async () => {
  t = await createTestApp();
  const names = ['owner', 'admin', 'editor', 'viewer', 'stranger', 'member', 'newcomer'] as const;
  const sessions = await Promise.all(names.map(() => registerAndLogin(t.app)));
  people = Object.fromEntries(names.map((n, i) => [n, sessions[i]!])) as typeof people;
});

afterAll(async () => {
  await t?.close();
});

/** A project with one member of each role and an editor `member` to act on. */
async function freshProject(): Promise<string> {
  const created = await call(t.app, 'POST', '/api/projects', {
    token: people.owner.token,
    body: { name: `Matrix ${++projectCount}` },
  });
  expect(created.status).toBe(201);
  const id = created.body.project.id as string;
  for (const [who, role] of [
    ['admin', 'admin'],
    ['editor', 'editor'],
    ['viewer', 'viewer'],
    ['member', 'editor'],
  ] as const) {
    const res = await call(t.app, 'POST', `/api/projects/${id}/members`, {
      token: people.owner.token,
      body: { email: people[who].user.email, role },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  }
  return id;
}

function tokenOf(caller: Caller): string | undefined {
  return caller === 'anonymous' ? undefined : people[caller].token;
}

/** Statuses for the four roles given the minimum role, plus stranger 404 and anonymous 401. */
function expectFor(min: Role, ok: number): Record<Caller, number> {
  const byRole = (role: Role) => (roleAtLeast(role, min) ? ok : 403);
  return {
    owner: byRole('owner'),
    admin: byRole('admin'),
    editor: byRole('editor'),
    viewer: byRole('viewer'),
    stranger: 404,
    anonymous: 401,
  };
}

const matrix: {
  route: string;
  request: (projectId: string) => { method: string; url: string; body?: unknown };
  expected: Record<Caller, number>;
}[] = [
  {
    route: 'GET /api/projects/{id}',
    request: (id) => ({ method: 'GET', url: `/api/projects/${id}` }),
    expected: expectFor('viewer', 200),
  },
  {
    route: 'PATCH /api/projects/{id}',
    request: (id) => ({
      method: 'PATCH',
      url: `/api/projects/${id}`,
      body: { description: 'changed' },
    }),
    expected: expectFor('admin', 200),
  },
  {
    route: 'DELETE /api/projects/{id}',
    request: (id) => ({ method: 'DELETE', url: `/api/projects/${id}` }),
    expected: expectFor('owner', 204),
  },
  {
    route: 'GET /api/projects/{id}/members',
    request: (id) => ({ method: 'GET', url: `/api/projects/${id}/members` }),
    expected: expectFor('viewer', 200),
  },
  {
    route: 'POST /api/projects/{id}/members',
    request: (id) => ({
      method: 'POST',
      url: `/api/projects/${id}/members`,
      body: { email: people.newcomer.user.email, role: 'editor' },
    }),
    expected: expectFor('admin', 201),
  },
  {
    route: 'PATCH /api/projects/{id}/members/{userId}',
    request: (id) => ({
      method: 'PATCH',
      url: `/api/projects/${id}/members/${people.member.user.id}`,
      body: { role: 'viewer' },
    }),
    expected: expectFor('admin', 200),
  },
  {
    route: 'DELETE /api/projects/{id}/members/{userId}',
    request: (id) => ({
      method: 'DELETE',
      url: `/api/projects/${id}/members/${people.member.user.id}`,
    }),
    expected: expectFor('admin', 204),
  },
  {
    route: 'GET /api/projects/{id}/activity',
    request: (id) => ({ method: 'GET', url: `/api/projects/${id}/activity` }),
    expected: expectFor('viewer', 200),
  },
];

describe('role matrix', () => {
  for (const { route, request, expected } of matrix) {
    describe(route, () => {
      for (const caller of callers) {
        it(`${caller} → ${expected[caller]}`, async () => {
          const projectId = await freshProject();
          const { method, url, body } = request(projectId);
          const res = await call(t.app, method, url, { token: tokenOf(caller), body });
          expect(res.status, JSON.stringify(res.body)).toBe(expected[caller]);
          const code = { 401: 'unauthenticated', 403: 'forbidden', 404: 'not_found' }[res.status];
          if (code) expect(res.body.error.code).toBe(code);
        });
      }
    });
  }

  describe('routes without a project', () => {
    for (const caller of callers) {
      const signedIn = caller !== 'anonymous';
      it(`${caller} → POST ${signedIn ? 201 : 401}, GET ${signedIn ? 200 : 401}`, async () => {
        const token = tokenOf(caller);
        const created = await call(t.app, 'POST', '/api/projects', {
          token,
          body: { name: `Own ${caller} ${++projectCount}` },
        });
        expect(created.status).toBe(signedIn ? 201 : 401);
        const listed = await call(t.app, 'GET', '/api/projects', { token });
        expect(listed.status).toBe(signedIn ? 200 : 401);
      });
    }
  });

  it('anonymous gets 401 before any body validation; strangers 404 before it', async () => {
    const id = await freshProject();
    const anon = await call(t.app, 'PATCH', `/api/projects/${id}`, { body: { name: '' } });
    expect(anon.status).toBe(401);
    const stranger = await call(t.app, 'PATCH', `/api/projects/${id}`, {
      token: people.stranger.token,
      body: { name: '' },
    });
    expect(stranger.status).toBe(404);
    const bogus = await call(t.app, 'GET', `/api/projects/${id}`, { token: 'not.a.token' });
    expect(bogus.status).toBe(401);
  });

  it('reports each member their own role', async () => {
    const id = await freshProject();
    for (const role of ['owner', 'admin', 'editor', 'viewer'] as const) {
      const res = await call(t.app, 'GET', `/api/projects/${id}`, { token: people[role].token });
      expect(res.body.project.role).toBe(role);
    }
  });
});

describe('member rules', () => {
  async function membersOf(id: string): Promise<Record<string, string>> {
    const res = await call(t.app, 'GET', `/api/projects/${id}/members`, {
      token: people.owner.token,
    });
    expect(res.status).toBe(200);
    return Object.fromEntries(
      (res.body.members as { userId: string; role: string }[]).map((m) => [m.userId, m.role]),
    );
  }

  it('lists members with their profiles, owner first', async () => {
    const id = await freshProject();
    const res = await call(t.app, 'GET', `/api/projects/${id}/members`, {
      token: people.viewer.token,
    });
    const members = res.body.members as Record<string, string>[];
    expect(members).toHaveLength(5);
    expect(members[0]).toMatchObject({
      userId: people.owner.user.id,
      role: 'owner',
      email: people.owner.user.email,
    });
    for (const m of members) {
      expect(Object.keys(m).sort()).toEqual([
        'addedAt',
        'email',
        'name',
        'role',
        'userId',
        'username',
      ]);
    }
  });

  it('an admin can neither grant nor take away admin, nor remove an admin', async () => {
    const id = await freshProject();
    const asAdmin = { token: people.admin.token };
    const attempts = [
      call(t.app, 'POST', `/api/projects/${id}/members`, {
        ...asAdmin,
        body: { email: people.newcomer.user.email, role: 'admin' },
      }),
      call(t.app, 'PATCH', `/api/projects/${id}/members/${people.member.user.id}`, {
        ...asAdmin,
        body: { role: 'admin' },
      }),
    ];
    for (const res of await Promise.all(attempts)) expect(res.status).toBe(403);

    // A second admin, made by the owner, is out of the first admin's reach.
    const promoted = await call(
      t.app,
      'PATCH',
      `/api/projects/${id}/members/${people.member.user.id}`,
      {
        token: people.owner.token,
        body: { role: 'admin' },
      },
    );
    expect(promoted.status).toBe(200);
    expect(promoted.body.member.role).toBe('admin');
    const demote = await call(
      t.app,
      'PATCH',
      `/api/projects/${id}/members/${people.member.user.id}`,
      {
        ...asAdmin,
        body: { role: 'viewer' },
      },
    );
    expect(demote.status).toBe(403);
    const remove = await call(
      t.app,
      'DELETE',
      `/api/projects/${id}/members/${people.member.user.id}`,
      asAdmin,
    );
    expect(remove.status).toBe(403);
    expect((await membersOf(id))[people.member.user.id]).toBe('admin');

    // The owner can do all of it.
    const removed = await call(
      t.app,
      'DELETE',
      `/api/projects/${id}/members/${people.member.user.id}`,
      {
        token: people.owner.token,
      },
    );
    expect(removed.status).toBe(204);
    const addedAdmin = await call(t.app, 'POST', `/api/projects/${id}/members`, {
      token: people.owner.token,
      body: { email: people.newcomer.user.email, role: 'admin' },
    });
    expect(addedAdmin.status).toBe(201);
  });

  it("the owner can't be removed, demoted or leave", async () => {
    const id = await freshProject();
    const ownerId = people.owner.user.id;
    const attempts = await Promise.all([
      call(t.app, 'DELETE', `/api/projects/${id}/members/${ownerId}`, {
        token: people.admin.token,
      }),
      call(t.app, 'DELETE', `/api/projects/${id}/members/${ownerId}`, {
        token: people.owner.token,
      }),
      call(t.app, 'PATCH', `/api/projects/${id}/members/${ownerId}`, {
        token: people.owner.token,
        body: { role: 'admin' },
      }),
      call(t.app, 'PATCH', `/api/projects/${id}/members/${ownerId}`, {
        token: people.admin.token,
        body: { role: 'viewer' },
      }),
    ]);
    for (const res of attempts) {
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('forbidden');
    }
    const promoteToOwner = await call(
      t.app,
      'PATCH',
      `/api/projects/${id}/members/${people.admin.user.id}`,
      {
        token: people.owner.token,
        body: { role: 'owner' },
      },
    );
    expect(promoteToOwner.status).toBe(400);
    expect(promoteToOwner.body.error.details[0].field).toBe('role');
    expect((await membersOf(id))[ownerId]).toBe('owner');
  });

  it('any other member may leave, and then sees nothing', async () => {
    const id = await freshProject();
    for (const who of ['viewer', 'editor', 'admin'] as const) {
      const res = await call(
        t.app,
        'DELETE',
        `/api/projects/${id}/members/${people[who].user.id}`,
        {
          token: people[who].token,
        },
      );
      expect(res.status, who).toBe(204);
      const after = await call(t.app, 'GET', `/api/projects/${id}`, { token: people[who].token });
      expect(after.status).toBe(404);
    }
    const activity = await call(t.app, 'GET', `/api/projects/${id}/activity`, {
      token: people.owner.token,
    });
    const left = (
      activity.body.activity as { type: string; userId: string; sourceType: string }[]
    ).filter((a) => a.type === 'member_left');
    expect(left.map((a) => a.userId).sort()).toEqual(
      [people.viewer.user.id, people.editor.user.id, people.admin.user.id].sort(),
    );
    expect(left.every((a) => a.sourceType === 'user')).toBe(true);
  });

  it('adding: unknown email invited (202), existing member 409, emails matched ignoring case', async () => {
    const id = await freshProject();
    const unknown = await call(t.app, 'POST', `/api/projects/${id}/members`, {
      token: people.owner.token,
      body: { email: 'nobody@example.test', role: 'viewer' },
    });
    expect(unknown.status).toBe(202);
    expect(unknown.body.invitation).toMatchObject({ email: 'nobody@example.test', role: 'viewer' });
    const again = await call(t.app, 'POST', `/api/projects/${id}/members`, {
      token: people.owner.token,
      body: { email: people.viewer.user.email.toUpperCase(), role: 'editor' },
    });
    expect(again.status).toBe(409);
    const added = await call(t.app, 'POST', `/api/projects/${id}/members`, {
      token: people.admin.token,
      body: { email: people.newcomer.user.email.toUpperCase(), role: 'viewer' },
    });
    expect(added.status).toBe(201);
    expect(added.body.member).toMatchObject({ userId: people.newcomer.user.id, role: 'viewer' });
    const invalid = await call(t.app, 'POST', `/api/projects/${id}/members`, {
      token: people.owner.token,
      body: { email: 'not-an-email', role: 'superuser' },
    });
    expect(invalid.status).toBe(400);
    expect((invalid.body.error.details as { field: string }[]).map((d) => d.field).sort()).toEqual([
      'email',
      'role',
    ]);
  });

  it('changing or removing someone who is not a member is 404', async () => {
    const id = await freshProject();
    for (const target of [people.stranger.user.id, 'not-a-uuid']) {
      const patch = await call(t.app, 'PATCH', `/api/projects/${id}/members/${target}`, {
        token: people.owner.token,
        body: { role: 'viewer' },
      });
      expect(patch.status).toBe(404);
      const del = await call(t.app, 'DELETE', `/api/projects/${id}/members/${target}`, {
        token: people.owner.token,
      });
      expect(del.status).toBe(404);
    }
  });

  it('records member events in the activity log with the acting user', async () => {
    const id = await freshProject();
    await call(t.app, 'PATCH', `/api/projects/${id}/members/${people.member.user.id}`, {
      token: people.admin.token,
      body: { role: 'viewer' },
    });
    await call(t.app, 'DELETE', `/api/projects/${id}/members/${people.member.user.id}`, {
      token: people.admin.token,
    });
    const res = await call(t.app, 'GET', `/api/projects/${id}/activity`, {
      token: people.viewer.token,
    });
    const activity = res.body.activity as {
      type: string;
      userId: string;
      sourceType: string;
      metadata: Record<string, unknown>;
    }[];
    expect(activity.map((a) => a.type)).toEqual([
      'member_removed',
      'member_role_changed',
      'member_added',
      'member_added',
      'member_added',
      'member_added',
      'project_created',
    ]);
    expect(activity[0]).toMatchObject({
      userId: people.admin.user.id,
      sourceType: 'user',
      metadata: { memberId: people.member.user.id, role: 'viewer' },
    });
    expect(activity[1]!.metadata).toMatchObject({ role: 'viewer', previousRole: 'editor' });
  });
});
