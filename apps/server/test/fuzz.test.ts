import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeAnthropic, type FakeServer } from './fakes/anthropic.ts';
import { call, createTestApp, registerAndLogin, type TestApp } from './app.ts';
import {
  bodyOf,
  casesFor,
  operationsOf,
  urlOf,
  type FuzzCase,
  type KnownValues,
  type OpenApiDocument,
  type Operation,
} from './openapi-fuzz.ts';

/**
 * Every operation of the served /openapi.json, called through `app.request()` as the owner (or an
 * editor) of a real project with valid-ish and hostile values: NUL bytes, lone surrogates, odd
 * Unicode, huge strings, wrong types, broken JSON, bytes that are not UTF-8, raw percent escapes,
 * hostile zips. Bad input must be a 4xx in the error contract; the test fails listing every 5xx
 * (a 500 always; another 5xx unless the operation declares it, like a 503 for a missing
 * dependency) and every error body outside the contract, with its request and the server's
 * logged error.
 *
 * Budget: VF_FUZZ_RUNS cases per operation (default 60: some 4,000 cases), seed VF_FUZZ_SEED
 * (fixed by default, so CI runs the same cases every time). `npm run fuzz:nightly` runs more.
 *
 * Not fuzzed:
 * - POST /api/containers/{projectId}/start, /restart and /rebuild: each valid case starts the
 *   project's dev server (seconds per case). Their inputs are one project id (the access check,
 *   shared with every other project route) and `?wait`, fuzzed on /stop, which takes the same.
 * - WebSocket upgrades (/api/projects/{id}/ws, the terminal's upgrade): not in the document as
 *   requests `app.request()` can make; the terminal's plain GET (a 400) is fuzzed.
 */

const runsPerOperation = Number(process.env.VF_FUZZ_RUNS ?? 60);
const seed = Number(process.env.VF_FUZZ_SEED ?? 20_261_202);
/** Streams (logs, chat) are read for this long, then cancelled; a slower answer is a failure. */
const answerTimeoutMs = 15_000;
const streamReadMs = 1_000;

const skipped = new Set([
  'POST /api/containers/{projectId}/start',
  'POST /api/containers/{projectId}/restart',
  'POST /api/containers/{projectId}/rebuild',
]);

interface Failure {
  operation: string;
  request: string;
  status: number | 'timeout';
  response: string;
  serverError?: string;
}

