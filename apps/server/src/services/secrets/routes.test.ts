import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';

type Session = Awaited<ReturnType<typeof registerAndLogin>>;
type Caller = 'owner' | 'admin' | 'editor' | 'viewer' | 'stranger' | 'anonymous';
const callers: Caller[] = ['owner', 'admin', 'editor', 'viewer', 'stranger', 'anonymous'];

let t: TestApp;
let people: Record<Exclude<Caller, 'anonymous'>, Session>;
let projectCount = 0;

beforeAll(async () => {
  t = await createTestApp();
  const names = ['owner', 'admin', 'editor', 'viewer', 'stranger'] as const;
  const sessions = await Promise.all(names.map(() => registerAndLogin(t.app)));
  people = Object.fromEntries(names.map((n, i) => [n, sessions[i]!])) as typeof people;
});

afterAll(async () => {
  await t?.close();
});

/** A project with an admin, an editor and a viewer besides its owner. */
async function freshProject(): Promise<string> {
  const created = await call(t.app, 'POST', '/api/projects', {
    token: people.owner.token,
    body: { name: `Secrets ${++projectCount}` },
  });
  expect(created.status).toBe(201);
  const id = created.body.project.id as string;
  for (const role of ['admin', 'editor', 'viewer'] as const) {
    const res = await call(t.app, 'POST', `/api/projects/${id}/members`, {
      token: people.owner.token,
      body: { email: people[role].user.email, role },
    });
    expect(res.status).toBe(201);
  }
  return id;
}

function as(caller: Caller) {
  return (method: string, url: string, body?: unknown) =>
    call(t.app, method, url, {
      token: caller === 'anonymous' ? undefined : people[caller].token,
      body,
    });
}
const owner = as('owner');

/** Expected status per caller for a route needing `min`. */
function expected(min: 'admin' | 'editor', ok: number): Record<Caller, number> {
  return {
    owner: ok,
    admin: ok,
    editor: min === 'editor' ? ok : 403,
    viewer: 403,
    stranger: 404,
    anonymous: 401,
  };
}

const matrix: {
  route: string;
  request: (id: string) => [string, string, unknown?];
  expected: Record<Caller, number>;
}[] = [
  {
    route: 'GET integrations',
    request: (id) => ['GET', `/api/projects/${id}/integrations`],
    expected: expected('admin', 200),
  },
  {
    route: 'GET integrations/{service}',
    request: (id) => ['GET', `/api/projects/${id}/integrations/stripe`],
    expected: expected('admin', 200),
  },
  {
    route: 'PUT integrations/{service}',
    request: (id) => [
      'PUT',
      `/api/projects/${id}/integrations/openai`,
      { apiKey: 'sk-matrix-0123456789' },
    ],
    expected: expected('admin', 200),
  },
  {
    route: 'POST integrations/{service}/test',
    request: (id) => ['POST', `/api/projects/${id}/integrations/stripe/test`],
    expected: expected('admin', 200),
  },
  {
    route: 'GET env',
    request: (id) => ['GET', `/api/projects/${id}/env`],
    expected: expected('editor', 200),
  },
  {
    route: 'PUT env',
    request: (id) => ['PUT', `/api/projects/${id}/env`, { vars: { MATRIX: 'x' } }],
    expected: expected('admin', 200),
  },
];

describe('roles: viewers 403, strangers 404, anonymous 401', () => {
  it.each(matrix)('$route', async ({ request, expected: want }) => {
    const id = await freshProject();
    const seeded = await owner('PUT', `/api/projects/${id}/integrations/stripe`, {
      apiKey: 'sk_test_seeded0123456789',
    });
    expect(seeded.status).toBe(200);
    const got: Record<string, number> = {};
    for (const caller of callers) {
      const [method, url, body] = request(id);
      got[caller] = (await as(caller)(method, url, body)).status;
    }
    expect(got).toEqual(want);
  });

  it('DELETE routes: admin only, and strangers cannot learn what exists', async () => {
    const id = await freshProject();
    await owner('PUT', `/api/projects/${id}/integrations/stripe`, {
      apiKey: 'sk_test_x0123456789',
    });
    await owner('PUT', `/api/projects/${id}/env`, { vars: { GONE: 'x' } });
    for (const caller of ['viewer', 'editor', 'stranger', 'anonymous'] as const) {
      const want = { viewer: 403, editor: 403, stranger: 404, anonymous: 401 }[caller];
      expect((await as(caller)('DELETE', `/api/projects/${id}/integrations/stripe`)).status).toBe(
        want,
      );
      expect((await as(caller)('DELETE', `/api/projects/${id}/env/GONE`)).status).toBe(want);
      // Even for things that do not exist, and bad input, a stranger learns nothing.
      expect((await as(caller)('DELETE', `/api/projects/${id}/env/NOPE`)).status).toBe(want);
      expect((await as(caller)('PUT', `/api/projects/${id}/env`, { vars: 'bad' })).status).toBe(
        caller === 'editor' ? 403 : want,
      );
    }
    expect((await as('admin')('DELETE', `/api/projects/${id}/integrations/stripe`)).status).toBe(
      204,
    );
    expect((await as('admin')('DELETE', `/api/projects/${id}/env/GONE`)).status).toBe(204);
    expect((await owner('DELETE', `/api/projects/${id}/env/GONE`)).status).toBe(404);
    expect((await as('stranger')('GET', `/api/projects/not-a-uuid/env`)).status).toBe(404);
  });
});

