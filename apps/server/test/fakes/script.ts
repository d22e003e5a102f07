import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** A tool call the fake model makes. */
export interface FakeToolCall {
  name: string;
  input: unknown;
}

/** One scripted model turn. */
export interface FakeReply {
  /** Text, streamed in small pieces (or given as the pieces). */
  text?: string | string[];
  toolCalls?: FakeToolCall[];
  /** Defaults: `tool_use` with tool calls, else `end_turn`. */
  stopReason?: 'end_turn' | 'tool_use' | 'max_tokens';
  /** Token counts reported; defaults are derived from the sizes of request and reply. */
  usage?: { input?: number; output?: number; cacheRead?: number; cacheWrite?: number };
  /** Sends the stream's first event, then waits for this promise before going on. */
  stall?: Promise<void>;
  /** Answer an API error instead (e.g. 529 overloaded, 400 invalid request). */
  error?: { status: number; type: string; message: string };
  /** Milliseconds to wait before answering. */
  delayMs?: number;
}

/** A request the fake received. */
export interface RecordedRequest {
  path: string;
  headers: IncomingMessage['headers'];
  body: any;
}

/** The replies of a test: in order, or computed from each request. */
export type FakeScript =
  FakeReply[] | ((request: RecordedRequest, index: number) => FakeReply | Promise<FakeReply>);

/** What both fakes share: a loopback server, its requests, its script. */
export interface FakeServer {
  /** Base URL to give the SDK (ANTHROPIC_BASE_URL / OPENAI_BASE_URL). */
  url: string;
  requests: RecordedRequest[];
  /** Replaces the script (and forgets the requests seen so far). */
  script(script: FakeScript): void;
  close(): Promise<void>;
}

/** Handles one validated request with its reply. */
export type ReplyWriter = (
  res: ServerResponse,
  request: RecordedRequest,
  reply: FakeReply,
  index: number,
) => Promise<void>;

/**
 * Starts a fake provider on 127.0.0.1: every request to `route` is checked by `validate`
 * (a message says what is wrong → 400) and answered with the next scripted reply.
 */
export async function startFakeServer(options: {
  route: RegExp;
  basePath: string;
  validate: (request: RecordedRequest) => string | undefined;
  error: (res: ServerResponse, status: number, type: string, message: string) => void;
  write: ReplyWriter;
}): Promise<FakeServer> {
  let script: FakeScript = [];
  let index = 0;
  const requests: RecordedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      void (async () => {
        const path = req.url ?? '/';
        if (req.method !== 'POST' || !options.route.test(path)) {
          options.error(res, 404, 'not_found_error', `No route ${req.method} ${path}`);
          return;
        }
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          options.error(res, 400, 'invalid_request_error', 'The body is not JSON');
          return;
        }
        const request: RecordedRequest = { path, headers: req.headers, body };
        requests.push(request);
        const problem = options.validate(request);
        if (problem) {
          options.error(res, 400, 'invalid_request_error', problem);
          return;
        }
        const n = index++;
        const reply = Array.isArray(script) ? script[n] : await script(request, n);
        if (!reply) {
          options.error(res, 400, 'invalid_request_error', `fake: no scripted reply #${n + 1}`);
          return;
        }
        if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
        if (reply.error) {
          options.error(res, reply.error.status, reply.error.type, reply.error.message);
          return;
        }
        await options.write(res, request, reply, n);
      })().catch((err: unknown) => {
        if (!res.headersSent) options.error(res, 500, 'api_error', String(err));
        else res.destroy();
      });
    });
  });
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}${options.basePath}`,
    requests,
    script(next) {
      script = next;
      index = 0;
      requests.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The text of a reply as pieces to stream. */
export function textPieces(reply: FakeReply): string[] {
  if (reply.text === undefined) return [];
  if (Array.isArray(reply.text)) return reply.text;
  const pieces: string[] = [];
  for (let i = 0; i < reply.text.length; i += 12) pieces.push(reply.text.slice(i, i + 12));
  return pieces;
}

/** Writes one server-sent event. */
export function sse(res: ServerResponse, data: unknown, event?: string): void {
  res.write(`${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`);
}

/** A rough token count (4 characters a token), deterministic. */
export function roughTokens(value: unknown): number {
  return Math.max(1, Math.ceil(JSON.stringify(value ?? '').length / 4));
}
