import { createServer, type Server } from 'node:http';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../db.ts';
import { call } from './client.ts';
import { startServer, type ServerProc } from './processes.ts';

// OTEL_EXPORTER_OTLP_ENDPOINT set: the server exports its traces over OTLP/HTTP to a local
// receiver (what an OpenTelemetry Collector listens with on :4318), and the request id joins
// the request's log lines and its span.

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: { key: string; value: { stringValue?: string; intValue?: string | number } }[];
}

let receiver: Server;
const spans: OtlpSpan[] = [];
const contentTypes = new Set<string>();
let database: TestDatabase;
let server: ServerProc;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      contentTypes.add(String(req.headers['content-type']));
      if (req.method === 'POST' && req.url === '/v1/traces') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[];
        };
        for (const rs of body.resourceSpans)
          for (const ss of rs.scopeSpans) spans.push(...ss.spans);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        return;
      }
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const port = (receiver.address() as { port: number }).port;
  database = await createTestDatabase();
  server = await startServer({
    DATABASE_URL: database.url,
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
    OTEL_BSP_SCHEDULE_DELAY: '200',
    LOG_LEVEL: 'info',
  });
}, 180_000);

afterAll(async () => {
  await server?.stop();
  await database?.drop();
  await new Promise((r) => receiver?.close(r));
  if (server) rmSync(server.dataDir, { recursive: true, force: true });
});

function attr(span: OtlpSpan, key: string): string | number | undefined {
  const v = span.attributes?.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue !== undefined ? Number(v.intValue) : undefined);
}

describe('OpenTelemetry traces over OTLP', () => {
  it('a request is a server span with its SQL as child spans, joined to its log lines by request id', async () => {
    const requestId = 'otel-trace-request-0001';
    const res = await call(server.url, 'POST', '/api/auth/register', {
      body: { email: 'otel@example.test', password: 'correct horse battery', name: 'Otel' },
      headers: { 'x-request-id': requestId },
    });
    expect(res.status).toBe(201);

    let request: OtlpSpan | undefined;
    const deadline = Date.now() + 20_000;
    while (!request && Date.now() < deadline) {
      request = spans.find((s) => attr(s, 'vaporform.request_id') === requestId);
      if (!request) await new Promise((r) => setTimeout(r, 100));
    }
    expect(request, `spans received: ${spans.map((s) => s.name).join(', ')}`).toBeDefined();
    expect(request!.name).toBe('POST /api/auth/register');
    expect(request!.kind).toBe(2); // SERVER
    expect(attr(request!, 'http.response.status_code')).toBe(201);

    // Its SQL: client spans in the same trace, children of the request (an INSERT of the user).
    await new Promise((r) => setTimeout(r, 500));
    const queries = spans.filter(
      (s) => s.traceId === request!.traceId && s.parentSpanId === request!.spanId,
    );
    expect(queries.length).toBeGreaterThan(0);
    expect(queries.every((q) => attr(q, 'db.system.name') === 'postgresql')).toBe(true);
    expect(
      queries.some((q) => /INSERT INTO "?users"?/i.test(String(attr(q, 'db.query.text')))),
    ).toBe(true);

    // The request's log line carries the same id.
    const line = server
      .output()
      .split('\n')
      .find((l) => l.includes(`"requestId":"${requestId}"`) && l.includes('"msg":"request"'));
    expect(line).toBeDefined();
    expect([...contentTypes].some((t) => t.startsWith('application/json'))).toBe(true);
  }, 60_000);
});