describe('OpenAPI fuzz', () => {
  let t: TestApp;
  let ai: FakeServer;
  let owner: Awaited<ReturnType<typeof registerAndLogin>>;
  let editor: Awaited<ReturnType<typeof registerAndLogin>>;
  const known: KnownValues = {
    projectIds: [],
    userIds: [],
    filePaths: ['src/index.ts', 'README.md', 'src', 'src/new.txt', 'docs/a b.md'],
    services: ['stripe', 'github', 'custom-api'],
    envNames: ['API_URL', 'DATABASE_URL', 'NEW_VAR'],
    templateIds: [],
    requestIds: [],
    changesetIds: [],
  };

  beforeAll(async () => {
    ai = await startFakeAnthropic();
    // One scripted edit (for a real changeset), plain answers otherwise.
    ai.script((request) => {
      const last = request.body.messages.at(-1) as { role: string; content: unknown };
      return last.role === 'user' && JSON.stringify(last.content).includes('seed a changeset')
        ? { toolCalls: [{ name: 'write_file', input: { path: 'src/ai.ts', content: 'ai\n' } }] }
        : { text: 'Done.' };
    });
    t = await createTestApp({
      VAPORFORM_RUNTIME: 'process',
      ANTHROPIC_API_KEY: 'sk-ant-fuzz',
      ANTHROPIC_BASE_URL: ai.url,
      LOG_LEVEL: 'error',
      VAPORFORM_LOGIN_LIMIT_PER_IP: '1000000',
      VAPORFORM_LOGIN_LIMIT_PER_ACCOUNT: '1000000',
    });
    owner = await registerAndLogin(t.app, { name: 'Fuzz Owner' });
    editor = await registerAndLogin(t.app, { name: 'Fuzz Editor' });
    known.userIds.push(owner.user.id, editor.user.id);
    const templates = await call(t.app, 'GET', '/api/templates');
    known.templateIds.push(...templates.body.templates.map((x: { id: string }) => x.id));
    await newProject();
  });

  afterAll(async () => {
    await t?.close();
    await ai?.close();
  });

  /** A project owned by `owner`, with the editor, a file, an integration and a variable. */
  async function newProject(): Promise<string> {
    const token = owner.token;
    const created = await call(t.app, 'POST', '/api/projects', {
      token,
      body: { name: `fuzz ${known.projectIds.length}`, description: 'fuzzed' },
    });
    expect(created.status).toBe(201);
    const id: string = created.body.project.id;
    const base = `/api/projects/${id}`;
    const setup = [
      await call(t.app, 'POST', `${base}/members`, {
        token,
        body: { email: editor.user.email, role: 'editor' },
      }),
      await call(t.app, 'PUT', `${base}/files/src/index.ts`, {
        token,
        body: { content: 'export const a = 1;\n' },
      }),
      await call(t.app, 'PUT', `${base}/integrations/stripe`, {
        token,
        body: { apiKey: 'sk_test_fuzzfuzzfuzz1234', configuration: { mode: 'test' } },
      }),
      await call(t.app, 'PUT', `${base}/env`, {
        token,
        body: { vars: { API_URL: 'http://localhost' } },
      }),
    ];
    for (const s of setup) expect(s.status, JSON.stringify(s.body)).toBeLessThan(300);
    const modified = await call(t.app, 'POST', '/api/claude/modify', {
      token,
      body: { projectId: id, instruction: 'seed a changeset' },
    });
    expect(modified.status, JSON.stringify(modified.body)).toBe(200);
    if (modified.body.changesetId) known.changesetIds.unshift(modified.body.changesetId);
    known.projectIds.unshift(id);
    return id;
  }

  async function bareProject(): Promise<string> {
    const created = await call(t.app, 'POST', '/api/projects', {
      token: owner.token,
      body: { name: `throwaway ${Math.random()}` },
    });
    expect(created.status).toBe(201);
    return created.body.project.id;
  }

  /** The owner's session, again, after a case signed it out. */
  async function relogin(who: typeof owner): Promise<void> {
    const login = await call(t.app, 'POST', '/api/auth/login', {
      body: { email: who.user.email, password: who.password },
    });
    expect(login.status).toBe(200);
    who.token = login.body.token;
    who.refreshToken = login.body.refreshToken;
  }

  async function send(
    op: Operation,
    c: FuzzCase,
  ): Promise<{
    url: string;
    headers: Record<string, string>;
    body: string | Uint8Array | undefined;
    status: number | 'timeout';
    text: string;
  }> {
    // A deleted project is a throwaway one, so the others keep their files and members.
    const values =
      op.method === 'DELETE' && op.path === '/api/projects/{id}'
        ? { ...known, projectIds: [await bareProject()] }
        : known;
    const url = urlOf(op, c, values);
    const body = bodyOf(c, values);
    const headers: Record<string, string> = {};
    if (c.caller === 'owner') headers.authorization = `Bearer ${owner.token}`;
    if (c.caller === 'editor') headers.authorization = `Bearer ${editor.token}`;
    if (c.caller === 'garbage') headers.authorization = 'Bearer eyJhbGciOiJub25lIn0.e30.';
    if (c.body?.contentType) headers['content-type'] = c.body.contentType;
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), answerTimeoutMs);
    });
    try {
      const res = await Promise.race([
        t.app.request(url, {
          method: op.method,
          headers,
          ...(body !== undefined && op.method !== 'GET' ? { body } : {}),
          signal: controller.signal,
        }),
        timeout,
      ]);
      if (res === 'timeout') {
        controller.abort();
        return { url, headers, body, status: 'timeout', text: '' };
      }
      return { url, headers, body, status: res.status, text: await readSome(res) };
    } finally {
      clearTimeout(timer);
    }
  }

  it('refuses NUL and unpaired surrogates with 400 invalid_request naming the field', async () => {
    const project = known.projectIds[0]!;
    const base = `/api/projects/${project}`;
    const token = owner.token;
    // Raw bodies keep the JSON escapes exactly as a client sends them.
    const cases: { method: string; url: string; body?: string; field: string }[] = [
      {
        method: 'POST',
        url: '/api/auth/register',
        body: '{"email":"nul@example.test","password":"long enough!","name":"a\\u0000b"}',
        field: 'name',
      },
      {
        method: 'POST',
        url: '/api/auth/login',
        body: '{"email":"x\\u0000@example.test","password":"whatever1"}',
        field: 'email',
      },
      {
        method: 'POST',
        url: '/api/projects',
        body: '{"name":"ok","description":"bad \\u0000 description"}',
        field: 'description',
      },
      {
        method: 'PATCH',
        url: base,
        body: '{"config":{"backend":{"language":"\\ud800"}}}',
        field: 'config.backend.language',
      },
      {
        method: 'PUT',
        url: `${base}/integrations/custom-api`,
        body: '{"apiKey":"sk_live_0123456789","configuration":{"nested":{"deep":["ok","\\u0000"]}}}',
        field: 'configuration.nested.deep.1',
      },
      {
        method: 'PUT',
        url: `${base}/integrations/custom-api`,
        body: '{"apiKey":"sk_live_0123456789","configuration":{"\\udfff":1}}',
        field: 'configuration.\udfff',
      },
      {
        method: 'POST',
        url: '/api/claude/process',
        body: JSON.stringify({
          projectId: project,
          message: 'hello',
          type: 'modify',
          context: { selection: 'x\ud83d' },
        }),
        field: 'context.selection',
      },
      { method: 'GET', url: '/api/projects?q=%00', field: 'q' },
      { method: 'GET', url: `${base}/search?q=a%00b`, field: 'q' },
      { method: 'GET', url: `${base}/activity?before=%00`, field: 'before' },
      { method: 'GET', url: '/api/templates/%00', field: 'id' },
      {
        method: 'PUT',
        url: `${base}/files/notes.txt`,
        body: '{"content":"half an emoji: \\ud83d"}',
        field: 'content',
      },
    ];
    for (const c of cases) {
      const res = await call(t.app, c.method, c.url, {
        token,
        ...(c.body === undefined ? {} : { body: c.body }),
      });
      expect(res.status, `${c.method} ${c.url} ${c.body ?? ''}`).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
      expect(
        res.body.error.details.map((d: { field: string }) => d.field),
        `${c.method} ${c.url}`,
      ).toContain(c.field);
    }
    // NUL in a file's text is content, not a name: still stored (as base64), same bytes.
    const nul = await call(t.app, 'PUT', `${base}/files/with-nul-byte.txt`, {
      token,
      body: '{"content":"a\\u0000b"}',
    });
    expect(nul.status, JSON.stringify(nul.body)).toBe(201);
    // Astral characters (valid surrogate pairs) are text like any other.
    const emoji = await call(t.app, 'PATCH', base, {
      token,
      body: { description: 'rocket \u{1f680}' },
    });
    expect(emoji.status).toBe(200);
    expect(emoji.body.project.description).toBe('rocket \u{1f680}');
  });

  it('refuses JSON nested deeper than 64 levels in fields of arbitrary JSON (was a stack overflow)', async () => {
    const project = known.projectIds[0]!;
    const nested = (depth: number) => `${'['.repeat(depth)}"x"${']'.repeat(depth)}`;
    const requests = (value: string) => [
      {
        method: 'PUT',
        url: `/api/projects/${project}/integrations/custom-api`,
        body: `{"apiKey":"sk_live_0123456789","configuration":{"a":${value}}}`,
      },
      {
        method: 'POST',
        url: '/api/claude/process',
        body: `{"projectId":"${project}","message":"hi","type":"modify","context":{"a":${value}}}`,
      },
    ];
    for (const r of requests(nested(20))) {
      const res = await call(t.app, r.method, r.url, { token: owner.token, body: r.body });
      expect(res.status, `${r.method} ${r.url}`).toBeLessThan(300);
    }
    for (const depth of [100, 20_000, 300_000]) {
      for (const r of requests(nested(depth))) {
        const res = await call(t.app, r.method, r.url, { token: owner.token, body: r.body });
        expect(res.status, `${r.method} ${r.url} nested ${depth} deep`).toBe(400);
        expect(res.body.error.code).toBe('invalid_request');
      }
    }
  });

  it('refuses version numbers past PostgreSQL integers with 400 (was a failed query)', async () => {
    const base = `/api/projects/${known.projectIds[0]!}`;
    const tooBig = [
      call(t.app, 'POST', `${base}/restore`, {
        token: owner.token,
        body: { path: 'src/index.ts', version: 2 ** 53 - 1 },
      }),
      call(t.app, 'GET', `${base}/history/src/index.ts?version=2147483648`, { token: owner.token }),
      call(t.app, 'GET', `${base}/history/src/index.ts?before=2147483648`, { token: owner.token }),
      call(t.app, 'DELETE', `${base}/files/src/index.ts?baseVersion=2147483648`, {
        token: owner.token,
      }),
    ];
    for (const res of await Promise.all(tooBig)) {
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
    }
  });

  it(
    `answers every generated request with no 5xx (${runsPerOperation} cases per operation, seed ${seed})`,
    async () => {
      const doc = (await call(t.app, 'GET', '/openapi.json')).body as OpenApiDocument;
      const ops = operationsOf(doc).filter((op) => !skipped.has(`${op.method} ${op.path}`));
      expect(ops.length).toBeGreaterThan(40);
      const failures: Failure[] = [];
      const statuses = new Map<number | 'timeout', number>();
      const perOperation: string[] = [];
      const started = performance.now();
      let total = 0;
      for (const [index, op] of ops.entries()) {
        const name = `${op.method} ${op.path}`;
        const cases = fc.sample(casesFor(op, doc), {
          seed: seed + index,
          numRuns: runsPerOperation,
        });
        const opStatuses = new Map<number | 'timeout', number>();
        const opStarted = performance.now();
        for (const c of cases) {
          const logsBefore = t.logs.length;
          const res = await send(op, c);
          total++;
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          opStatuses.set(res.status, (opStatuses.get(res.status) ?? 0) + 1);
          const contractBroken =
            typeof res.status === 'number' && res.status >= 400 && !isErrorBody(res.text);
          // A 500 is always a bug; another 5xx only when the operation does not declare it
          // (e.g. a 503 for a Terraform provider this machine lacks is the contract).
          const undeclared5xx =
            typeof res.status === 'number' &&
            res.status >= 500 &&
            (res.status === 500 || !op.declared5xx.includes(res.status));
          if (res.status === 'timeout' || undeclared5xx || contractBroken) {
            const serverError = t.logs
              .slice(logsBefore)
              .map(errorOfLogLine)
              .filter(Boolean)
              .join(' | ');
            failures.push({
              operation: name,
              request: describeRequest(op.method, res.url, res.headers, res.body),
              status: res.status,
              response: res.text.slice(0, 300),
              ...(serverError ? { serverError } : {}),
            });
          }
          await repairState(op, c, res.status);
          if (op.method === 'POST' && op.path === '/api/claude/process' && res.status === 202) {
            known.requestIds.unshift((JSON.parse(res.text) as { requestId: string }).requestId);
          }
        }
        const ms = Math.round(performance.now() - opStarted);
        perOperation.push(`  ${name}: ${countsOf(opStatuses)} (${ms} ms)`);
      }
      const seconds = (performance.now() - started) / 1000;
      console.log(
        `fuzz: ${total} cases over ${ops.length} operations in ${seconds.toFixed(1)} s ` +
          `(seed ${seed}); statuses ${countsOf(statuses)}; ${failures.length} failures`,
      );
      if (process.env.VF_FUZZ_VERBOSE) console.log(perOperation.join('\n'));
      expect(failures, report(failures)).toEqual([]);
    },
    // Generous: the default budget takes well under a minute on two busy cores.
    Math.max(120_000, runsPerOperation * 60 * 100),
  );

  /** Puts back what a successful case took away: the session, the editor's membership. */
  async function repairState(
    op: Operation,
    c: FuzzCase,
    status: number | 'timeout',
  ): Promise<void> {
    if (status === 'timeout' || status >= 300) {
      if (status === 401 && (c.caller === 'owner' || c.caller === 'editor')) {
        const who = c.caller === 'owner' ? owner : editor;
        const me = await call(t.app, 'GET', '/api/auth/me', { token: who.token });
        if (me.status === 401) await relogin(who);
      }
      return;
    }
    const name = `${op.method} ${op.path}`;
    if (name === 'POST /api/auth/logout') {
      await relogin(c.caller === 'editor' ? editor : owner);
    }
    if (name === 'DELETE /api/projects/{id}/members/{userId}' || name.includes('/members')) {
      const projectId = known.projectIds[0]!;
      const members = await call(t.app, 'GET', `/api/projects/${projectId}/members`, {
        token: owner.token,
      });
      const hasEditor = members.body.members?.some(
        (m: { userId: string; role: string }) => m.userId === editor.user.id && m.role === 'editor',
      );
      if (!hasEditor) {
        await call(t.app, 'DELETE', `/api/projects/${projectId}/members/${editor.user.id}`, {
          token: owner.token,
        });
        await call(t.app, 'POST', `/api/projects/${projectId}/members`, {
          token: owner.token,
          body: { email: editor.user.email, role: 'editor' },
        });
      }
    }
  }
});

