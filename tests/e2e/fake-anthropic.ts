// A local stand-in for the Anthropic Messages API (POST /v1/messages, streaming SSE and plain
// JSON), scripted per test: each request gets the next scripted assistant turn. Only 127.0.0.1.
import { createServer, type Server } from 'node:http';

/** One assistant turn: text and/or tool calls. */
export interface FakeTurn {
  text?: string;
  tools?: { name: string; input: Record<string, unknown> }[];
  /** Streams the first piece of text, then waits this long before the rest (a slow answer). */
  stallMs?: number;
}

/** A running fake with its base URL and the requests it received. */
export interface FakeAnthropic {
  url: string;
  requests: unknown[];
  close(): Promise<void>;
}

/** Starts the fake; turns are answered in order, then a plain "Done." turn. */
export async function startFakeAnthropic(script: FakeTurn[]): Promise<FakeAnthropic> {
  const requests: unknown[] = [];
  let n = 0;
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (d: Buffer) => (raw += d.toString()));
    req.on('end', () => {
      if (req.method !== 'POST' || !req.url?.startsWith('/v1/messages')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            type: 'error',
            error: { type: 'not_found_error', message: 'not found' },
          }),
        );
        return;
      }
      const body = JSON.parse(raw || '{}') as { stream?: boolean; model?: string };
      requests.push(body);
      const turn = script[n++] ?? { text: 'Done.' };
      const id = `msg_fake_${n}`;
      const content: Record<string, unknown>[] = [];
      if (turn.text) content.push({ type: 'text', text: turn.text });
      for (const [i, t] of (turn.tools ?? []).entries()) {
        content.push({
          type: 'tool_use',
          id: `toolu_fake_${n}_${i}`,
          name: t.name,
          input: t.input,
        });
      }
      const stopReason = turn.tools?.length ? 'tool_use' : 'end_turn';
      const usage = { input_tokens: 100, output_tokens: 20 };
      const message = {
        id,
        type: 'message',
        role: 'assistant',
        model: body.model ?? 'claude-fake',
        content,
        stop_reason: stopReason,
        stop_sequence: null,
        usage,
      };
      if (!body.stream) {
        res.writeHead(200, { 'content-type': 'application/json', 'request-id': `req_${n}` });
        res.end(JSON.stringify(message));
        return;
      }
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        'request-id': `req_${n}`,
      });
      // The caller may hang up mid-stream (a Stop): nothing more is written then.
      const send = (event: string, data: unknown) =>
        !res.destroyed && res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      void streamTurn(send, message, content, stopReason, turn.stallMs).then(() => res.end());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** One assistant turn as the Messages API streams it. */
async function streamTurn(
  send: (event: string, data: unknown) => void,
  message: Record<string, unknown>,
  content: Record<string, unknown>[],
  stopReason: string,
  stallMs = 0,
): Promise<void> {
  send('message_start', {
    type: 'message_start',
    message: {
      ...message,
      content: [],
      stop_reason: null,
      usage: { input_tokens: 100, output_tokens: 1 },
    },
  });
  for (const [index, block] of content.entries()) {
    if (block.type === 'text') {
      send('content_block_start', {
        type: 'content_block_start',
        index,
        content_block: { type: 'text', text: '' },
      });
      const text = String(block.text);
      for (let i = 0; i < text.length; i += 12) {
        send('content_block_delta', {
          type: 'content_block_delta',
          index,
          delta: { type: 'text_delta', text: text.slice(i, i + 12) },
        });
        if (i === 0 && stallMs) await new Promise((r) => setTimeout(r, stallMs));
      }
    } else {
      send('content_block_start', {
        type: 'content_block_start',
        index,
        content_block: { type: 'tool_use', id: block.id, name: block.name, input: {} },
      });
      send('content_block_delta', {
        type: 'content_block_delta',
        index,
        delta: { type: 'input_json_delta', partial_json: JSON.stringify(block.input) },
      });
    }
    send('content_block_stop', { type: 'content_block_stop', index });
  }
  send('message_delta', {
    type: 'message_delta',
    delta: { stop_reason: stopReason, stop_sequence: null },
    usage: { output_tokens: 20 },
  });
  send('message_stop', { type: 'message_stop' });
}
