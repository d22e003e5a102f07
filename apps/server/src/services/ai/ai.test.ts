import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { startFakeAnthropic, type FakeServer } from '../../../test/fakes/anthropic.ts';
import { until } from '../../../test/wait.ts';
import { AiStore } from './store.ts';

type Session = Awaited<ReturnType<typeof registerAndLogin>>;

let fake: FakeServer;
let t: TestApp;
let owner: Session;
let editor: Session;
let viewer: Session;
let stranger: Session;

beforeAll(async () => {
  fake = await startFakeAnthropic();
  t = await createTestApp({
    ANTHROPIC_API_KEY: 'sk-ant-test-key',
    ANTHROPIC_BASE_URL: fake.url,
    VAPORFORM_AI_LOOP_LIMIT: '3',
  });
  [owner, editor, viewer, stranger] = (await Promise.all(
    Array.from({ length: 4 }, () => registerAndLogin(t.app)),
  )) as [Session, Session, Session, Session];
});

afterAll(async () => {
  await t?.close();
  await fake?.close();
});

let projectId: string;

beforeEach(async () => {
  const res = await call(t.app, 'POST', '/api/projects', {
    token: owner.token,
    body: { name: `AI ${Math.random().toString(36).slice(2)}`, description: 'A counter app' },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  projectId = res.body.project.id;
  for (const [who, role] of [
    [editor, 'editor'],
    [viewer, 'viewer'],
  ] as const) {
    const added = await call(t.app, 'POST', `/api/projects/${projectId}/members`, {
      token: owner.token,
      body: { email: who.user.email, role },
    });
    expect(added.status).toBe(201);
  }
});

async function put(path: string, content: string): Promise<void> {
  const res = await call(t.app, 'PUT', `/api/projects/${projectId}/files/${path}`, {
    token: owner.token,
    body: { content },
  });
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
}

async function read(path: string): Promise<{ status: number; content?: string }> {
  const res = await call(t.app, 'GET', `/api/projects/${projectId}/files/${path}`, {
    token: owner.token,
  });
  return { status: res.status, content: res.body?.content };
}

/** The tool_result blocks the model received in request `n` (0-based). */
function toolResults(n: number): { content: string; is_error?: boolean }[] {
  const messages = fake.requests[n]!.body.messages as { role: string; content: unknown }[];
  const last = messages.at(-1)!;
  return (last.content as { type: string; content: string; is_error?: boolean }[]).filter(
    (b) => b.type === 'tool_result',
  );
}

function modify(session: Session, instruction: string) {
  return call(t.app, 'POST', '/api/claude/modify', {
    token: session.token,
    body: { projectId, instruction },
  });
}

/** Reads an SSE response into [{event, data}]. */
async function sseEvents(res: Response): Promise<{ event: string; data: any }[]> {
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((block) => block.trim())
    .map((block) => {
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n');
      return { event, data: JSON.parse(data) };
    });
}

describe('POST /api/claude/modify', () => {
  it('edits through the tools, answers ClaudeResponse with a changeset, and records the interaction', async () => {
    await put('src/counter.js', 'let count = 0;\nexport function inc() { count += 1; }\n');
    await put('old.txt', 'obsolete\n');
    fake.script([
      { text: 'Looking at the project.', toolCalls: [{ name: 'list_files', input: {} }] },
      { toolCalls: [{ name: 'read_file', input: { path: 'src/counter.js' } }] },
      {
        toolCalls: [
          {
            name: 'edit_file',
            input: { path: 'src/counter.js', old_str: 'count += 1', new_str: 'count += 2' },
          },
          { name: 'write_file', input: { path: 'README.md', content: '# Counter\n' } },
          { name: 'delete_file', input: { path: 'old.txt' } },
          { name: 'search_files', input: { query: 'count' } },
        ],
      },
      { text: 'Counter now steps by two.' },
    ]);
    const res = await modify(editor, 'Make the counter step by two');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({
      success: true,
      message: 'Looking at the project.\n\nCounter now steps by two.',
      commands: [],
    });
    expect(res.body.changesetId).toMatch(/^[0-9a-f-]{36}$/);
    const changes = Object.fromEntries(
      (res.body.changes as { path: string; operation: string; content: string }[]).map((c) => [
        c.path,
        c,
      ]),
    );
    expect(changes['src/counter.js']).toMatchObject({ operation: 'update' });
    expect(changes['src/counter.js']!.content).toContain('count += 2');
    expect(changes['README.md']).toMatchObject({ operation: 'create', content: '# Counter\n' });
    expect(changes['old.txt']).toMatchObject({ operation: 'delete' });

    // The project really changed, through the files service (versions with source claude).
    expect((await read('src/counter.js')).content).toContain('count += 2');
    expect((await read('README.md')).content).toBe('# Counter\n');
    expect((await read('old.txt')).status).toBe(404);
    const history = await call(t.app, 'GET', `/api/projects/${projectId}/history/src/counter.js`, {
      token: owner.token,
    });
    expect(history.body.versions[0]).toMatchObject({ source: 'claude', createdBy: editor.user.id });

    // What the model saw: the listing, the file, and each tool's outcome.
    expect(toolResults(1)[0]!.content).toContain('src/counter.js');
    expect(toolResults(2)[0]!.content).toBe(
      'let count = 0;\nexport function inc() { count += 1; }\n',
    );
    const results = toolResults(3);
    expect(results.map((r) => r.is_error ?? false)).toEqual([false, false, false, false]);
    expect(results[3]!.content).toContain('src/counter.js:1: let count = 0;');

    // Prompt caching on the stable prefix; the tool contract; the system prompt's contents.
    const first = fake.requests[0]!.body;
    expect(first.system[0].cache_control).toEqual({ type: 'ephemeral' });
    expect(first.model).toBe('claude-sonnet-5-5');
    expect((first.tools as { name: string }[]).map((tool) => tool.name)).toEqual([
      'list_files',
      'read_file',
      'write_file',
      'edit_file',
      'delete_file',
      'search_files',
      'run_command',
      'read_logs',
    ]);
    expect(first.system[0].text).toContain('Prefer edit_file');
    expect(first.system[0].text).toContain('src/counter.js');

    // The changeset, with a unified diff.
    const cs = await call(
      t.app,
      'GET',
      `/api/projects/${projectId}/changesets/${res.body.changesetId}`,
      { token: editor.token },
    );
    expect(cs.status).toBe(200);
    const diff = cs.body.changeset.files.find((f: { path: string }) => f.path === 'src/counter.js');
    expect(diff.diff).toContain('-export function inc() { count += 1; }');
    expect(diff.diff).toContain('+export function inc() { count += 2; }');

    // The interaction, with token usage; the histogram.
    const { rows } = await t.services.pool.query(
      `SELECT interaction_type, success, affected_files, input_tokens, output_tokens, total_tokens,
              provider, model, changeset_id FROM claude_interactions WHERE project_id = $1`,
      [projectId],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      interaction_type: 'file_modification',
      success: true,
      provider: 'anthropic',
      model: 'claude-sonnet-5-5',
      changeset_id: res.body.changesetId,
    });
    expect(rows[0].affected_files.sort()).toEqual(['README.md', 'old.txt', 'src/counter.js']);
    expect(rows[0].input_tokens).toBeGreaterThan(0);
    expect(rows[0].total_tokens).toBe(rows[0].input_tokens + rows[0].output_tokens);
    const metrics = await call(t.app, 'GET', '/metrics');
    expect(metrics.body).toMatch(
      /vaporform_claude_request_duration_seconds_count\{type="modify",outcome="ok"\} [1-9]/,
    );
  });

  it('answers edit_file no-match and multi-match with errors the model recovers from', async () => {
    await put('a.txt', 'x = 1\nx = 1\n');
    fake.script([
      {
        toolCalls: [
          { name: 'edit_file', input: { path: 'a.txt', old_str: 'y = 2', new_str: 'y = 3' } },
          { name: 'edit_file', input: { path: 'a.txt', old_str: 'x = 1', new_str: 'x = 2' } },
          { name: 'read_file', input: { path: 'missing.txt' } },
          { name: 'write_file', input: { path: '../escape.txt', content: 'no' } },
        ],
      },
      {
        toolCalls: [
          {
            name: 'edit_file',
            input: { path: 'a.txt', old_str: 'x = 1\nx = 1', new_str: 'x = 2' },
          },
        ],
      },
      { text: 'Done.' },
    ]);
    const res = await modify(editor, 'Set x to 2');
    expect(res.status).toBe(200);
    expect(res.body.success).toBe(true);
    const [noMatch, multi, missing, escape] = toolResults(1);
    expect(noMatch).toMatchObject({ is_error: true });
    expect(noMatch!.content).toContain('old_str was not found in a.txt');
    expect(multi).toMatchObject({ is_error: true });
    expect(multi!.content).toContain('old_str occurs 2 times in a.txt');
    expect(missing).toMatchObject({ is_error: true });
    expect(missing!.content).toContain('missing.txt does not exist');
    expect(escape).toMatchObject({ is_error: true });
    expect(toolResults(2)[0]).toMatchObject({ is_error: false });
    expect((await read('a.txt')).content).toBe('x = 2\n');
  });

  it('shows the model environment variable names, never their values, and redacts echoes', async () => {
    const secret = 'sk_live_very_secret_value_42';
    const env = await call(t.app, 'PUT', `/api/projects/${projectId}/env`, {
      token: owner.token,
      body: { vars: { PAYMENT_KEY: secret } },
    });
    expect(env.status).toBe(200);
    await put('config.js', `export const key = '${secret}';\n`);
    fake.script([
      { toolCalls: [{ name: 'read_file', input: { path: 'config.js' } }] },
      { text: 'It reads PAYMENT_KEY.' },
    ]);
    const res = await modify(editor, 'Where is the payment key?');
    expect(res.status).toBe(200);
    expect(fake.requests[0]!.body.system[0].text).toContain('PAYMENT_KEY');
    expect(toolResults(1)[0]!.content).toBe("export const key = '[redacted PAYMENT_KEY]';\n");
    for (const r of fake.requests) expect(JSON.stringify(r.body)).not.toContain(secret);
    expect(t.logs.join('\n')).not.toContain(secret);
  });

  it('redacts the forms commands and files show secrets in: escaped, encoded, wrapped, split', async () => {
    const vars = {
      API_TOKEN: 'tok_"Zq9\\x7Lm3Pw8Rt5"_end',
      DATABASE_URL: 'postgres://app:S3cretPassw0rd!@db.internal:5432/app',
      TLS_KEY: [
        '-----BEGIN PRIVATE KEY-----',
        'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj',
        'Bf3kq0ZVgn6JDk9wTBBbq1QzN9dT3HkYpXn7oW2sLr5vGmA8cE1uJ4tRy6eFhI0',
        '-----END PRIVATE KEY-----',
      ].join('\n'),
    };
    const env = await call(t.app, 'PUT', `/api/projects/${projectId}/env`, {
      token: owner.token,
      body: { vars },
    });
    expect(env.status, JSON.stringify(env.body)).toBe(200);
    const dump = Object.entries(vars)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n');
    // What `env | base64` prints: the whole environment, wrapped at 76 columns.
    const wrapped = (
      Buffer.from(`HOME=/app\n${dump}\n`)
        .toString('base64')
        .match(/.{1,76}/g) ?? []
    ).join('\n');
    const leaks = {
      json: JSON.stringify(vars),
      base64: wrapped,
      base64url: Buffer.from(`x${vars.API_TOKEN}`).toString('base64url'),
      hex: Buffer.from(vars.API_TOKEN).toString('hex'),
      urlEncoded: `token=${encodeURIComponent(vars.API_TOKEN)}`,
      tty: vars.TLS_KEY.replace(/\n/g, '\r\n'),
      keyLine: `partial: ${vars.TLS_KEY.split('\n')[2]}`,
      password: 'auth failed for app with password S3cretPassw0rd!',
    };
    await put('leaks.txt', Object.values(leaks).join('\n---\n'));
    fake.script([
      { toolCalls: [{ name: 'read_file', input: { path: 'leaks.txt' } }] },
      { text: 'Done.' },
    ]);
    const res = await modify(editor, 'What is in leaks.txt?');
    expect(res.status).toBe(200);
    const seen = toolResults(1)[0]!.content;
    expect(seen).toContain('[redacted TLS_KEY]');
    expect(seen).toContain('[redacted API_TOKEN]');
    expect(seen).toContain('[redacted DATABASE_URL]');
    const sent = fake.requests.map((r) => JSON.stringify(r.body)).join('\n');
    const forbidden = [
      ...Object.values(vars),
      'S3cretPassw0rd',
      'Zq9',
      vars.TLS_KEY.split('\n')[1]!,
      vars.TLS_KEY.split('\n')[2]!,
    ];
    for (const value of forbidden) expect(sent).not.toContain(value);
    // Every encoded form was caught (nothing decodable is left where a value was).
    const parts = seen.split('\n---\n');
    expect(parts).toHaveLength(Object.keys(leaks).length);
    for (const [form, part] of Object.keys(leaks).map((k, i) => [k, parts[i]!] as const)) {
      expect(part, form).toContain('[redacted ');
    }
    expect(parts[1]!.match(/\[redacted (\w+)\]/g)).toEqual(
      expect.arrayContaining([
        '[redacted API_TOKEN]',
        '[redacted DATABASE_URL]',
        '[redacted TLS_KEY]',
      ]),
    );
  });
});

describe('limits', () => {
  it('stops a run over its token budget with a clear message', async () => {
    fake.script([
      {
        toolCalls: [{ name: 'list_files', input: {} }],
        usage: { input: 300_000, output: 150_000 },
      },
      { text: 'never reached' },
    ]);
    const res = await modify(editor, 'Do a lot');
    expect(res.status).toBe(200);
    expect(res.body.success).toBe(false);
    expect(res.body.message).toContain('over its budget of 400000');
    expect(fake.requests).toHaveLength(1);
  });

  it('breaks a loop of the same failing tool call', async () => {
    const failing = { name: 'read_file', input: { path: 'nope.txt' } };
    fake.script(Array.from({ length: 10 }, () => ({ toolCalls: [failing] })));
    const res = await modify(editor, 'Read nope.txt');
    expect(res.status).toBe(200);
    expect(res.body.success).toBe(false);
    expect(res.body.message).toContain('the same read_file call failed 3 times');
    expect(fake.requests).toHaveLength(3);
    const { rows } = await t.services.pool.query(
      `SELECT success, stop_reason, error_message FROM claude_interactions
        WHERE project_id = $1 ORDER BY created_at DESC LIMIT 1`,
      [projectId],
    );
    expect(rows[0]).toMatchObject({ success: false, stop_reason: 'loop' });
  });

  it('turns a provider failure into 503 with the provider’s reason', async () => {
    fake.script([{ error: { status: 400, type: 'invalid_request_error', message: 'bad model' } }]);
    const res = await modify(editor, 'Anything');
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('unavailable');
    expect(res.body.error.message).toContain('bad model');
  });
});

describe('POST /api/projects/:id/chat', () => {
  it('streams text, tool, file_change and done in order, and keeps the history', async () => {
    await put('index.html', '<h1>Hello</h1>\n');
    fake.script([
      {
        text: 'I will change the title.',
        toolCalls: [
          {
            name: 'edit_file',
            input: { path: 'index.html', old_str: '<h1>Hello</h1>', new_str: '<h1>Hi there</h1>' },
          },
        ],
      },
      { text: 'The title now says Hi there.' },
    ]);
    const res = await t.app.request(`/api/projects/${projectId}/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${editor.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'Change the title to Hi there' }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const events = await sseEvents(res);
    const kinds = events.map((e) => e.event);
    const firstChange = kinds.indexOf('file_change');
    expect(firstChange).toBeGreaterThan(0);
    expect(kinds.slice(0, firstChange).every((k) => k === 'text')).toBe(true);
    expect(kinds.slice(firstChange)).toEqual([
      'file_change',
      'tool',
      ...kinds.slice(firstChange + 2, -1).map(() => 'text'),
      'done',
    ]);
    const text = events
      .filter((e) => e.event === 'text')
      .map((e) => e.data.delta)
      .join('');
    expect(text).toBe('I will change the title.\n\nThe title now says Hi there.');
    const change = events.find((e) => e.event === 'file_change')!.data;
    expect(change).toMatchObject({ path: 'index.html', operation: 'update' });
    expect(change.diff).toContain('+<h1>Hi there</h1>');
    const tool = events.find((e) => e.event === 'tool')!.data;
    expect(tool).toMatchObject({ name: 'edit_file', isError: false, result: 'Edited index.html' });
    const done = events.at(-1)!.data;
    expect(done.changesetId).toMatch(/^[0-9a-f-]{36}$/);
    expect(done.usage.totalTokens).toBe(done.usage.inputTokens + done.usage.outputTokens);

    // A second turn sees the first in its history.
    fake.script([{ text: 'You asked me to change the title.' }]);
    const again = await t.app.request(`/api/projects/${projectId}/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${owner.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'What did I ask?' }),
    });
    expect((await sseEvents(again)).at(-1)!.event).toBe('done');
    const sent = fake.requests[0]!.body.messages as { role: string }[];
    expect(sent.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);

    const history = await call(t.app, 'GET', `/api/projects/${projectId}/chat`, {
      token: editor.token,
    });
    expect(history.status).toBe(200);
    expect(
      history.body.messages.map((m: { role: string; content: string }) => [m.role, m.content]),
    ).toEqual([
      ['user', 'Change the title to Hi there'],
      ['assistant', 'I will change the title.\n\nThe title now says Hi there.'],
      ['user', 'What did I ask?'],
      ['assistant', 'You asked me to change the title.'],
    ]);
    expect(history.body.messages[1]).toMatchObject({
      changesetId: done.changesetId,
      tools: [{ name: 'edit_file', summary: 'Edited index.html', isError: false }],
    });
  });

  it('keeps where in the answer each tool ran, so the history shows text and tools in order', async () => {
    await put('index.html', '<h1>Hello</h1>\n');
    fake.script([
      {
        text: 'First I look around.',
        toolCalls: [
          { name: 'list_files', input: {} },
          { name: 'read_file', input: { path: 'index.html' } },
        ],
      },
      // A model turn with no text: its tool ran at the same place as the ones before.
      {
        toolCalls: [
          {
            name: 'edit_file',
            input: { path: 'index.html', old_str: 'Hello', new_str: 'Hi' },
          },
        ],
      },
      {
        text: 'Edited the title.',
        toolCalls: [{ name: 'read_file', input: { path: 'index.html' } }],
      },
      { text: 'All done.' },
    ]);
    const res = await t.app.request(`/api/projects/${projectId}/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${editor.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'Say hi' }),
    });
    expect((await sseEvents(res)).at(-1)!.event).toBe('done');

    // An answer stored before offsets were kept still reads (its tools have no `at`).
    await new AiStore(t.services.db).insertChatMessage({
      projectId,
      userId: null,
      role: 'assistant',
      content: 'An old answer.',
      tools: [{ name: 'list_files', summary: '3 files', isError: false }],
    });

    const history = await call(t.app, 'GET', `/api/projects/${projectId}/chat`, {
      token: editor.token,
    });
    expect(history.status, JSON.stringify(history.body)).toBe(200);
    const [, answer, old] = history.body.messages as {
      content: string;
      tools: { name: string; at?: number }[];
    }[];
    expect(answer!.content).toBe('First I look around.\n\nEdited the title.\n\nAll done.');
    const first = 'First I look around.'.length;
    const second = 'First I look around.\n\nEdited the title.'.length;
    expect(answer!.tools.map((tool) => [tool.name, tool.at])).toEqual([
      ['list_files', first],
      ['read_file', first],
      ['edit_file', first],
      ['read_file', second],
    ]);
    // Cut at the offsets, the text reads as it was written between the tools.
    const ats = answer!.tools.map((tool) => tool.at!);
    const pieces = [0, ...ats].map((from, i) =>
      answer!.content.slice(from, ats[i] ?? answer!.content.length).trim(),
    );
    expect(pieces.filter(Boolean)).toEqual([
      'First I look around.',
      'Edited the title.',
      'All done.',
    ]);
    expect(old).toMatchObject({ content: 'An old answer.', tools: [{ name: 'list_files' }] });
    expect(old!.tools[0]).not.toHaveProperty('at');
  });

  it('Stop ends a turn in progress where it is, keeping its text and its changeset', async () => {
    await put('index.html', '<h1>Hello</h1>\n');
    let release!: () => void;
    const stall = new Promise<void>((resolve) => (release = resolve));
    fake.script([
      {
        text: 'Changing the title.',
        toolCalls: [
          {
            name: 'edit_file',
            input: { path: 'index.html', old_str: '<h1>Hello</h1>', new_str: '<h1>Hi</h1>' },
          },
        ],
      },
      // The second model turn hangs until the test lets it go (after the Stop).
      { text: 'This takes a long time to write…', stall },
    ]);
    const started = t.app.request(`/api/projects/${projectId}/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${editor.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'Change the title' }),
    });
    await until(() => fake.requests.length === 2, 10_000, 'the second model request');
    // A viewer cannot stop it; another editor (the owner) can.
    const refused = await call(t.app, 'POST', `/api/projects/${projectId}/chat/stop`, {
      token: viewer.token,
    });
    expect(refused.status).toBe(403);
    const stop = await call(t.app, 'POST', `/api/projects/${projectId}/chat/stop`, {
      token: owner.token,
    });
    expect(stop.status, JSON.stringify(stop.body)).toBe(202);
    expect(stop.body).toEqual({ stopping: true });
    const events = await sseEvents(await started);
    release();
    const done = events.at(-1)!;
    expect(done.event).toBe('done');
    expect(done.data.stopped).toEqual({
      reason: 'cancelled',
      message: expect.stringMatching(/^Stopped on request/),
    });
    expect(done.data.changesetId).toMatch(/^[0-9a-f-]{36}$/);
    expect((await read('index.html')).content).toBe('<h1>Hi</h1>\n');
    expect(fake.requests).toHaveLength(2);
    const history = await call(t.app, 'GET', `/api/projects/${projectId}/chat`, {
      token: editor.token,
    });
    const answer = history.body.messages.at(-1);
    expect(answer.content).toMatch(/^Changing the title\.[\s\S]*Stopped on request/);
    expect(answer).toMatchObject({
      changesetId: done.data.changesetId,
      tools: [{ name: 'edit_file', isError: false }],
    });
    // Nothing runs: Stop is harmless.
    expect(
      (await call(t.app, 'POST', `/api/projects/${projectId}/chat/stop`, { token: owner.token }))
        .status,
    ).toBe(202);
  });

  it('streams an error event when the provider fails, and keeps it in the history', async () => {
    fake.script([{ error: { status: 401, type: 'authentication_error', message: 'bad key' } }]);
    const res = await t.app.request(`/api/projects/${projectId}/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${editor.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'Hello' }),
    });
    const events = await sseEvents(res);
    expect(events.map((e) => e.event)).toEqual(['error']);
    expect(events[0]!.data.message).toContain('bad key');
    const history = await call(t.app, 'GET', `/api/projects/${projectId}/chat`, {
      token: editor.token,
    });
    expect(history.body.messages.at(-1)).toMatchObject({ role: 'assistant' });
    expect(history.body.messages.at(-1).error).toContain('bad key');
  });
});

describe('changesets', () => {
  async function aiWrites(files: Record<string, string>): Promise<string> {
    fake.script([
      {
        toolCalls: Object.entries(files).map(([path, content]) => ({
          name: 'write_file',
          input: { path, content },
        })),
      },
      { text: 'Written.' },
    ]);
    const res = await modify(editor, 'Write files');
    expect(res.status).toBe(200);
    return res.body.changesetId;
  }

  it('reverts every file of a turn as new versions', async () => {
    await put('keep.txt', 'original\n');
    const changesetId = await aiWrites({ 'keep.txt': 'changed\n', 'new.txt': 'brand new\n' });
    expect((await read('keep.txt')).content).toBe('changed\n');
    const res = await call(
      t.app,
      'POST',
      `/api/projects/${projectId}/changesets/${changesetId}/revert`,
      { token: editor.token },
    );
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.reverted.sort()).toEqual(['keep.txt', 'new.txt']);
    expect((await read('keep.txt')).content).toBe('original\n');
    expect((await read('new.txt')).status).toBe(404);
    const history = await call(t.app, 'GET', `/api/projects/${projectId}/history/keep.txt`, {
      token: owner.token,
    });
    expect(history.body.versions.map((v: { version: number }) => v.version)).toEqual([3, 2, 1]);
    // Twice is a conflict.
    const twice = await call(
      t.app,
      'POST',
      `/api/projects/${projectId}/changesets/${changesetId}/revert`,
      { token: editor.token },
    );
    expect(twice.status).toBe(409);
  });

  it('refuses with 409 when a file changed since, unless forced', async () => {
    const changesetId = await aiWrites({ 'doc.md': 'AI text\n' });
    await put('doc.md', 'human edit after the AI\n');
    const res = await call(
      t.app,
      'POST',
      `/api/projects/${projectId}/changesets/${changesetId}/revert`,
      { token: editor.token },
    );
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('conflict');
    expect(res.body.error.details.conflicts).toEqual([{ path: 'doc.md', reason: 'changed since' }]);
    expect((await read('doc.md')).content).toBe('human edit after the AI\n');
    const forced = await call(
      t.app,
      'POST',
      `/api/projects/${projectId}/changesets/${changesetId}/revert`,
      { token: editor.token, body: { force: true } },
    );
    expect(forced.status).toBe(200);
    expect((await read('doc.md')).status).toBe(404);
  });

  it('answers 404 for an unknown changeset or another project’s', async () => {
    const changesetId = await aiWrites({ 'x.txt': 'x\n' });
    const other = await call(t.app, 'POST', '/api/projects', {
      token: owner.token,
      body: { name: `Other ${Math.random()}` },
    });
    for (const url of [
      `/api/projects/${projectId}/changesets/00000000-0000-4000-8000-000000000000/revert`,
      `/api/projects/${projectId}/changesets/not-a-uuid/revert`,
      `/api/projects/${other.body.project.id}/changesets/${changesetId}/revert`,
    ]) {
      const res = await call(t.app, 'POST', url, { token: owner.token });
      expect(res.status, url).toBe(404);
    }
  });
});

describe('access', () => {
  it('refuses viewers (403), strangers (404) and anonymous callers (401) on every AI route', async () => {
    fake.script([]);
    const routes: [string, string, unknown][] = [
      ['POST', '/api/claude/modify', { projectId, instruction: 'x' }],
      ['POST', '/api/claude/process', { projectId, message: 'x', type: 'modify' }],
      ['POST', `/api/projects/${projectId}/chat`, { message: 'x' }],
      ['GET', `/api/projects/${projectId}/chat`, undefined],
      [
        'POST',
        `/api/projects/${projectId}/changesets/00000000-0000-4000-8000-000000000000/revert`,
        undefined,
      ],
    ];
    for (const [method, url, body] of routes) {
      expect((await call(t.app, method, url, { body })).status, url).toBe(401);
      expect((await call(t.app, method, url, { token: viewer.token, body })).status, url).toBe(403);
      expect((await call(t.app, method, url, { token: stranger.token, body })).status, url).toBe(
        404,
      );
    }
    expect(fake.requests).toHaveLength(0);
  });

  it('validates bodies with the contract’s 400', async () => {
    const res = await call(t.app, 'POST', '/api/claude/process', {
      token: editor.token,
      body: { projectId, message: '', type: 'explode' },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.details.map((d: { field: string }) => d.field).sort()).toEqual([
      'message',
      'type',
    ]);
  });
});

describe('without a provider', () => {
  it('answers 503 ai_unavailable saying how to configure one; the rest keeps working', async () => {
    const plain = await createTestApp();
    try {
      const me = await registerAndLogin(plain.app);
      const project = await call(plain.app, 'POST', '/api/projects', {
        token: me.token,
        body: { name: 'No AI here', config: { functionality: 'a todo list' } },
      });
      expect(project.status).toBe(201);
      expect(project.body.project.status).not.toBe('creating');
      const id = project.body.project.id;
      for (const [method, url, body] of [
        ['POST', '/api/claude/modify', { projectId: id, instruction: 'x' }],
        ['POST', '/api/claude/process', { projectId: id, message: 'x', type: 'modify' }],
        ['POST', `/api/projects/${id}/chat`, { message: 'x' }],
      ] as const) {
        const res = await call(plain.app, method, url, { token: me.token, body });
        expect(res.status, url).toBe(503);
        expect(res.body.error.code).toBe('ai_unavailable');
        expect(res.body.error.message).toContain('ANTHROPIC_API_KEY');
      }
      const history = await call(plain.app, 'GET', `/api/projects/${id}/chat`, { token: me.token });
      expect(history.status).toBe(200);
      expect(history.body.messages).toEqual([]);
    } finally {
      await plain.close();
    }
  });
});