describe('integrations', () => {
  it('stores the key sealed and shows only last4, status and usage', async () => {
    const id = await freshProject();
    const apiKey = 'sk_test_51HxIntegrationKey9876';
    const put = await owner('PUT', `/api/projects/${id}/integrations/stripe`, {
      apiKey,
      webhookSecret: 'whsec_integration_secret_1',
      webhookUrl: 'https://example.test/hooks/stripe',
      configuration: { mode: 'test', currency: 'eur', publishableKey: 'pk_test_123' },
    });
    expect(put.status).toBe(200);
    expect(put.body.integration).toMatchObject({
      service: 'stripe',
      serviceType: 'payment',
      configuration: { mode: 'test', currency: 'eur', publishableKey: 'pk_test_123' },
      last4: '9876',
      webhookUrl: 'https://example.test/hooks/stripe',
      hasWebhookSecret: true,
      active: true,
      configured: true,
      status: 'untested',
      usage: { requestCount: 0, errorCount: 0 },
      envNames: ['STRIPE_API_KEY', 'STRIPE_WEBHOOK_SECRET'],
    });
    const list = await owner('GET', `/api/projects/${id}/integrations`);
    expect(list.status).toBe(200);
    expect(list.body.integrations).toHaveLength(1);
    const one = await owner('GET', `/api/projects/${id}/integrations/stripe`);
    expect(one.body.integration).toEqual(list.body.integrations[0]);
    for (const body of [put.body, list.body, one.body]) {
      expect(JSON.stringify(body)).not.toContain(apiKey);
      expect(JSON.stringify(body)).not.toContain('whsec_integration_secret_1');
    }
  });

  it('keeps the key when it is not sent again, clears the webhook secret with null', async () => {
    const id = await freshProject();
    await owner('PUT', `/api/projects/${id}/integrations/github`, {
      apiKey: 'ghp_abcdefghijklmnop1234',
      webhookSecret: 'hook-secret-value',
    });
    const update = await owner('PUT', `/api/projects/${id}/integrations/github`, {
      configuration: { org: 'acme' },
      webhookSecret: null,
      active: false,
    });
    expect(update.status).toBe(200);
    expect(update.body.integration).toMatchObject({
      last4: '1234',
      configuration: { org: 'acme' },
      hasWebhookSecret: false,
      active: false,
      status: 'inactive',
      envNames: [],
    });
    // Inactive: the container does not get it.
    expect(await t.services.secrets.projectEnvironment(id)).toEqual({});
    const reactivated = await owner('PUT', `/api/projects/${id}/integrations/github`, {
      active: true,
    });
    expect(reactivated.body.integration.envNames).toEqual(['GITHUB_API_KEY']);
    expect(await t.services.secrets.projectEnvironment(id)).toEqual({
      GITHUB_API_KEY: 'ghp_abcdefghijklmnop1234',
    });
  });

  it('answers 400 naming the field for bad input, never echoing a secret', async () => {
    const id = await freshProject();
    const cases: [string, unknown, string][] = [
      ['stripe', {}, 'apiKey'],
      ['stripe', { apiKey: '' }, 'apiKey'],
      ['stripe', { apiKey: 'sk_live_bad\nline-0123' }, 'apiKey'],
      [
        'stripe',
        { apiKey: 'sk_test_ok0123456789', configuration: { secretKey: 'sk_live_nope' } },
        'configuration.secretKey',
      ],
      [
        'stripe',
        { apiKey: 'sk_test_ok0123456789', configuration: { nested: { password: 'p' } } },
        'configuration.nested.password',
      ],
      [
        'stripe',
        { apiKey: 'sk_test_ok0123456789', webhookUrl: 'ftp://example.test' },
        'webhookUrl',
      ],
      ['Bad Name', { apiKey: 'sk_test_ok0123456789' }, 'service'],
    ];
    for (const [service, body, field] of cases) {
      const res = await owner(
        'PUT',
        `/api/projects/${id}/integrations/${encodeURIComponent(service)}`,
        body,
      );
      expect(res.status, `${service} ${JSON.stringify(body)}`).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
      expect(res.body.error.details.map((d: { field: string }) => d.field)).toContain(field);
      expect(JSON.stringify(res.body)).not.toMatch(/sk_live/);
    }
    const notJson = await call(t.app, 'PUT', `/api/projects/${id}/integrations/stripe`, {
      token: people.owner.token,
      body: '{"apiKey": "sk_live_half',
    });
    expect(notJson.status).toBe(400);
    expect(JSON.stringify(notJson.body)).not.toContain('sk_live_half');
    expect((await owner('GET', `/api/projects/${id}/integrations`)).body.integrations).toEqual([]);
  });

  it('hides last4 for short keys and defaults the type of unknown services to other', async () => {
    const id = await freshProject();
    const res = await owner('PUT', `/api/projects/${id}/integrations/my-crm`, {
      apiKey: 'short-key',
    });
    expect(res.body.integration).toMatchObject({
      service: 'my-crm',
      serviceType: 'other',
      last4: null,
      envNames: ['MY_CRM_API_KEY'],
    });
  });

  it('tests offline: untested with the reason, a format warning, failed when the key cannot open', async () => {
    const id = await freshProject();
    await owner('PUT', `/api/projects/${id}/integrations/anthropic`, {
      apiKey: 'sk-ant-api03-abcdef',
    });
    const ok = await owner('POST', `/api/projects/${id}/integrations/anthropic/test`);
    expect(ok.status).toBe(200);
    expect(ok.body.test).toMatchObject({ result: 'untested' });
    expect(ok.body.test.message).toMatch(/No live check/);
    expect(ok.body.test.checks).toEqual([
      expect.objectContaining({ name: 'stored key opens', ok: true }),
      expect.objectContaining({ name: 'key format', ok: true }),
    ]);
    expect(ok.body.integration.lastTest).toEqual(ok.body.test);

    await owner('PUT', `/api/projects/${id}/integrations/anthropic`, {
      apiKey: 'not-an-anthropic-key',
    });
    const odd = await owner('POST', `/api/projects/${id}/integrations/anthropic/test`);
    expect(odd.body.test.result).toBe('untested');
    expect(odd.body.test.message).toMatch(/format looks wrong/);

    const db = t.services.db.withTables<{
      project_integrations: { project_id: string; api_key_encrypted: string };
    }>();
    await db
      .updateTable('project_integrations')
      .set({
        api_key_encrypted:
          'vf1:aes-256-gcm:mk000000000000:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA:AAAA',
      })
      .where('project_id', '=', id)
      .execute();
    const broken = await owner('POST', `/api/projects/${id}/integrations/anthropic/test`);
    expect(broken.status).toBe(200);
    expect(broken.body.test.result).toBe('failed');
    expect(broken.body.integration.status).toBe('failing');

    expect((await owner('POST', `/api/projects/${id}/integrations/absent/test`)).status).toBe(404);
  });

  it('counts usage when a server-side caller takes the credentials', async () => {
    const id = await freshProject();
    await owner('PUT', `/api/projects/${id}/integrations/openai`, {
      apiKey: 'sk-usage-0123456789',
    });
    expect(await t.services.secrets.integrationCredentials(id, 'openai')).toEqual({
      apiKey: 'sk-usage-0123456789',
    });
    await t.services.secrets.recordIntegrationError(id, 'openai');
    const got = (await owner('GET', `/api/projects/${id}/integrations/openai`)).body.integration;
    expect(got.usage).toMatchObject({ requestCount: 2, errorCount: 1 });
    expect(got.usage.lastRequestAt).toBeDefined();
    expect(got.usage.lastErrorAt).toBeDefined();
  });
});

