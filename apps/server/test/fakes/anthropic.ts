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
 * A local stand-in for the Anthropic Messages API (`POST /v1/messages`), scripted per test and
 * driven by the real `@anthropic-ai/sdk` through ANTHROPIC_BASE_URL: SSE streaming
 * (message_start, content_block_start/delta/stop with text_delta and input_json_delta,
 * message_delta, message_stop) or plain JSON, tool_use / tool_result checked like the real API
 * (each tool_result answers a tool_use of the previous assistant message), usage with cache
 * fields. Listens on 127.0.0.1 only.
 */
export async function startFakeAnthropic(): Promise<FakeServer> {
  return startFakeServer({
    route: /^\/v1\/messages(\?.*)?$/,
    basePath: '',
    validate,
    error: (res, status, type, message) => {
      res.writeHead(status, { 'content-type': 'application/json', 'request-id': 'req_fake' });
      res.end(JSON.stringify({ type: 'error', error: { type, message } }));
    },
    write,
  });
}

let ids = 0;

function validate(request: RecordedRequest): string | undefined {
  const h = request.headers;
  if (!h['x-api-key'] && !h.authorization) return 'missing authentication (x-api-key)';
  if (!h['anthropic-version']) return 'missing anthropic-version header';
  const body = request.body as {
    model?: unknown;
    max_tokens?: unknown;
    messages?: { role: string; content: unknown }[];
  };
  if (typeof body.model !== 'string' || !body.model) return 'model: Field required';
  if (typeof body.max_tokens !== 'number') return 'max_tokens: Field required';
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    return 'messages: at least one message is required';
  }
  if (body.messages[0]!.role !== 'user')
    return 'messages: the first message must use the user role';
  let previousToolUses = new Set<string>();
  for (const [i, m] of body.messages.entries()) {
    const blocks = Array.isArray(m.content)
      ? (m.content as { type: string; id?: string; tool_use_id?: string }[])
      : [];
    if (m.role === 'assistant') {
      previousToolUses = new Set(blocks.filter((b) => b.type === 'tool_use').map((b) => b.id!));
      continue;
    }
    for (const b of blocks.filter((b) => b.type === 'tool_result')) {
      if (!previousToolUses.has(b.tool_use_id!)) {
        return `messages.${i}: tool_result ${b.tool_use_id} has no matching tool_use in the previous message`;
      }
    }
    const answered = new Set(
      blocks.filter((b) => b.type === 'tool_result').map((b) => b.tool_use_id),
    );
    for (const id of previousToolUses) {
      if (!answered.has(id)) return `messages.${i}: tool_use ${id} has no tool_result`;
    }
    previousToolUses = new Set();
  }
  return undefined;
}

async function write(
  res: ServerResponse,
  request: RecordedRequest,
  reply: FakeReply,
): Promise<void> {
  const body = request.body as { model: string; stream?: boolean };
  const id = `msg_fake_${++ids}`;
  const toolUses = (reply.toolCalls ?? []).map((t) => ({
    type: 'tool_use' as const,
    id: `toolu_fake_${++ids}`,
    name: t.name,
    input: t.input,
  }));
  const text = textPieces(reply).join('');
  const stopReason = reply.stopReason ?? (toolUses.length ? 'tool_use' : 'end_turn');
  const usage = {
    input_tokens: reply.usage?.input ?? roughTokens(request.body),
    output_tokens: reply.usage?.output ?? roughTokens({ text, toolUses }),
    cache_creation_input_tokens: reply.usage?.cacheWrite ?? 0,
    cache_read_input_tokens: reply.usage?.cacheRead ?? 0,
  };
  const content = [...(text ? [{ type: 'text' as const, text }] : []), ...toolUses];
  if (!body.stream) {
    if (reply.stall) await reply.stall;
    res.writeHead(200, { 'content-type': 'application/json', 'request-id': 'req_fake' });
    res.end(
      JSON.stringify({
        id,
        type: 'message',
        role: 'assistant',
        model: body.model,
        content,
        stop_reason: stopReason,
        stop_sequence: null,
        usage,
      }),
    );
    return;
  }
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    'request-id': 'req_fake',
  });
  sse(
    res,
    {
      type: 'message_start',
      message: {
        id,
        type: 'message',
        role: 'assistant',
        model: body.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...usage, output_tokens: 1 },
      },
    },
    'message_start',
  );
  if (reply.stall) await reply.stall;
  sse(res, { type: 'ping' }, 'ping');
  let index = 0;
  const pieces = textPieces(reply);
  if (pieces.length) {
    sse(
      res,
      { type: 'content_block_start', index, content_block: { type: 'text', text: '' } },
      'content_block_start',
    );
    for (const piece of pieces) {
      sse(
        res,
        { type: 'content_block_delta', index, delta: { type: 'text_delta', text: piece } },
        'content_block_delta',
      );
    }
    sse(res, { type: 'content_block_stop', index }, 'content_block_stop');
    index++;
  }
  for (const tool of toolUses) {
    sse(
      res,
      {
        type: 'content_block_start',
        index,
        content_block: { type: 'tool_use', id: tool.id, name: tool.name, input: {} },
      },
      'content_block_start',
    );
    const json = JSON.stringify(tool.input ?? {});
    const half = Math.ceil(json.length / 2);
    for (const part of [json.slice(0, half), json.slice(half)]) {
      sse(
        res,
        {
          type: 'content_block_delta',
          index,
          delta: { type: 'input_json_delta', partial_json: part },
        },
        'content_block_delta',
      );
    }
    sse(res, { type: 'content_block_stop', index }, 'content_block_stop');
    index++;
  }
  sse(
    res,
    {
      type: 'message_delta',
      delta: { stop_reason: stopReason, stop_sequence: null },
      usage: { output_tokens: usage.output_tokens },
    },
    'message_delta',
  );
  sse(res, { type: 'message_stop' }, 'message_stop');
  res.end();
}