/** Reads a response body, at most 64 KiB and for at most a second (streams never end). */
async function readSome(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const deadline = Date.now() + streamReadMs;
  try {
    while (size < 65_536) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      let timer: NodeJS.Timeout | undefined;
      const next = await Promise.race([
        reader.read(),
        new Promise<'late'>((resolve) => {
          timer = setTimeout(() => resolve('late'), left);
        }),
      ]);
      clearTimeout(timer);
      if (next === 'late' || next.done) break;
      chunks.push(next.value);
      size += next.value.length;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function countsOf(statuses: Map<number | 'timeout', number>): string {
  return [...statuses]
    .sort((a, b) => String(a[0]).localeCompare(String(b[0])))
    .map(([s, n]) => `${s}×${n}`)
    .join(' ');
}

function isErrorBody(text: string): boolean {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    return typeof body.error?.code === 'string' && typeof body.error.message === 'string';
  } catch {
    return false;
  }
}

/** The error message of an `unhandled error` (or other error-level) log line, if it is one. */
function errorOfLogLine(line: string): string | undefined {
  try {
    const entry = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
    if ((entry.level ?? 0) < 50 || entry.msg === 'request') return undefined;
    return `${entry.msg}: ${entry.err?.message ?? ''}`.slice(0, 300);
  } catch {
    return undefined;
  }
}

function describeRequest(
  method: string,
  url: string,
  headers: Record<string, string>,
  body: string | Uint8Array | undefined,
): string {
  const shown = { ...headers };
  if (shown.authorization) shown.authorization = 'Bearer …';
  const bodyText =
    body === undefined
      ? ''
      : typeof body === 'string'
        ? ` body ${JSON.stringify(body.length > 400 ? `${body.slice(0, 400)}…(${body.length})` : body)}`
        : ` body <${body.length} bytes ${Buffer.from(body.slice(0, 60)).toString('hex')}>`;
  return `${method} ${url.length > 400 ? `${url.slice(0, 400)}…` : url} ${JSON.stringify(shown)}${bodyText}`;
}

function report(failures: Failure[]): string {
  if (failures.length === 0) return '';
  const lines = failures.map(
    (f) =>
      `- ${f.status} ${f.operation}\n    request: ${f.request}\n    response: ${f.response}` +
      (f.serverError ? `\n    server: ${f.serverError}` : ''),
  );
  return `${failures.length} requests answered 5xx or outside the error contract:\n${lines.join('\n')}`;
}
