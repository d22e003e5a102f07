import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { until } from '../../../test/wait.ts';
import type { MembershipChange } from './index.ts';

type Session = Awaited<ReturnType<typeof registerAndLogin>>;

let t: TestApp;
let owner: Session;
let admin: Session;
let editor: Session;
let viewer: Session;
let stranger: Session;
let projectCount = 0;
let emailCount = 0;

beforeAll(async () => {
  t = await createTestApp();
  [owner, admin, editor, viewer, stranger] = await Promise.all([
    registerAndLogin(t.app),
    registerAndLogin(t.app),
    registerAndLogin(t.app),
    registerAndLogin(t.app),
    registerAndLogin(t.app),
  ]);
});

afterAll(async () => {
  await t?.close();
});

/** A project of `owner` with an admin, an editor and a viewer. */
async function freshProject(): Promise<string> {
  const created = await call(t.app, 'POST', '/api/projects', {
    token: owner.token,
    body: { name: `Invitations ${++projectCount}` },
  });
  expect(created.status).toBe(201);
  const id = created.body.project.id as string;
  for (const [who, role] of [
    [admin, 'admin'],
    [editor, 'editor'],
    [viewer, 'viewer'],
  ] as const) {
    const res = await call(t.app, 'POST', `/api/projects/${id}/members`, {
      token: owner.token,
      body: { email: who.user.email, role },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  }
  return id;
}

/** An email nobody has registered, in lower case. */
function newEmail(): string {
  return `invitee${Date.now()}${++emailCount}@example.test`;
}

function invite(id: string, by: Session, email: string, role = 'editor') {
  return call(t.app, 'POST', `/api/projects/${id}/members`, {
    token: by.token,
    body: { email, role },
  });
}

function invitationsOf(id: string, by: Session) {
  return call(t.app, 'GET', `/api/projects/${id}/invitations`, { token: by.token });
}

async function activityTypes(id: string): Promise<string[]> {
  const res = await call(t.app, 'GET', `/api/projects/${id}/activity`, { token: owner.token });
  expect(res.status).toBe(200);
  return (res.body.activity as { type: string }[]).map((a) => a.type);
}

describe('inviting an email without an account', () => {
  it('is 202 with a pending invitation that every member sees and strangers do not', async () => {
    const id = await freshProject();
    const email = newEmail();
    const res = await invite(id, admin, email.toUpperCase(), 'viewer');
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body).toEqual({
      invitation: {
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        email,
        role: 'viewer',
        invitedBy: admin.user.id,
        createdAt: expect.any(String),
      },
    });
    expect(new Date(res.body.invitation.createdAt).toISOString()).toBe(
      res.body.invitation.createdAt,
    );

    for (const member of [owner, admin, editor, viewer]) {
      const listed = await invitationsOf(id, member);
      expect(listed.status).toBe(200);
      expect(listed.body).toEqual({ invitations: [res.body.invitation] });
    }
    const hidden = await invitationsOf(id, stranger);
    expect(hidden.status).toBe(404);
    expect(hidden.body.error.code).toBe('not_found');
    expect((await invite(id, stranger, newEmail())).status).toBe(404);
    const revokeByStranger = await call(
      t.app,
      'DELETE',
      `/api/projects/${id}/invitations/${res.body.invitation.id}`,
      { token: stranger.token },
    );
    expect(revokeByStranger.status).toBe(404);
    expect((await call(t.app, 'GET', `/api/projects/${id}/invitations`)).status).toBe(401);

    // Not a member yet, and the same email cannot be invited twice while pending.
    const members = await call(t.app, 'GET', `/api/projects/${id}/members`, {
      token: owner.token,
    });
    expect((members.body.members as { email: string }[]).map((m) => m.email)).not.toContain(email);
    const again = await invite(id, owner, email.toUpperCase(), 'editor');
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('conflict');
    expect((await activityTypes(id))[0]).toBe('member_invited');
  });

  it('becomes a membership with the invited role when that email registers (any case)', async () => {
    const first = await freshProject();
    const second = await freshProject();
    const email = newEmail();
    expect((await invite(first, owner, email, 'editor')).status).toBe(202);
    expect((await invite(second, admin, email, 'viewer')).status).toBe(202);

    const changes: MembershipChange[] = [];
    const stop = t.services.projects.onMembershipChanged((c) => changes.push(c));
    try {
      const invitee = await registerAndLogin(t.app, { email: email.toUpperCase() });
      expect(invitee.user.email).toBe(email);

      const own = await call(t.app, 'GET', '/api/projects', { token: invitee.token });
      expect(own.status).toBe(200);
      const roles = Object.fromEntries(
        (own.body.projects as { id: string; role: string }[]).map((p) => [p.id, p.role]),
      );
      expect(roles).toEqual({ [first]: 'editor', [second]: 'viewer' });

      const members = await call(t.app, 'GET', `/api/projects/${first}/members`, {
        token: viewer.token,
      });
      expect(members.body.members).toContainEqual(
        expect.objectContaining({ userId: invitee.user.id, email, role: 'editor' }),
      );
      // The invitation is gone from the pending list once accepted.
      expect((await invitationsOf(first, owner)).body).toEqual({ invitations: [] });
      expect((await invitationsOf(second, owner)).body).toEqual({ invitations: [] });

      const log = await call(t.app, 'GET', `/api/projects/${first}/activity`, {
        token: invitee.token,
      });
      expect(log.body.activity[0]).toMatchObject({
        type: 'invitation_accepted',
        userId: invitee.user.id,
        sourceType: 'user',
        metadata: { email, role: 'editor', memberId: invitee.user.id, invitedBy: owner.user.id },
      });

      // Members' sockets hear of it like any other membership change.
      await until(
        () => changes.filter((c) => c.userId === invitee.user.id).length === 2,
        10_000,
        'two membership changes',
      );
      expect(changes).toEqual(
        expect.arrayContaining([
          { projectId: first, userId: invitee.user.id, role: 'editor' },
          { projectId: second, userId: invitee.user.id, role: 'viewer' },
        ]),
      );

      // A member now: inviting them again adds nobody and says so.
      const already = await invite(first, owner, email, 'viewer');
      expect(already.status).toBe(409);
    } finally {
      stop();
    }
  });

  it('can be revoked by an admin; a revoked invitation never becomes a membership', async () => {
    const id = await freshProject();
    const email = newEmail();
    const invited = await invite(id, admin, email, 'editor');
    expect(invited.status).toBe(202);
    const url = `/api/projects/${id}/invitations/${invited.body.invitation.id}`;

    const byEditor = await call(t.app, 'DELETE', url, { token: editor.token });
    expect(byEditor.status).toBe(403);
    const byViewer = await call(t.app, 'DELETE', url, { token: viewer.token });
    expect(byViewer.status).toBe(403);
    const revoked = await call(t.app, 'DELETE', url, { token: admin.token });
    expect(revoked.status).toBe(204);
    expect((await invitationsOf(id, viewer)).body).toEqual({ invitations: [] });
    expect((await call(t.app, 'DELETE', url, { token: admin.token })).status).toBe(404);
    for (const bad of ['not-a-uuid', crypto.randomUUID()]) {
      const res = await call(t.app, 'DELETE', `/api/projects/${id}/invitations/${bad}`, {
        token: owner.token,
      });
      expect(res.status).toBe(404);
    }
    const types = await activityTypes(id);
    expect(types.slice(0, 2)).toEqual(['invitation_revoked', 'member_invited']);

    const invitee = await registerAndLogin(t.app, { email });
    const project = await call(t.app, 'GET', `/api/projects/${id}`, { token: invitee.token });
    expect(project.status).toBe(404);
    const own = await call(t.app, 'GET', '/api/projects', { token: invitee.token });
    expect(own.body.projects).toEqual([]);
    expect(await activityTypes(id)).not.toContain('invitation_accepted');

    // A revoked invitation does not block a new one for the same email (now an account: 201).
    expect((await invite(id, admin, email, 'viewer')).status).toBe(201);
  });

  it('follows the rules of adding members: editors and viewers cannot, admins only by the owner', async () => {
    const id = await freshProject();
    for (const who of [editor, viewer]) {
      const res = await invite(id, who, newEmail(), 'viewer');
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('forbidden');
    }
    const adminByAdmin = await invite(id, admin, newEmail(), 'admin');
    expect(adminByAdmin.status).toBe(403);
    expect((await invitationsOf(id, owner)).body).toEqual({ invitations: [] });

    const adminByOwner = await invite(id, owner, newEmail(), 'admin');
    expect(adminByOwner.status).toBe(202);
    const url = `/api/projects/${id}/invitations/${adminByOwner.body.invitation.id}`;
    expect((await call(t.app, 'DELETE', url, { token: admin.token })).status).toBe(403);
    expect((await call(t.app, 'DELETE', url, { token: owner.token })).status).toBe(204);
  });

  it('refuses bad input with 400 naming the field, before inviting anyone', async () => {
    const id = await freshProject();
    for (const email of ['not-an-email', '', 'a@', `${'x'.repeat(250)}@example.test`]) {
      const res = await invite(id, owner, email, 'viewer');
      expect(res.status, email).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
      expect(res.body.error.details).toContainEqual(expect.objectContaining({ field: 'email' }));
    }
    const badRole = await invite(id, owner, newEmail(), 'owner');
    expect(badRole.status).toBe(400);
    expect(res400Fields(badRole.body)).toEqual(['role']);
    expect((await invitationsOf(id, owner)).body).toEqual({ invitations: [] });
  });
});

describe('OpenAPI document', () => {
  it('describes the invitation answer and routes', async () => {
    const res = await call(t.app, 'GET', '/openapi.json');
    const paths = res.body.paths as Record<
      string,
      Record<string, { responses: Record<string, unknown> }>
    >;
    expect(paths['/api/projects/{id}/members']!.post!.responses).toHaveProperty('202');
    expect(paths['/api/projects/{id}/invitations']!.get!.responses).toHaveProperty('200');
    expect(paths['/api/projects/{id}/invitations/{invitationId}']!.delete!.responses).toEqual(
      expect.objectContaining({ 204: expect.anything(), 403: expect.anything() }),
    );
    expect(res.body.components.schemas.ProjectInvitation.required).toEqual(
      expect.arrayContaining(['id', 'email', 'role', 'createdAt']),
    );
  });
});

function res400Fields(body: { error: { details?: { field: string }[] } }): string[] {
  return (body.error.details ?? []).map((d) => d.field).sort();
}