describe('project environment', () => {
  it('sets, lists names only, removes with null or DELETE; values never come back', async () => {
    const id = await freshProject();
    const set = await owner('PUT', `/api/projects/${id}/env`, {
      vars: { API_BASE_URL: 'https://api.example.test', FEATURE_X: 'on', _PRIVATE: 'value-one' },
    });
    expect(set.status).toBe(200);
    expect(set.body).toEqual({
      names: ['API_BASE_URL', 'FEATURE_X', '_PRIVATE'],
      restartRequired: false,
    });

    const editorView = await as('editor')('GET', `/api/projects/${id}/env`);
    expect(editorView.body).toEqual({
      names: ['API_BASE_URL', 'FEATURE_X', '_PRIVATE'],
      fromIntegrations: [],
    });
    expect(JSON.stringify(editorView.body)).not.toMatch(/api\.example|value-one/);

    const changed = await owner('PUT', `/api/projects/${id}/env`, {
      vars: { FEATURE_X: null, NEW_ONE: 'two' },
    });
    expect(changed.body.names).toEqual(['API_BASE_URL', 'NEW_ONE', '_PRIVATE']);
    expect((await owner('DELETE', `/api/projects/${id}/env/_PRIVATE`)).status).toBe(204);
    expect(await t.services.secrets.projectEnvironment(id)).toEqual({
      API_BASE_URL: 'https://api.example.test',
      NEW_ONE: 'two',
    });
  });

  it('gives the runtime integration keys too, a project variable of the same name winning', async () => {
    const id = await freshProject();
    await owner('PUT', `/api/projects/${id}/integrations/stripe`, {
      apiKey: 'sk_test_fromintegration',
    });
    await owner('PUT', `/api/projects/${id}/integrations/sendgrid`, { apiKey: 'SG.abc.def' });
    await owner('PUT', `/api/projects/${id}/env`, { vars: { STRIPE_API_KEY: 'sk_test_override' } });
    expect(await t.services.secrets.projectEnvironment(id)).toEqual({
      STRIPE_API_KEY: 'sk_test_override',
      SENDGRID_API_KEY: 'SG.abc.def',
    });
    expect(await t.services.secrets.environmentNames(id)).toEqual([
      'SENDGRID_API_KEY',
      'STRIPE_API_KEY',
    ]);
    const names = await owner('GET', `/api/projects/${id}/env`);
    expect(names.body).toEqual({
      names: ['STRIPE_API_KEY'],
      fromIntegrations: ['SENDGRID_API_KEY'],
    });
  });

  it('refuses bad names and values with the field named, and more than 200 variables', async () => {
    const id = await freshProject();
    for (const [vars, field] of [
      [{ '1BAD': 'x' }, 'vars'],
      [{ 'WITH-DASH': 'x' }, 'vars'],
      [{ OK: 'nul\u0000byte' }, 'vars.OK'],
      [{ OK: 42 }, 'vars.OK'],
      [{ OK: 'x'.repeat(32 * 1024 + 1) }, 'vars.OK'],
    ] as [Record<string, unknown>, string][]) {
      const res = await owner('PUT', `/api/projects/${id}/env`, { vars });
      expect(res.status, JSON.stringify(Object.keys(vars))).toBe(400);
      expect(res.body.error.details.map((d: { field: string }) => d.field).join(' ')).toContain(
        field,
      );
    }
    const many = Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`V${i}`, 'x']));
    const tooMany = await owner('PUT', `/api/projects/${id}/env`, { vars: many });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.message).toMatch(/at most 200/);
    expect((await owner('GET', `/api/projects/${id}/env`)).body.names).toEqual([]);
    expect((await owner('DELETE', `/api/projects/${id}/env/bad-name`)).status).toBe(400);
  });

  it('tells members of the change (no restart: nothing runs), and logs names (never values) to the activity', async () => {
    const id = await freshProject();
    const events: unknown[] = [];
    const unsubscribe = await t.services.bus.subscribe(`project:${id}`, (m) => events.push(m));
    const put = await owner('PUT', `/api/projects/${id}/env`, {
      vars: { SHOWN_NAME: 'hidden-value-123' },
    });
    expect(put.body).toEqual({ names: ['SHOWN_NAME'], restartRequired: false });
    await new Promise((r) => setTimeout(r, 20));
    await unsubscribe();
    expect(events).toContainEqual({
      type: 'environment_changed',
      data: { names: ['SHOWN_NAME'], restartRequired: false },
    });
    const activity = await owner('GET', `/api/projects/${id}/activity`);
    const entry = activity.body.activity.find(
      (a: { type: string }) => a.type === 'environment_updated',
    );
    expect(entry.metadata).toEqual({ set: ['SHOWN_NAME'], removed: [] });
    expect(JSON.stringify(activity.body)).not.toContain('hidden-value-123');
  });

  it('goes with its project', async () => {
    const id = await freshProject();
    await owner('PUT', `/api/projects/${id}/env`, { vars: { A: '1' } });
    await owner('PUT', `/api/projects/${id}/integrations/stripe`, {
      apiKey: 'sk_test_gone0123456',
    });
    expect((await owner('DELETE', `/api/projects/${id}`)).status).toBe(204);
    expect(await t.services.secrets.projectEnvironment(id)).toEqual({});
  });
});

describe('OpenAPI', () => {
  it('documents every secrets route', async () => {
    const doc = (await call(t.app, 'GET', '/openapi.json')).body;
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/api/projects/{id}/integrations',
        '/api/projects/{id}/integrations/{service}',
        '/api/projects/{id}/integrations/{service}/test',
        '/api/projects/{id}/env',
        '/api/projects/{id}/env/{name}',
      ]),
    );
    expect(Object.keys(doc.paths['/api/projects/{id}/integrations/{service}'])).toEqual(
      expect.arrayContaining(['get', 'put', 'delete']),
    );
  });
});
