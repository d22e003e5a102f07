import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, type TestApp } from '../../test/app.ts';
import { createWebUiRoutes } from './web-ui.ts';

describe('the built IDE at /', () => {
  let dist: string;
  let web: Hono;

  beforeAll(() => {
    dist = mkdtempSync(path.join(tmpdir(), 'vf-web-dist-'));
    mkdirSync(path.join(dist, 'assets'));
    writeFileSync(path.join(dist, 'index.html'), '<!doctype html><div id="root"></div>');
    writeFileSync(path.join(dist, 'assets', 'index-abc123.js'), 'console.log("app")');
    writeFileSync(path.join(dist, 'favicon.svg'), '<svg/>');
    writeFileSync(path.join(path.dirname(dist), 'vf-secret-outside.txt'), 'secret');
    web = new Hono().route('/', createWebUiRoutes(dist));
    web.notFound((c) => c.json({ error: { code: 'not_found', message: 'No such route' } }, 404));
  });

  afterAll(() => {
    rmSync(dist, { recursive: true, force: true });
    rmSync(path.join(path.dirname(dist), 'vf-secret-outside.txt'), { force: true });
  });

  it('answers client-side routes with index.html, never cached', async () => {
    for (const url of ['/', '/projects/2f6d9c1e-8f7b-4e0a-9a57-4d2f8e3c1b20', '/new', '/login']) {
      const res = await web.request(url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/html');
      expect(res.headers.get('cache-control')).toBe('no-cache');
      expect(await res.text()).toContain('<div id="root">');
    }
  });

  it('serves hashed assets with a year of immutable caching, other files revalidated', async () => {
    const asset = await web.request('/assets/index-abc123.js');
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toContain('text/javascript');
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(await asset.text()).toBe('console.log("app")');
    const icon = await web.request('/favicon.svg');
    expect(icon.headers.get('cache-control')).toBe('no-cache');
  });

  it('compresses what the browser accepts compressed', async () => {
    const res = await web.request('/assets/index-abc123.js', {
      headers: { 'accept-encoding': 'gzip' },
    });
    expect(res.headers.get('content-encoding')).toBe('gzip');
  });

  it('404s a missing asset instead of answering HTML for JavaScript', async () => {
    const res = await web.request('/assets/index-gone.js');
    expect(res.status).toBe(404);
  });

  it('never serves a file outside the build directory', async () => {
    for (const url of [
      '/../vf-secret-outside.txt',
      '/%2e%2e/vf-secret-outside.txt',
      '/assets/%2e%2e/%2e%2e/vf-secret-outside.txt',
    ]) {
      const res = await web.request(url);
      expect(await res.text()).not.toContain('secret');
    }
  });

  it('leaves /api paths to the API (JSON 404)', async () => {
    const res = await web.request('/api/nothing-here');
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: 'not_found' } });
  });

  it('explains how to build the IDE when there is no build, without failing', async () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'vf-web-empty-'));
    try {
      const res = await new Hono().route('/', createWebUiRoutes(empty)).request('/');
      expect(res.status).toBe(503);
      const page = await res.text();
      expect(page).toContain('not built');
      expect(page).toContain('npm run build:web');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('the IDE inside the composed server', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('keeps the API, the OpenAPI document and the docs ahead of the IDE', async () => {
    const unknown = await call(t.app, 'GET', '/api/no-such-thing');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ error: { code: 'not_found' } });
    const doc = await t.app.request('/openapi.json');
    expect(doc.headers.get('content-type')).toContain('application/json');
    expect(((await doc.json()) as { openapi: string }).openapi).toBe('3.1.0');
    const health = await call(t.app, 'GET', '/healthz');
    expect(health.body).toEqual({ status: 'ok' });
  });

  it('answers / with the IDE (or the build instructions), never a JSON 404', async () => {
    const res = await t.app.request('/projects/some-id');
    expect([200, 503]).toContain(res.status);
    expect(res.headers.get('content-type')).toContain('text/html');
  });

  it('sends a page asked for on another host to the public URL, and leaves the API alone', async () => {
    // The test server's public URL is http://localhost:4000 (test/app.ts).
    const other = await t.app.request('/projects/some-id?tab=files', {
      headers: { host: '127.0.0.1:4000' },
    });
    expect(other.status).toBe(302);
    expect(other.headers.get('location')).toBe('http://localhost:4000/projects/some-id?tab=files');
    // A forwarded host counts only from a trusted proxy: here it changes nothing.
    const forwarded = await t.app.request('/', {
      headers: { host: '127.0.0.1:4000', 'x-forwarded-host': 'localhost:4000' },
    });
    expect(forwarded.headers.get('location')).toBe('http://localhost:4000/');
    const home = await t.app.request('/projects/some-id', { headers: { host: 'localhost:4000' } });
    expect([200, 503]).toContain(home.status);
    const api = await t.app.request('/api/no-such-thing', { headers: { host: '127.0.0.1:4000' } });
    expect(api.status).toBe(404);
    expect(await api.json()).toMatchObject({ error: { code: 'not_found' } });
    const health = await t.app.request('/healthz', { headers: { host: '127.0.0.1:4000' } });
    expect(health.status).toBe(200);
  });

  it('does not answer API writes to unknown non-API paths with the IDE', async () => {
    const res = await t.app.request('/projects', { method: 'POST' });
    expect(res.status).toBe(404);
  });
});
