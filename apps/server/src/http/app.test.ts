import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../test/app.ts';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({ VAPORFORM_BODY_LIMIT_BYTES: '4096' });
});
afterAll(async () => {
  await t?.close();
});

describe('operations routes', () => {
  it('/healthz answers while the process is up', async () => {
    const res = await call(t.app, 'GET', '/healthz');
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('ok');
  });

  it('/readyz checks the database', async () => {
    const res = await call(t.app, 'GET', '/readyz');
    expect(res.status).toBe(200);
    expect(res.body.database).toBe('ok');
  });

  it('/metrics exposes process metrics, the request histogram by route and the seeds’ counters', async () => {
    const { token } = await registerAndLogin(t.app);
    const before = await call(t.app, 'GET', '/metrics');
    const created = Number(
      /^vaporform_projects_created_total (\d+)/m.exec(before.body)?.[1] ?? NaN,
    );
    await call(t.app, 'POST', '/api/projects', {
      token,
      body: { name: 'metered', description: 'x' },
    });
    await call(t.app, 'GET', '/api/projects/00000000-0000-4000-8000-000000000000', { token });
    const res = await call(t.app, 'GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    expect(res.body).toMatch(/^vaporform_process_cpu_user_seconds_total /m);
    expect(res.body).toMatch(/^vaporform_active_projects \d+/m);
    expect(Number(/^vaporform_projects_created_total (\d+)/m.exec(res.body)?.[1])).toBe(
      created + 1,
    );
    expect(res.body).toContain(
      'vaporform_http_request_duration_seconds_count{method="POST",route="/api/projects",status="201"}',
    );
    // Routes are labelled by pattern, never by concrete ids (bounded cardinality).
    expect(res.body).toContain('route="/api/projects/:id",status="404"');
    expect(res.body).not.toContain('00000000-0000-4000-8000-000000000000');
  });

  it('/docs serves an offline API reference for /openapi.json', async () => {
    const page = await t.app.request('/docs');
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('data-url="/openapi.json"');
    expect(html).not.toMatch(/https?:\/\/(cdn|unpkg|fonts)/);
    const script = await t.app.request('/docs/scalar.js');
    expect(script.status).toBe(200);
    expect((await script.text()).length).toBeGreaterThan(100_000);
  });
});

describe('the OpenAPI document', () => {
  it('is OpenAPI 3.1 and documents every JSON route the app serves', async () => {
    const res = await call(t.app, 'GET', '/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
    const documented = new Set<string>();
    for (const [path, ops] of Object.entries(res.body.paths as Record<string, object>)) {
      for (const method of Object.keys(ops)) documented.add(`${method.toUpperCase()} ${path}`);
    }
    const served = t.app.routes
      .filter((r) => r.path.startsWith('/api/') && r.method !== 'ALL')
      .map(
        (r) =>
          `${r.method} ${r.path.replace(/:(\w+)\{?[^/}]*\}?/g, '{$1}').replace(/\/\*$/, '/{path}')}`,
      );
    expect(served.length).toBeGreaterThan(10);
    const missing = [...new Set(served)].filter((r) => !documented.has(r));
    expect(missing).toEqual([]);
  });

  it('documents the error shape and bearer auth', async () => {
    const { body } = await call(t.app, 'GET', '/openapi.json');
    expect(body.components.schemas.Error).toBeTruthy();
    expect(body.components.securitySchemes.bearerAuth.scheme).toBe('bearer');
  });
});

describe('errors', () => {
  it('an unknown route is a JSON 404', async () => {
    const res = await call(t.app, 'GET', '/api/nope');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
  });

  it('the seeds’ internal (expose: false) endpoints are not reachable from outside', async () => {
    const { token } = await registerAndLogin(t.app);
    const project = await call(t.app, 'POST', '/api/projects', {
      token,
      body: { name: 'internal', description: '' },
    });
    const id = project.body.project.id;
    for (const [method, path] of [
      ['POST', `/api/projects/${id}/status`],
      ['POST', `/projects/${id}/status`],
      ['POST', '/api/claude/create-project'],
      ['POST', '/api/containers/create'],
    ] as const) {
      const res = await call(t.app, method, path, { token, body: { status: 'running' } });
      expect(res.status, `${method} ${path}`).toBe(404);
    }
    const after = await call(t.app, 'GET', `/api/projects/${id}`, { token });
    expect(after.body.project.status).not.toBe('running');
  });

  it('a body over the limit is 413 too_large, and nothing is created', async () => {
    const { token } = await registerAndLogin(t.app);
    const res = await call(t.app, 'POST', '/api/projects', {
      token,
      body: { name: 'big', description: 'x'.repeat(10_000) },
    });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('too_large');
    const list = await call(t.app, 'GET', '/api/projects', { token });
    expect(list.body.projects).toHaveLength(0);
  });

  it('malformed JSON, wrong types and missing fields are 400 with the fields named', async () => {
    const { token } = await registerAndLogin(t.app);
    const bad = await call(t.app, 'POST', '/api/projects', { token, body: '{"name": "x",' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
    const wrong = await call(t.app, 'POST', '/api/projects', {
      token,
      body: { name: 42, type: 'mainframe' },
    });
    expect(wrong.status).toBe(400);
    const fields = wrong.body.error.details.map((d: { field: string }) => d.field);
    expect(fields).toEqual(expect.arrayContaining(['name', 'type']));
  });

  it('marks every API response nosniff, errors included', async () => {
    const { token } = await registerAndLogin(t.app);
    const ok = await call(t.app, 'GET', '/api/projects', { token });
    const denied = await call(t.app, 'GET', '/api/projects');
    const missing = await call(t.app, 'GET', '/api/nope');
    for (const res of [ok, denied, missing]) {
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
    expect([ok.status, denied.status, missing.status]).toEqual([200, 401, 404]);
  });

  it('echoes a sane X-Request-Id and makes one up otherwise', async () => {
    const mine = await t.app.request('/healthz', {
      headers: { 'x-request-id': 'trace-abc-123456' },
    });
    expect(mine.headers.get('x-request-id')).toBe('trace-abc-123456');
    const junk = await t.app.request('/healthz', { headers: { 'x-request-id': 'bad id\n' } });
    expect(junk.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('a bug is a 500 without details or stack, and is logged with the request id', async () => {
    const broken = await createTestApp();
    try {
      const { token } = await registerAndLogin(broken.app);
      // Something no input can cause: the table under the route disappears.
      const client = new pg.Client({ connectionString: broken.databaseUrl });
      await client.connect();
      await client.query('ALTER TABLE project_members RENAME TO project_members_gone');
      await client.end();
      const res = await call(broken.app, 'GET', '/api/projects', {
        token,
        headers: { 'x-request-id': 'boom-request-1' },
      });
      expect(res.status).toBe(500);
      expect(res.body.error.code).toBe('internal');
      expect(JSON.stringify(res.body)).not.toMatch(/project_members|relation|at .*\.ts/);
      const line = broken.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'unhandled error');
      expect(line?.requestId).toBe('boom-request-1');
      expect(JSON.stringify(line)).toContain('project_members');
    } finally {
      await broken.close();
    }
  });
});
