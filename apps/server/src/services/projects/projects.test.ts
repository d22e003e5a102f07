import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import type { TemplatesService } from '../templates/index.ts';
import type { Project, ProjectsService } from './index.ts';

type Session = Awaited<ReturnType<typeof registerAndLogin>>;

let t: TestApp;
let projects: ProjectsService;
let templates: TemplatesService;
let alice: Session;
let bob: Session;

beforeAll(async () => {
  t = await createTestApp();
  ({ projects, templates } = t.services);
  [alice, bob] = await Promise.all([registerAndLogin(t.app), registerAndLogin(t.app)]);
});

afterAll(async () => {
  await t?.close();
});

async function create(session: Session, body: Record<string, unknown>): Promise<Project> {
  const res = await call(t.app, 'POST', '/api/projects', { token: session.token, body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.project as Project;
}

describe('project CRUD', () => {
  it('creates a project owned by the caller, stopped, monolithic by default', async () => {
    const created = async () =>
      (await t.services.metrics.projectsCreated.get()).values[0]?.value ?? 0;
    const before = await created();
    const project = await create(alice, { name: 'First app', description: 'A todo list' });
    expect(project).toMatchObject({
      name: 'First app',
      description: 'A todo list',
      type: 'monolithic',
      status: 'stopped',
      role: 'owner',
      ownerId: alice.user.id,
      health: 'unknown',
      totalFiles: 0,
      totalSizeBytes: 0,
      config: { architecture: 'monolithic' },
    });
    expect(project.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(project).not.toHaveProperty('templateId');
    for (const field of ['createdAt', 'updatedAt', 'lastActivityAt'] as const) {
      expect(new Date(project[field]).toISOString()).toBe(project[field]);
    }
    expect((await created()) - before).toBe(1);
  });

  it('reads, lists newest first, searches, updates and deletes', async () => {
    const older = await create(alice, { name: 'Weather station', description: 'Reads sensors' });
    const newer = await create(alice, { name: 'Recipe book', description: 'Cooking notes' });

    const got = await call(t.app, 'GET', `/api/projects/${older.id}`, { token: alice.token });
    expect(got.status).toBe(200);
    expect(got.body.project).toEqual(older);

    const list = await call(t.app, 'GET', '/api/projects', { token: alice.token });
    expect(list.status).toBe(200);
    const ids = (list.body.projects as Project[]).map((p) => p.id);
    expect(ids.indexOf(newer.id)).toBeLessThan(ids.indexOf(older.id));
    expect((list.body.projects as Project[]).every((p) => p.role === 'owner')).toBe(true);

    const byName = await call(t.app, 'GET', '/api/projects?q=WEATHER', { token: alice.token });
    expect((byName.body.projects as Project[]).map((p) => p.id)).toEqual([older.id]);
    const byDescription = await call(t.app, 'GET', '/api/projects?q=cooking', {
      token: alice.token,
    });
    expect((byDescription.body.projects as Project[]).map((p) => p.id)).toEqual([newer.id]);
    const wildcard = await call(t.app, 'GET', '/api/projects?q=%25', { token: alice.token });
    expect(wildcard.body.projects).toEqual([]);

    const patched = await call(t.app, 'PATCH', `/api/projects/${older.id}`, {
      token: alice.token,
      body: { name: 'Weather station v2', description: 'Reads more sensors' },
    });
    expect(patched.status).toBe(200);
    expect(patched.body.project).toMatchObject({
      id: older.id,
      name: 'Weather station v2',
      description: 'Reads more sensors',
      role: 'owner',
    });

    const deleted = await call(t.app, 'DELETE', `/api/projects/${older.id}`, {
      token: alice.token,
    });
    expect(deleted.status).toBe(204);
    const gone = await call(t.app, 'GET', `/api/projects/${older.id}`, { token: alice.token });
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('not_found');
  });

  it("does not list other people's projects", async () => {
    const mine = await create(bob, { name: 'Bob private' });
    const list = await call(t.app, 'GET', '/api/projects', { token: alice.token });
    expect((list.body.projects as Project[]).map((p) => p.id)).not.toContain(mine.id);
    const got = await call(t.app, 'GET', `/api/projects/${mine.id}`, { token: alice.token });
    expect(got.status).toBe(404);
  });

  it('answers 404 for malformed project ids, never 400 or 500', async () => {
    for (const path of [
      '/api/projects/not-a-uuid',
      '/api/projects/123/members',
      '/api/projects/x/activity',
    ]) {
      const res = await call(t.app, 'GET', path, { token: alice.token });
      expect(res.status, path).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }
  });
});

describe('names', () => {
  it('are unique per owner ignoring case, but another owner may reuse one', async () => {
    await create(alice, { name: 'Shop' });
    const clash = await call(t.app, 'POST', '/api/projects', {
      token: alice.token,
      body: { name: 'sHoP' },
    });
    expect(clash.status).toBe(409);
    expect(clash.body.error).toMatchObject({ code: 'conflict', details: { field: 'name' } });
    await create(bob, { name: 'Shop' });
  });

  it('clash on rename is 409 and changes nothing', async () => {
    await create(alice, { name: 'Alpha' });
    const beta = await create(alice, { name: 'Beta' });
    const res = await call(t.app, 'PATCH', `/api/projects/${beta.id}`, {
      token: alice.token,
      body: { name: 'ALPHA' },
    });
    expect(res.status).toBe(409);
    const still = await call(t.app, 'GET', `/api/projects/${beta.id}`, { token: alice.token });
    expect(still.body.project.name).toBe('Beta');
  });

  it('are trimmed', async () => {
    const p = await create(alice, { name: '  Spacey  ' });
    expect(p.name).toBe('Spacey');
  });
});

describe('templates and config', () => {
  it('records the template, takes its stack and architecture, and counts the use', async () => {
    const before = await templates.get('react-vite-pwa');
    const p = await create(alice, { name: 'From template', templateId: 'react-vite-pwa' });
    expect(p.templateId).toBe('react-vite-pwa');
    expect(p.type).toBe('pwa');
    expect(p.config).toMatchObject({
      architecture: 'pwa',
      frontend: { framework: 'react', buildTool: 'vite' },
    });
    const after = await templates.get('react-vite-pwa');
    expect(after.usageCount).toBe(before.usageCount + 1);
  });

  it('rejects an unknown templateId with 400 naming the field', async () => {
    const res = await call(t.app, 'POST', '/api/projects', {
      token: alice.token,
      body: { name: 'Nope', templateId: 'no-such-template' },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.details).toEqual([expect.objectContaining({ field: 'templateId' })]);
    const list = await call(t.app, 'GET', '/api/projects?q=Nope', { token: alice.token });
    expect(list.body.projects).toEqual([]);
  });

  it('merges the chosen config over the template stack; type comes from config, then template', async () => {
    const p = await create(alice, {
      name: 'Custom stack',
      templateId: 'express-react',
      config: {
        architecture: 'microservices',
        backend: { framework: 'fastify' },
        frontend: { cssFrameworks: ['tailwind'] },
        database: ['postgresql'],
        functionality: 'Lets people book rooms',
        unknownKey: 'dropped',
      },
    });
    expect(p.type).toBe('microservices');
    expect(p.config).toEqual({
      architecture: 'microservices',
      backend: { language: 'javascript', framework: 'fastify', isBaaS: false },
      frontend: { framework: 'react', cssFrameworks: ['tailwind'], buildTool: 'vite' },
      database: ['postgresql'],
      integrations: { apis: [], packages: ['express', 'react', 'react-dom', 'vite'] },
      functionality: 'Lets people book rooms',
    });

    const explicit = await create(alice, {
      name: 'Explicit type',
      type: 'pwa',
      config: { architecture: 'monolithic' },
    });
    expect(explicit.type).toBe('pwa');
    expect(explicit.config.architecture).toBe('pwa');
  });

  it('PATCH merges config: objects merge, arrays replace, architecture moves type', async () => {
    const p = await create(alice, {
      name: 'Patchable',
      config: { backend: { language: 'go', framework: 'chi' }, database: ['redis', 'postgresql'] },
    });
    const res = await call(t.app, 'PATCH', `/api/projects/${p.id}`, {
      token: alice.token,
      body: {
        config: {
          architecture: 'microservices',
          backend: { framework: 'echo' },
          database: ['sqlite'],
        },
      },
    });
    expect(res.status).toBe(200);
    expect(res.body.project.type).toBe('microservices');
    expect(res.body.project.config).toEqual({
      architecture: 'microservices',
      backend: { language: 'go', framework: 'echo' },
      database: ['sqlite'],
    });
  });

  it('an empty PATCH changes nothing, not even updatedAt', async () => {
    const p = await create(alice, { name: 'Untouched' });
    const res = await call(t.app, 'PATCH', `/api/projects/${p.id}`, {
      token: alice.token,
      body: {},
    });
    expect(res.status).toBe(200);
    expect(res.body.project.updatedAt).toBe(p.updatedAt);
  });
});

describe('validation', () => {
  it('names the offending fields', async () => {
    const res = await call(t.app, 'POST', '/api/projects', {
      token: alice.token,
      body: {
        description: 42,
        type: 'serverless',
        config: { architecture: 'nope', database: 'pg', backend: { isBaaS: 'yes' } },
      },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    const fields = (res.body.error.details as { field: string }[]).map((d) => d.field);
    expect(fields).toEqual(
      expect.arrayContaining([
        'name',
        'description',
        'type',
        'config.architecture',
        'config.database',
        'config.backend.isBaaS',
      ]),
    );
  });

  it('rejects blank and over-long names, and bodies that are not JSON', async () => {
    for (const name of ['   ', 'x'.repeat(256), 'line\nbreak']) {
      const res = await call(t.app, 'POST', '/api/projects', {
        token: alice.token,
        body: { name },
      });
      expect(res.status, JSON.stringify(name)).toBe(400);
      expect(res.body.error.details[0].field).toBe('name');
    }
    const broken = await call(t.app, 'POST', '/api/projects', {
      token: alice.token,
      body: '{"name":',
    });
    expect(broken.status).toBe(400);
    expect(broken.body.error.code).toBe('invalid_request');
  });

  it('checks PATCH bodies before anything changes', async () => {
    const p = await create(alice, { name: 'Strict' });
    const res = await call(t.app, 'PATCH', `/api/projects/${p.id}`, {
      token: alice.token,
      body: { name: '', config: { frontend: { cssFrameworks: [1] } } },
    });
    expect(res.status).toBe(400);
    const fields = (res.body.error.details as { field: string }[]).map((d) => d.field);
    expect(fields).toEqual(expect.arrayContaining(['name', 'config.frontend.cssFrameworks.0']));
  });
});

describe('activity', () => {
  it('lists project_created, renames and member events, newest first, with sourceType', async () => {
    const p = await create(alice, { name: 'Logged', templateId: 'node-http' });
    await call(t.app, 'PATCH', `/api/projects/${p.id}`, {
      token: alice.token,
      body: { name: 'Logged 2' },
    });
    const added = await call(t.app, 'POST', `/api/projects/${p.id}/members`, {
      token: alice.token,
      body: { email: bob.user.email, role: 'viewer' },
    });
    expect(added.status).toBe(201);

    const res = await call(t.app, 'GET', `/api/projects/${p.id}/activity`, { token: bob.token });
    expect(res.status).toBe(200);
    expect(res.body.nextCursor).toBeUndefined();
    const activity = res.body.activity as {
      type: string;
      userId?: string;
      sourceType: string;
      metadata: Record<string, unknown>;
      createdAt: string;
    }[];
    // The template's files are written by the system when the project is created.
    const fromTemplate = activity.filter((a) => a.type === 'file_created');
    expect(fromTemplate.map((a) => a.metadata.file_path).sort()).toEqual([
      'index.html',
      'package.json',
      'server.js',
      'style.css',
    ]);
    expect(fromTemplate.every((a) => a.sourceType === 'system')).toBe(true);
    const byPeople = activity.filter((a) => a.type !== 'file_created');
    expect(byPeople.map((a) => a.type)).toEqual([
      'member_added',
      'project_renamed',
      'project_created',
    ]);
    expect(byPeople.every((a) => a.sourceType === 'user' && a.userId === alice.user.id)).toBe(true);
    expect(byPeople[0]!.metadata).toMatchObject({ memberId: bob.user.id, role: 'viewer' });
    expect(byPeople[2]!.metadata).toMatchObject({ templateId: 'node-http' });
  });

  it('pages with limit and before, without gaps or repeats', async () => {
    const p = await create(alice, { name: 'Busy' });
    for (let i = 0; i < 5; i++) {
      await call(t.app, 'PATCH', `/api/projects/${p.id}`, {
        token: alice.token,
        body: { name: `Busy ${i}` },
      });
    }
    const all = await call(t.app, 'GET', `/api/projects/${p.id}/activity`, { token: alice.token });
    expect(all.body.activity).toHaveLength(6);

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const url = `/api/projects/${p.id}/activity?limit=4${cursor ? `&before=${cursor}` : ''}`;
      const page = await call(t.app, 'GET', url, { token: alice.token });
      expect(page.status).toBe(200);
      seen.push(...(page.body.activity as { id: string }[]).map((a) => a.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual((all.body.activity as { id: string }[]).map((a) => a.id));
  });

  it('rejects bad limits and cursors with 400 naming the field', async () => {
    const p = await create(alice, { name: 'Paged' });
    for (const [query, field] of [
      ['limit=0', 'limit'],
      ['limit=201', 'limit'],
      ['limit=ten', 'limit'],
      ['before=garbage', 'before'],
    ] as const) {
      const res = await call(t.app, 'GET', `/api/projects/${p.id}/activity?${query}`, {
        token: alice.token,
      });
      expect(res.status, query).toBe(400);
      expect(res.body.error.details[0].field).toBe(field);
    }
  });
});

describe('delete hooks', () => {
  it('run before the row goes; a failing hook keeps the project', async () => {
    const seen: string[] = [];
    const off = projects.onDelete((project) => {
      seen.push(project.id);
    });
    const p = await create(alice, { name: 'Hooked' });
    await projects.delete(p.id, alice.user.id);
    expect(seen).toEqual([p.id]);
    off();

    const failing = projects.onDelete(() => {
      throw new Error('container would not stop');
    });
    const q = await create(alice, { name: 'Sticky' });
    await expect(projects.delete(q.id, alice.user.id)).rejects.toThrow('container would not stop');
    failing();
    const still = await call(t.app, 'GET', `/api/projects/${q.id}`, { token: alice.token });
    expect(still.status).toBe(200);
  });
});

describe('OpenAPI document', () => {
  it('describes every project route with its request and responses', async () => {
    const res = await call(t.app, 'GET', '/openapi.json');
    expect(res.status).toBe(200);
    const paths = res.body.paths as Record<
      string,
      Record<string, { responses: Record<string, unknown> }>
    >;
    expect(Object.keys(paths['/api/projects']!)).toEqual(expect.arrayContaining(['get', 'post']));
    expect(Object.keys(paths['/api/projects/{id}']!)).toEqual(
      expect.arrayContaining(['get', 'patch', 'delete']),
    );
    expect(Object.keys(paths['/api/projects/{id}/members']!)).toEqual(
      expect.arrayContaining(['get', 'post']),
    );
    expect(Object.keys(paths['/api/projects/{id}/members/{userId}']!)).toEqual(
      expect.arrayContaining(['patch', 'delete']),
    );
    expect(paths['/api/projects/{id}/activity']!.get!.responses).toHaveProperty('200');
    expect(paths['/api/projects']!.post!.responses).toHaveProperty('409');
    expect(res.body.components.schemas).toHaveProperty('Project');
    expect(res.body.components.schemas).toHaveProperty('ProjectConfig');
  });
});
