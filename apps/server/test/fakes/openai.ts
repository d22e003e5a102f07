import type { ServerResponse } from 'node:http';
import {
  roughTokens,
  sse,
  startFakeServer,
  textPieces,
  type FakeReply,
  type FakeServer,
  type RecordedRequest,
} from './script.ts';

export type { FakeReply, FakeScript, FakeServer, RecordedRequest } from './script.ts';

/**
 * A local OpenAI-compatible chat-completions server (`POST /v1/chat/completions`), scripted
 * per test and driven by the real `openai` client through OPENAI_BASE_URL (`<url>` already ends
 * in /v1): streamed chunks with content deltas and tool_calls deltas (arguments in pieces),
 * finish_reason, a usage chunk when `stream_options.include_usage`, then `data: [DONE]`; tool
 * messages are checked against the tool_calls of the assistant message before them.
 */
export async function startFakeOpenAi(): Promise<FakeServer> {
  return startFakeServer({
    route: /^\/v1\/chat\/completions(\?.*)?$/,
    basePath: '/v1',
    validate,
    error: (res, status, type, message) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message, type, param: null, code: null } }));
    },
    write,
  });
}

let ids = 0;

function validate(request: RecordedRequest): string | undefined {
  if (!request.headers.authorization?.startsWith('Bearer ')) return 'missing bearer token';
  const body = request.body as {
    model?: unknown;
    messages?: { role: string; tool_call_id?: string; tool_calls?: { id: string }[] }[];
  };
  if (typeof body.model !== 'string') return "'model' is a required property";
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    return "'messages' must be a non-empty array";
  }
  let open = new Set<string>();
  for (const [i, m] of body.messages.entries()) {
    if (m.role === 'tool') {
      if (!m.tool_call_id || !open.has(m.tool_call_id)) {
        return `messages.[${i}]: a 'tool' message must answer a preceding tool_calls id`;
      }
      open.delete(m.tool_call_id);
      continue;
    }
    if (open.size) return `messages.[${i}]: tool_calls ${[...open].join(', ')} were not answered`;
    open = new Set((m.tool_calls ?? []).map((c) => c.id));
  }
  return undefined;
}

async function write(
  res: ServerResponse,
  request: RecordedRequest,
  reply: FakeReply,
): Promise<void> {
  const body = request.body as {
    model: string;
    stream?: boolean;
    stream_options?: { include_usage?: boolean };
  };
  const id = `chatcmpl-fake${++ids}`;
  const created = Math.floor(Date.now() / 1000);
  const calls = (reply.toolCalls ?? []).map((t, index) => ({
    index,
    id: `call_fake_${++ids}`,
    name: t.name,
    arguments: JSON.stringify(t.input ?? {}),
  }));
  const text = textPieces(reply).join('');
  const finish =
    reply.stopReason === 'max_tokens' ? 'length' : calls.length ? 'tool_calls' : 'stop';
  const usage = {
    prompt_tokens: reply.usage?.input ?? roughTokens(request.body),
    completion_tokens: reply.usage?.output ?? roughTokens({ text, calls }),
    total_tokens: 0,
    prompt_tokens_details: { cached_tokens: reply.usage?.cacheRead ?? 0 },
  };
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  if (!body.stream) {
    if (reply.stall) await reply.stall;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        id,
        object: 'chat.completion',
        created,
        model: body.model,
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: text || null,
              ...(calls.length
                ? {
                    tool_calls: calls.map((c) => ({
                      id: c.id,
                      type: 'function',
                      function: { name: c.name, arguments: c.arguments },
                    })),
                  }
                : {}),
            },
            finish_reason: finish,
          },
        ],
        usage,
      }),
    );
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const chunk = (delta: unknown, finishReason: string | null = null) =>
    sse(res, {
      id,
      object: 'chat.completion.chunk',
      created,
      model: body.model,
      choices: [{ index: 0, delta, finish_reason: finishReason }],
    });
  chunk({ role: 'assistant', content: '' });
  if (reply.stall) await reply.stall;
  for (const piece of textPieces(reply)) chunk({ content: piece });
  for (const call of calls) {
    chunk({
      tool_calls: [
        {
          index: call.index,
          id: call.id,
          type: 'function',
          function: { name: call.name, arguments: '' },
        },
      ],
    });
    const half = Math.ceil(call.arguments.length / 2);
    for (const part of [call.arguments.slice(0, half), call.arguments.slice(half)]) {
      chunk({ tool_calls: [{ index: call.index, function: { arguments: part } }] });
    }
  }
  chunk({}, finish);
  if (body.stream_options?.include_usage) {
    sse(res, {
      id,
      object: 'chat.completion.chunk',
      created,
      model: body.model,
      choices: [],
      usage,
    });
  }
  res.write('data: [DONE]\n\n');
  res.end();
}
