import { createServer, type Server } from 'node:http';
import { rmSync } from 'node:fs';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../db.ts';
import { useTestDocker } from '../docker.ts';
import { startFakeAnthropic, type FakeServer } from '../fakes/anthropic.ts';
import { call, signUp } from './client.ts';
import { startServer, type ServerProc } from './processes.ts';

// OTEL_EXPORTER_OTLP_ENDPOINT set: the server exports its traces over OTLP/HTTP to a local
// receiver (what an OpenTelemetry Collector listens with on :4318), and the request id joins
// the request's log lines and its span. The server runs projects on the test Docker engine,
// provisions through the terraform CLI and talks to a local fake Anthropic API, so Docker,
// Terraform and AI provider calls are spans too.

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
let anthropic: FakeServer;
let docker: Docker;
let server: ServerProc;
let deploymentId: string | undefined;

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
  const engine = await useTestDocker();
  docker = engine.docker;
  [database, anthropic] = await Promise.all([createTestDatabase(), startFakeAnthropic()]);
  anthropic.script(() => ({ text: 'Traced.', usage: { input: 20, output: 5 } }));
  server = await startServer({
    DATABASE_URL: database.url,
    DOCKER_HOST: engine.dockerHost,
    VAPORFORM_RUNTIME: 'docker',
    ANTHROPIC_API_KEY: 'sk-fake',
    ANTHROPIC_BASE_URL: anthropic.url,
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
    OTEL_BSP_SCHEDULE_DELAY: '200',
    LOG_LEVEL: 'info',
  });
}, 180_000);

afterAll(async () => {
  // Whatever a failed provision left on the engine.
  if (deploymentId && docker) {
    const label = JSON.stringify({ label: [`vaporform.deployment=${deploymentId}`] });
    for (const c of await docker.listContainers({ all: true, filters: label })) {
      await docker.getContainer(c.Id).remove({ force: true });
    }
    for (const n of await docker.listNetworks({ filters: label })) {
      await docker.getNetwork(n.Id).remove();
    }
  }
  await server?.stop();
  await anthropic?.close();
  await database?.drop();
  await new Promise((r) => receiver?.close(r));
  if (server) rmSync(server.dataDir, { recursive: true, force: true });
});

function attr(span: OtlpSpan, key: string): string | number | undefined {
  const v = span.attributes?.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue !== undefined ? Number(v.intValue) : undefined);
}

/** The first span received that matches (bounded wait: the exporter sends every 200 ms). */
async function spanWhere(what: string, match: (s: OtlpSpan) => boolean, ms = 20_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = spans.find(match);
    if (found) return found;
    if (Date.now() > deadline) {
      throw new Error(`no ${what} span; received: ${[...new Set(spans.map((s) => s.name))]}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The span named `name` carrying `requestId`, in the trace of that request's server span. */
async function childSpan(name: string, requestId: string, ms?: number): Promise<OtlpSpan> {
  const request = await spanWhere(
    `request ${requestId}`,
    (s) => s.kind === 2 && attr(s, 'vaporform.request_id') === requestId,
  );
  const span = await spanWhere(
    `${name} of ${requestId}`,
    (s) => s.name === name && attr(s, 'vaporform.request_id') === requestId,
    ms,
  );
  expect(span.kind).toBe(3); // CLIENT
  expect(span.traceId).toBe(request.traceId);
  return span;
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
  it('Docker, Terraform and AI provider calls are client spans in the request’s trace, with its request id', async () => {
    const me = await signUp(server.url, 'otel-calls@example.test');
    const created = await call<{ project: { id: string } }>(server.url, 'POST', '/api/projects', {
      token: me.token,
      body: { name: 'traced', description: 'spans' },
    });
    expect(created.status).toBe(201);
    const projectId = created.body.project.id;

    // An AI provider call: one model turn of a chat.
    const chat = await fetch(`${server.url}/api/projects/${projectId}/chat`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${me.token}`,
        'content-type': 'application/json',
        'x-request-id': 'otel-ai-0001',
      },
      body: JSON.stringify({ message: 'Say something' }),
    });
    expect(chat.status).toBe(200);
    expect(await chat.text()).toContain('Traced.');
    const turn = await childSpan('anthropic turn', 'otel-ai-0001');
    expect(attr(turn, 'gen_ai.system')).toBe('anthropic');
    expect(anthropic.requests.length).toBeGreaterThan(0);

    // A Docker call: the project's container looked up on the engine.
    const container = await call(server.url, 'GET', `/api/containers/${projectId}`, {
      token: me.token,
      headers: { 'x-request-id': 'otel-docker-0001' },
    });
    expect(container.status).toBeLessThan(500);
    await childSpan('docker inspect', 'otel-docker-0001');

    // Terraform runs: a provision answers 202 at once; its init, plan and apply run after.
    const provision = await call<{ deployment: { id: string } }>(
      server.url,
      'POST',
      '/api/provision',
      {
        token: me.token,
        body: { projectId, provider: 'local', machines: 1 },
        headers: { 'x-request-id': 'otel-terraform-0001' },
      },
    );
    expect(provision.status).toBe(202);
    deploymentId = provision.body.deployment.id;
    for (const step of ['init', 'plan', 'apply']) {
      const run = await childSpan(`terraform ${step}`, 'otel-terraform-0001', 240_000);
      expect(attr(run, 'process.exit.code')).toBe(0);
    }

    // Clean up: destroy the deployment (more Terraform runs) and wait until it is gone.
    const destroyDeadline = Date.now() + 240_000;
    let status = '';
    let deleted = false;
    while (status !== 'destroyed' && Date.now() < destroyDeadline) {
      const r = await call<{ deployment: { status: string } }>(
        server.url,
        'GET',
        `/api/infrastructure/${deploymentId}`,
        { token: me.token },
      );
      status = r.body.deployment.status;
      if (!deleted && (status === 'ready' || status === 'failed')) {
        deleted = true;
        const d = await call(server.url, 'DELETE', `/api/infrastructure/${deploymentId}`, {
          token: me.token,
        });
        expect(d.status).toBe(202);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(status).toBe('destroyed');
  }, 600_000);
});
