import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, type TestApp } from '../../../test/app.ts';
import type { TemplatesService } from './index.ts';

let t: TestApp;
let templates: TemplatesService;

beforeAll(async () => {
  t = await createTestApp();
  templates = t.services.templates;
});

afterAll(async () => {
  await t?.close();
});

const officialIds = [
  'node-http',
  'react-vite-pwa',
  'hono-api',
  'express-react',
  'python-fastapi',
  'go-http',
];

describe('GET /api/templates', () => {
  it('lists the official templates without auth, featured first', async () => {
    const res = await call(t.app, 'GET', '/api/templates');
    expect(res.status).toBe(200);
    const list = res.body.templates as { id: string; featured: boolean; official: boolean }[];
    expect(list.map((x) => x.id).sort()).toEqual([...officialIds].sort());
    const firstPlain = list.findIndex((x) => !x.featured);
    expect(list.slice(firstPlain).every((x) => !x.featured)).toBe(true);
    expect(list.every((x) => x.official)).toBe(true);
    const nodeHttp = list.find((x) => x.id === 'node-http');
    expect(nodeHttp).toMatchObject({
      name: 'Node.js HTTP (zero dependencies)',
      category: 'web-app',
      tags: expect.arrayContaining(['node']),
      techStack: { architecture: 'monolithic', backend: { framework: 'node:http' } },
    });
    expect(nodeHttp).not.toHaveProperty('files');
  });
});

describe('GET /api/templates/{id}', () => {
  it('returns files with contents and the run configuration', async () => {
    const res = await call(t.app, 'GET', '/api/templates/node-http');
    expect(res.status).toBe(200);
    const { template } = res.body;
    expect(template.run).toEqual({
      install: null,
      dev: 'node --watch-path=. server.js', // every save restarts it (migration 080)
      port: 3000,
      image: 'node',
    });
    const paths = (template.files as { path: string }[]).map((f) => f.path);
    expect(paths).toEqual(expect.arrayContaining(['package.json', 'server.js', 'index.html']));
    const server = (template.files as { path: string; content: string }[]).find(
      (f) => f.path === 'server.js',
    );
    expect(server!.content).toContain('createServer');
  });

  it('runs the Node.js templates in watch mode', async () => {
    for (const id of ['node-http', 'hono-api', 'express-react']) {
      const template = await templates.get(id);
      const pkg = JSON.parse(template.files.find((f) => f.path === 'package.json')!.content);
      const dev = template.run.dev === 'npm run dev' ? pkg.scripts.dev : template.run.dev;
      expect(dev, id).toMatch(/^node --watch(-path=\S+)? /);
    }
  });

  it('gives every official template a runnable configuration', async () => {
    for (const id of officialIds) {
      const template = await templates.get(id);
      expect(template.files.length, id).toBeGreaterThan(0);
      expect(template.run.dev, id).toBeTruthy();
      expect(template.run.port, id).toBeGreaterThan(0);
      expect(['node', 'python', 'go']).toContain(template.run.image);
    }
  });

  it('is 404 not_found for an unknown id', async () => {
    const res = await call(t.app, 'GET', '/api/templates/no-such-template');
    expect(res.status).toBe(404);
    expect(res.body.error).toEqual({ code: 'not_found', message: 'Template not found' });
  });
});

describe('TemplatesService', () => {
  it('recordUse counts uses; unknown ids throw not_found', async () => {
    const before = (await templates.get('go-http')).usageCount;
    await templates.recordUse('go-http');
    await templates.recordUse('go-http');
    expect((await templates.get('go-http')).usageCount).toBe(before + 2);
    await expect(templates.recordUse('nope')).rejects.toMatchObject({ code: 'not_found' });
    expect(await templates.find('nope')).toBeUndefined();
  });
});
