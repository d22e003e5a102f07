import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';

let t: TestApp;
let token: string;
let projectId: string;

const sources: Record<string, string> = {
  'src/users/service.ts': [
    "import { db } from '../db';",
    '',
    'export async function getUserById(userId: string) {',
    '  return db.users.find(userId);',
    '}',
    '',
    'export class UserService {',
    '  constructor(private readonly repo = db.users) {}',
    '}',
  ].join('\n'),
  'src/components/Counter.jsx': [
    'export function Counter() {',
    '  const [count, setCount] = useState(0);',
    '  return <button onClick={() => setCount(this.state.count + 1)}>{count}</button>;',
    '}',
  ].join('\r\n'),
  'app/main.py': [
    'def parse_user_id(raw):',
    '    return int(raw)  # user_id from the URL',
    '',
  ].join('\n'),
  'docs/notes.md': 'Nothing about code here; the café serves crème brûlée.\n',
  'assets/logo.png': '',
};

beforeAll(async () => {
  t = await createTestApp();
  ({ token } = await registerAndLogin(t.app));
  const res = await call(t.app, 'POST', '/api/projects', { token, body: { name: 'Search' } });
  projectId = res.body.project.id;
  for (const [path, content] of Object.entries(sources)) {
    const body =
      path === 'assets/logo.png'
        ? {
            content: Buffer.from([0x89, 0x50, 0, 0, 0x75, 0x73, 0x65, 0x72]).toString('base64'),
            encoding: 'base64',
          }
        : { content };
    const put = await call(t.app, 'PUT', `/api/projects/${projectId}/files/${path}`, {
      token,
      body,
    });
    expect(put.status).toBe(201);
  }
});

afterAll(async () => {
  await t?.close();
});

async function search(q: string, limit?: number) {
  const params = new URLSearchParams({ q, ...(limit ? { limit: String(limit) } : {}) });
  const res = await call(t.app, 'GET', `/api/projects/${projectId}/search?${params}`, { token });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as {
    results: { path: string; line: number; preview: string; kind: string }[];
    truncated: boolean;
  };
}

describe('search', () => {
  it('finds an identifier with its path, line number and line', async () => {
    const { results } = await search('getUserById');
    expect(results).toEqual([
      {
        path: 'src/users/service.ts',
        line: 3,
        preview: 'export async function getUserById(userId: string) {',
        kind: 'content',
      },
    ]);
  });

  it('matches camelCase parts, prefixes and punctuation-separated words (code, not English)', async () => {
    const user = await search('user');
    const contentPaths = new Set(
      user.results.filter((r) => r.kind === 'content').map((r) => r.path),
    );
    // getUserById, UserService, userId, parse_user_id, user_id: all code.
    expect(contentPaths).toEqual(new Set(['src/users/service.ts', 'app/main.py']));
    expect(user.results.filter((r) => r.kind === 'path').map((r) => r.path)).toEqual([
      'src/users/service.ts',
    ]);

    const prefix = await search('getUs');
    expect(prefix.results.map((r) => [r.path, r.line])).toEqual([['src/users/service.ts', 3]]);

    const member = await search('this.state');
    expect(member.results).toEqual([
      expect.objectContaining({ path: 'src/components/Counter.jsx', line: 3, kind: 'content' }),
    ]);
    expect(member.results[0]!.preview.endsWith('\r')).toBe(false);

    const snake = await search('parse_user_id');
    expect(snake.results.map((r) => [r.path, r.line])).toEqual([['app/main.py', 1]]);
  });

  it('finds words in any language, ignoring case, and never looks inside binary files', async () => {
    expect((await search('CAFÉ')).results.map((r) => r.path)).toEqual(['docs/notes.md']);
    const inBinary = await search('user');
    expect(inBinary.results.some((r) => r.path === 'assets/logo.png')).toBe(false);
  });

  it('matches file names and paths too', async () => {
    const { results } = await search('Counter.jsx');
    expect(results[0]).toEqual({
      path: 'src/components/Counter.jsx',
      line: 0,
      preview: 'src/components/Counter.jsx',
      kind: 'path',
    });
  });

  it('sees a write at once, forgets deleted files and follows moves', async () => {
    await call(t.app, 'PUT', `/api/projects/${projectId}/files/src/fresh.ts`, {
      token,
      body: { content: 'const zebraCrossing = 1;\n' },
    });
    expect((await search('zebraCrossing')).results.map((r) => r.path)).toEqual(['src/fresh.ts']);
    await call(t.app, 'POST', `/api/projects/${projectId}/move`, {
      token,
      body: { from: 'src/fresh.ts', to: 'lib/fresh.ts' },
    });
    expect((await search('zebraCrossing')).results.map((r) => r.path)).toEqual(['lib/fresh.ts']);
    await call(t.app, 'DELETE', `/api/projects/${projectId}/files/lib/fresh.ts`, { token });
    expect((await search('zebraCrossing')).results).toEqual([]);
  });

  it('caps results and says so; rejects an empty query', async () => {
    const capped = await search('user', 2);
    expect(capped.results).toHaveLength(2);
    expect(capped.truncated).toBe(true);
    const empty = await call(t.app, 'GET', `/api/projects/${projectId}/search?q=%20`, { token });
    expect(empty.status).toBe(400);
    const missing = await call(t.app, 'GET', `/api/projects/${projectId}/search`, { token });
    expect(missing.status).toBe(400);
  });

  it('indexes large files without refusing them (tsvector has a 1 MB limit)', async () => {
    const words = Array.from({ length: 120_000 }, (_, i) => `w${i.toString(36)}x`).join(' ');
    const put = await call(t.app, 'PUT', `/api/projects/${projectId}/files/big/words.txt`, {
      token,
      body: { content: `${words}\nneedleInTheHaystack\n` },
    });
    expect(put.status).toBe(201);
    // Beyond the indexed prefix, the path still matches.
    expect((await search('words.txt')).results[0]!.path).toBe('big/words.txt');
    expect((await search('w0x')).results.some((r) => r.path === 'big/words.txt')).toBe(true);
  });
});
