import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { startFakeOpenAi, type FakeServer } from '../../../test/fakes/openai.ts';

let fake: FakeServer;
let t: TestApp;

beforeAll(async () => {
  fake = await startFakeOpenAi();
  // No Anthropic key: the OpenAI-compatible server (e.g. a local model server) is used.
  t = await createTestApp({ OPENAI_BASE_URL: fake.url, VAPORFORM_AI_MODEL: 'local-coder' });
});

afterAll(async () => {
  await t?.close();
  await fake?.close();
});

describe('an OpenAI-compatible provider', () => {
  it('runs the same tool loop through chat completions and streams the chat', async () => {
    const me = await registerAndLogin(t.app);
    const project = await call(t.app, 'POST', '/api/projects', {
      token: me.token,
      body: { name: 'Local model' },
    });
    const projectId = project.body.project.id as string;
    fake.script([
      {
        text: 'Creating it.',
        toolCalls: [
          { name: 'write_file', input: { path: 'app.py', content: 'print("hi")\n' } },
          { name: 'read_file', input: { path: 'app.py' } },
        ],
      },
      { text: 'app.py prints hi.' },
    ]);
    const res = await t.app.request(`/api/projects/${projectId}/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${me.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'Write app.py' }),
    });
    const body = await res.text();
    expect(res.status).toBe(200);
    const events = body
      .split('\n\n')
      .filter(Boolean)
      .map((b) => /^event: (.*)$/m.exec(b)?.[1]);
    expect(events.filter((e) => e === 'text').length).toBeGreaterThan(1);
    expect(events.slice(-1)).toEqual(['done']);

    const first = fake.requests[0]!.body;
    expect(first.model).toBe('local-coder');
    expect(first.stream).toBe(true);
    expect(first.messages[0].role).toBe('system');
    expect(first.tools.map((tool: { function: { name: string } }) => tool.function.name)).toContain(
      'edit_file',
    );
    // The second request carries the assistant's tool calls and one tool message per call.
    const second = fake.requests[1]!.body.messages as {
      role: string;
      content: string;
      tool_calls?: unknown[];
    }[];
    expect(second.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool', 'tool']);
    expect(second[2]!.tool_calls).toHaveLength(2);
    expect(second[4]!.content).toBe('print("hi")\n');

    const file = await call(t.app, 'GET', `/api/projects/${projectId}/files/app.py`, {
      token: me.token,
    });
    expect(file.body.content).toBe('print("hi")\n');
    const { rows } = await t.services.pool.query(
      'SELECT provider, model, input_tokens, output_tokens FROM claude_interactions WHERE project_id = $1',
      [projectId],
    );
    expect(rows).toEqual([expect.objectContaining({ provider: 'openai', model: 'local-coder' })]);
    expect(rows[0].input_tokens).toBeGreaterThan(0);
    expect(rows[0].output_tokens).toBeGreaterThan(0);
  });
});
