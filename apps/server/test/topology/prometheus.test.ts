import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/db/index.ts';
import { createTestDatabase, type TestDatabase } from '../db.ts';
import { startFakeAnthropic, type FakeServer } from '../fakes/anthropic.ts';
import { call, signUp } from './client.ts';
import { requireBinary, startServer, type ServerProc } from './processes.ts';
import { ProjectSocket } from './socket.ts';

// Debian's Prometheus scrapes the real server every second; the test drives traffic (HTTP, a
// project socket, file writes, an assistant turn against the local fake Anthropic API) and asks
// Prometheus's HTTP API whether the series exist and moved.

let database: TestDatabase;
let anthropic: FakeServer;
let server: ServerProc;
let prometheusUrl: string;
let stopPrometheus: () => Promise<void>;
const dir = mkdtempSync(path.join(tmpdir(), 'vf-prometheus-'));

beforeAll(async () => {
  requireBinary('prometheus', 'prometheus');
  [database, anthropic] = await Promise.all([createTestDatabase(), startFakeAnthropic()]);
  anthropic.script(() => ({ text: 'Hello from the model.', usage: { input: 120, output: 30 } }));
  server = await startServer({
    DATABASE_URL: database.url,
    ANTHROPIC_API_KEY: 'sk-fake',
    ANTHROPIC_BASE_URL: anthropic.url,
  });
  const port = await freePort();
  writeFileSync(
    path.join(dir, 'prometheus.yml'),
    [
      'global:',
      '  scrape_interval: 1s',
      'scrape_configs:',
      '  - job_name: vaporform',
      '    metrics_path: /metrics',
      '    static_configs:',
      `      - targets: ['127.0.0.1:${server.port}']`,
      '',
    ].join('\n'),
  );
  const child = spawn(
    'prometheus',
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  stopPrometheus = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  prometheusUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited: ${out}`);
    const ready = await fetch(`${prometheusUrl}/-/ready`).catch(() => undefined);
    if (ready?.ok) break;
    if (Date.now() > deadline) throw new Error(`prometheus not ready: ${out}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}, 180_000);

afterAll(async () => {
  await stopPrometheus?.();
  await server?.stop();
  await anthropic?.close();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
  if (server) rmSync(server.dataDir, { recursive: true, force: true });
});

/** Sum of an instant query's values (0 when the series does not exist). */
async function value(query: string): Promise<number | undefined> {
  const res = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(query)}`);
  const body = (await res.json()) as {
    status: string;
    data: { result: { value: [number, string] }[] };
  };
  if (body.status !== 'success') throw new Error(`query ${query}: ${JSON.stringify(body)}`);
  if (body.data.result.length === 0) return undefined;
  return body.data.result.reduce((sum, r) => sum + Number(r.value[1]), 0);
}

/** Waits until `query` satisfies `ok` (Prometheus scrapes every second). */
async function eventually(
  query: string,
  ok: (v: number | undefined) => boolean,
): Promise<number | undefined> {
  let last: number | undefined;
  for (let i = 0; i < 60; i++) {
    last = await value(query);
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${query} stayed at ${last}`);
}

describe('a real Prometheus scraping the server', () => {
  it('scrapes the target and sees the seeds’ series move with traffic', async () => {
    await eventually('up{job="vaporform"}', (v) => v === 1);
    const httpBefore = (await eventually(
      'sum(vaporform_http_request_duration_seconds_count)',
      (v) => v !== undefined,
    ))!;
    const session = await signUp(server.url, 'metrics@example.test');
    const created = await call<{ project: { id: string } }>(server.url, 'POST', '/api/projects', {
      token: session.token,
      body: { name: 'metrics', description: 'scraped' },
    });
    expect(created.status).toBe(201);
    const id = created.body.project.id;
    const socket = new ProjectSocket(server.url, id, session.token);
    await socket.opened();
    for (let i = 0; i < 5; i++) {
      const w = await call(server.url, 'PUT', `/api/projects/${id}/files/m${i}.txt`, {
        token: session.token,
        body: { content: `metric ${i}` },
      });
      expect(w.status).toBe(201);
    }
    const chat = await fetch(`${server.url}/api/projects/${id}/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${session.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'Say hello' }),
    });
    expect(chat.status).toBe(200);
    expect(await chat.text()).toContain('done');

    await eventually(
      'sum(vaporform_http_request_duration_seconds_count)',
      (v) => (v ?? 0) >= httpBefore + 8,
    );
    await eventually(
      'sum(vaporform_http_request_duration_seconds_count{route=~"/api/projects/.*files.*",method="PUT",status="201"})',
      (v) => (v ?? 0) >= 5,
    );
    await eventually('vaporform_projects_created_total', (v) => (v ?? 0) >= 1);
    await eventually('sum(vaporform_auth_login_attempts_total)', (v) => (v ?? 0) >= 1);
    await eventually('sum(vaporform_file_changes_total)', (v) => (v ?? 0) >= 5);
    await eventually('vaporform_websocket_connections{channel="project"}', (v) => v === 1);
    await eventually('vaporform_project_sockets', (v) => v === 1);
    await eventually('sum(vaporform_claude_requests_total{outcome="ok"})', (v) => v === 1);
    await eventually('sum(vaporform_claude_request_duration_seconds_count)', (v) => v === 1);
    await eventually('sum(vaporform_claude_tokens_total{kind="input"})', (v) => (v ?? 0) >= 120);
    await eventually('sum(vaporform_claude_tokens_total{kind="output"})', (v) => (v ?? 0) >= 30);
    await eventually('vaporform_process_resident_memory_bytes', (v) => (v ?? 0) > 0);

    socket.close();
    await eventually('vaporform_websocket_connections{channel="project"}', (v) => v === 0);
  }, 120_000);

  it('every query of the Grafana dashboard is valid PromQL on series the server exposes', async () => {
    const dashboard = JSON.parse(
      readFileSync(
        path.resolve(import.meta.dirname, '../../../../infra/grafana/vaporform.json'),
        'utf8',
      ),
    ) as { panels: { title: string; targets: { expr: string }[] }[] };
    const exposed = new Set(
      [...(await (await fetch(`${server.url}/metrics`)).text()).matchAll(/^# TYPE (\S+)/gm)].map(
        (m) => m[1]!,
      ),
    );
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(10);
    for (const expr of exprs) {
      for (const [name] of expr.matchAll(/vaporform_[a-z_]+/g)) {
        const base = name.replace(/_(bucket|count|sum)$/, '');
        expect(exposed.has(name) || exposed.has(base), `${name} in ${expr}`).toBe(true);
      }
      const query = expr.replaceAll('$__rate_interval', '1m');
      const res = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(query)}`);
      expect(res.status, `${expr}: ${await res.clone().text()}`).toBe(200);
    }
  });
});
