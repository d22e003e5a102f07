import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { isInside, pathProblem, resolveInside } from './paths.ts';

const root = '/srv/vaporform/workspaces/proj';

/** Pieces that attackers (and clumsy clients) put in paths. */
const hostile = fc.constantFrom(
  '..',
  '.',
  '',
  '/',
  '\\',
  '..\\',
  '%2e%2e',
  '%2F',
  '%252e%252e',
  '\u0000',
  '\n',
  '../proj2',
  '..%2f',
  '~',
  'C:',
  'a',
  'src',
  'app.ts',
  ' ',
  'é',
);
const hostilePath = fc
  .array(hostile, { minLength: 1, maxLength: 8 })
  .map((parts) => parts.join(''));
const anyString = fc.oneof(fc.string({ unit: 'binary', maxLength: 64 }), hostilePath);

/** Names a person might really use: unicode, spaces, dots, dashes, but never `.`/`..`. */
const goodSegment = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 24 })
  .filter((s) => pathProblem(s) === undefined);
const goodPath = fc
  .array(goodSegment, { minLength: 1, maxLength: 6 })
  .map((segments) => segments.join('/'))
  .filter((p) => pathProblem(p) === undefined);

describe('path rules (generated inputs)', () => {
  it('never lets an accepted path resolve outside (or onto) the workspace', () => {
    fc.assert(
      fc.property(anyString, (input) => {
        if (pathProblem(input) !== undefined) {
          expect(() => resolveInside(root, input)).toThrow();
          return;
        }
        const target = resolveInside(root, input);
        const rel = path.relative(root, target);
        expect(rel === '' || rel === '..' || rel.startsWith('../') || path.isAbsolute(rel)).toBe(
          false,
        );
        expect(target.startsWith(root + '/')).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects absolute paths, .. and . segments, NUL, backslashes, empty segments and escapes', () => {
    fc.assert(
      fc.property(goodPath, fc.nat(6), (good, n) => {
        const segments = good.split('/');
        const at = n % (segments.length + 1);
        const with_ = (bad: string) =>
          [...segments.slice(0, at), bad, ...segments.slice(at)].join('/');
        expect(pathProblem('/' + good)).toBeDefined();
        expect(pathProblem(with_('..'))).toBeDefined();
        expect(pathProblem(with_('.'))).toBeDefined();
        expect(pathProblem(with_(''))).toBeDefined();
        expect(pathProblem(good + '/')).toBeDefined();
        expect(pathProblem(with_('a\u0000b'))).toBeDefined();
        expect(pathProblem(with_('a\\b'))).toBeDefined();
        expect(pathProblem(with_('%2e%2e'))).toBeDefined();
        expect(pathProblem(with_('%2F'))).toBeDefined();
        expect(pathProblem(good)).toBeUndefined();
      }),
      { numRuns: 500 },
    );
  });

  it('limits paths to 1,024 bytes and names to 255', () => {
    expect(pathProblem('a/'.repeat(511) + 'bc')).toBeUndefined(); // 1,024 bytes
    expect(pathProblem('a/'.repeat(512) + 'b')).toMatch(/1024 bytes/);
    expect(pathProblem('é'.repeat(128))).toMatch(/255 bytes/); // 256 bytes in UTF-8
    expect(pathProblem('x'.repeat(255))).toBeUndefined();
  });

  it('compares resolved paths, never string prefixes: a sibling does not pass', () => {
    expect(isInside('/w/proj', '/w/proj2/x')).toBe(false);
    expect(isInside('/w/proj', '/w/proj/../proj2/x')).toBe(false);
    expect(isInside('/w/proj', '/w/proj/x/../y')).toBe(true);
    expect(() => resolveInside('/w/proj', '../proj2/x')).toThrow();
  });
});

describe('path rules over HTTP', () => {
  let t: TestApp;
  let token: string;
  let projectId: string;

  beforeAll(async () => {
    t = await createTestApp();
    ({ token } = await registerAndLogin(t.app));
    const res = await call(t.app, 'POST', '/api/projects', { token, body: { name: 'Paths' } });
    projectId = res.body.project.id;
  });

  afterAll(async () => {
    await t?.close();
  });

  it('answers 400 for every unacceptable path, in the URL or in a body, and writes nothing', async () => {
    const encodable = anyString.filter((s) => {
      try {
        encodeURIComponent(s);
        return pathProblem(s) !== undefined && s !== '.' && s !== '..' && s !== '';
      } catch {
        return false; // lone surrogates cannot be put in a URL at all
      }
    });
    await fc.assert(
      fc.asyncProperty(encodable, async (bad) => {
        const put = await call(
          t.app,
          'PUT',
          `/api/projects/${projectId}/files/${encodeURIComponent(bad)}`,
          { token, body: { content: 'x' } },
        );
        expect(put.status, JSON.stringify(bad)).toBe(400);
        expect(put.body.error.code).toBe('invalid_request');
        const move = await call(t.app, 'POST', `/api/projects/${projectId}/move`, {
          token,
          body: { from: 'seed.txt', to: bad },
        });
        expect(move.status, JSON.stringify(bad)).toBe(400);
      }),
      { numRuns: 60 },
    );
    const list = await call(t.app, 'GET', `/api/projects/${projectId}/files`, { token });
    expect(list.body.files).toEqual([]);
  });

  it('accepts any acceptable path, nested through the URL, and gives it back unchanged', async () => {
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(goodPath, async (good) => {
        if ([...seen].some((p) => p.startsWith(good + '/') || good.startsWith(p + '/'))) return;
        seen.add(good);
        const encoded = good.split('/').map(encodeURIComponent).join('/');
        const put = await call(t.app, 'PUT', `/api/projects/${projectId}/files/${encoded}`, {
          token,
          body: { content: good },
        });
        expect([200, 201], JSON.stringify({ good, body: put.body })).toContain(put.status);
        expect(put.body.file.path).toBe(good);
        const get = await call(t.app, 'GET', `/api/projects/${projectId}/files/${encoded}`, {
          token,
        });
        expect(get.body.content).toBe(good);
      }),
      { numRuns: 40 },
    );
  });

  it('never lets dot segments or encoded traversal in the URL reach a file', async () => {
    // `a/..` and `a/%2e%2e` are resolved by URL parsing itself (to `/files/`, no route);
    // encoded slashes keep one segment, which reaches the rules and is refused.
    const raws = ['..', '.', '%2e%2e', '..%2Fx', '%2e%2e%2f%2e%2e%2fetc', '..%5Cx', '%252e%252e/x'];
    for (const raw of raws) {
      const res = await call(t.app, 'PUT', `/api/projects/${projectId}/files/a/${raw}`, {
        token,
        body: { content: 'x' },
      });
      expect([400, 404], raw).toContain(res.status);
    }
  });
});
