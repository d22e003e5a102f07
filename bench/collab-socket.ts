/**
 * Collaborative editing end to end (issue 13): ShareDB's stock client (`sharedb/lib/client`)
 * over real WebSockets against real server processes, beside a baseline measured in the same
 * run: plain ShareDB (in-memory database, no auth, no PostgreSQL, no Redis) behind a bare `ws`
 * server in its own process. Rows:
 *   - op round trip, `submitOp` at a typist → the op applied at an observer's client, with 8 and
 *     32 typists on one document (each inserts a tagged character every ~100 ms):
 *     baseline; Vaporform one instance (`WS /api/collab`: token, membership, op committed in
 *     PostgreSQL before it is acknowledged, published through Redis); Vaporform two instances
 *     (two `src/main.ts` processes sharing PostgreSQL and a redis-server, the observer on the
 *     second): the typists on the first, as HAProxy routes a project's sockets (`?project=`),
 *     and the typists alternating between the two (the worst case: each version raced); after
 *     an unmeasured warm-up round on each target (8 typists, 5 ops each);
 *   - ops/s: 32 typists submitting back to back (next op once the last is acknowledged), per
 *     instance;
 *   - memory per idle collab socket: N sockets (BENCH_COLLAB_SOCKETS, 10,000) each subscribed
 *     to one document, the server process's RSS and heap (after a forced GC) before and after;
 *     then M more (BENCH_COLLAB_MORE, 5,000) and what they alone add: one more socket's cost,
 *     without what the first opening storm left reserved once (V8's grown young generation);
 *     and all N + M at the end (V8 reserves and gives back heap in large steps, so the first
 *     and the next readings move by ±3 KiB/socket from run to run; their sum much less).
 * Servers are child processes started with `--expose-gc` and a SIGUSR2 hook that runs a GC and
 * prints `process.memoryUsage()`. Loopback only; every phase is bounded in count and time.
 *
 *   npm run bench -- collab-socket    # BENCH_COLLAB_OPS=30 per typist, 10 s window per run
 *   BENCH_COLLAB_PARTS=memory BENCH_COLLAB_SOCKETS=2000 npm run bench -- collab-socket
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import WebSocketJSONStream from '@teamwork/websocket-json-stream';
import ShareDB from 'sharedb';
import { WebSocketServer } from 'ws';
import { insert } from 'ot-text-unicode';
import { createLogger } from '../apps/server/src/common/logger.ts';
import { freePort, startEmbeddedPostgres } from '../apps/server/src/db/index.ts';
import { collabTextType } from '../apps/server/src/services/collab/index.ts';
import {
  collabUrl,
  connectCollab,
  docs,
  type CollabClient,
} from '../apps/server/test/collab-client.ts';
import { startRedis } from '../apps/server/test/redis.ts';
import { summarise, type Result } from './results.ts';

const root = path.resolve(import.meta.dirname, '..');
const OPS_PER_TYPIST = Number(process.env.BENCH_COLLAB_OPS ?? 30);
const WINDOW_MS = Number(process.env.BENCH_COLLAB_WINDOW_MS ?? 10_000);
const DRAIN_MS = 60_000;
const SOCKETS = Number(process.env.BENCH_COLLAB_SOCKETS ?? 10_000);
/** Sockets opened after the first reading, for the marginal cost (the fd limit here: 20,000). */
const MORE_SOCKETS = Number(process.env.BENCH_COLLAB_MORE ?? 5_000);
const OPEN_DEADLINE_MS = Number(process.env.BENCH_COLLAB_OPEN_MS ?? 120_000);
const KEYSTROKE_MS = 100;
/** How long the sockets sit idle before the memory reading (BENCH_COLLAB_IDLE_MS). */
const IDLE_MS = Number(process.env.BENCH_COLLAB_IDLE_MS ?? 40_000);
/** Which parts run: `latency`, `throughput`, `memory` (comma-separated; all by default). */
const PARTS = new Set((process.env.BENCH_COLLAB_PARTS ?? 'latency,throughput,memory').split(','));
const TAG_BASE = 0xe000; // private-use area: 6,400 distinct tags per document
const GC_HOOK =
  'data:text/javascript,process.on("SIGUSR2",()=>{globalThis.gc();' +
  'process.stderr.write("VFMEM "+JSON.stringify(process.memoryUsage())+"\\n")})';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Distinct op errors seen, printed once each (an error row must say what failed). */
const seenErrors = new Set<string>();
function noteError(err: unknown): void {
  const e = err as { code?: string; message?: string };
  const text = `${e?.code ?? ''} ${e?.message ?? String(err)}`.trim();
  if (seenErrors.has(text)) return;
  seenErrors.add(text);
  console.log(`op error: ${text}`);
}

// ── the baseline server: `node --import tsx bench/collab-socket.ts` with this variable set ──
if (process.env.BENCH_COLLAB_BASELINE_PORT) {
  ShareDB.types.register(collabTextType as never);
  const backend = new ShareDB();
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: Number(process.env.BENCH_COLLAB_BASELINE_PORT),
    maxPayload: 4 * 1024 * 1024,
  });
  wss.on('connection', (ws) => backend.listen(new WebSocketJSONStream(ws as never)));
  wss.on('listening', () => process.stdout.write('READY\n'));
}

interface Server {
  name: string;
  base: string;
  child: ChildProcess;
  /** GC in the child, then its memory (bytes): RSS from /proc, heap from memoryUsage(). */
  memory(): Promise<{ rss: number; heapUsed: number; heapTotal: number; external: number }>;
  stop(): Promise<void>;
}

async function startChild(
  name: string,
  args: string[],
  env: Record<string, string>,
  port: number,
  ready: (out: string) => Promise<boolean>,
): Promise<Server> {
  const child = spawn(process.execPath, ['--expose-gc', '--import', GC_HOOK, ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let memWaiter: ((line: string) => void) | undefined;
  const keep = (d: Buffer) => {
    const text = d.toString();
    out = (out + text).slice(-100_000);
    const m = /VFMEM (\{.*\})/.exec(text);
    if (m && memWaiter) memWaiter(m[1]!);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const deadline = Date.now() + 150_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited ${child.exitCode}: ${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} not ready in 150 s: ${out}`);
    }
    if (await ready(out).catch(() => false)) break;
    await sleep(200);
  }
  return {
    name,
    base: `http://127.0.0.1:${port}`,
    child,
    memory: () =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no memory report`)), 30_000);
        memWaiter = (line) => {
          clearTimeout(timer);
          memWaiter = undefined;
          const usage = JSON.parse(line) as NodeJS.MemoryUsage;
          const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
          const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
          resolve({
            rss,
            heapUsed: usage.heapUsed,
            heapTotal: usage.heapTotal,
            external: usage.external,
          });
        };
        child.kill('SIGUSR2');
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 20_000).unref();
      }),
  };
}

async function startBaseline(): Promise<Server> {
  const port = await freePort();
  return startChild(
    'baseline',
    ['--import', 'tsx', 'bench/collab-socket.ts'],
    { BENCH_COLLAB_BASELINE_PORT: String(port) },
    port,
    async (out) => out.includes('READY'),
  );
}

async function startVaporform(name: string, env: Record<string, string>): Promise<Server> {
  const port = await freePort();
  return startChild(
    name,
    ['--import', 'tsx', 'apps/server/src/main.ts'],
    {
      PORT: String(port),
      HOST: '127.0.0.1',
      VAPORFORM_RUNTIME: 'process',
      VAPORFORM_RECONCILE_SECONDS: '0',
      VAPORFORM_STATS_SECONDS: '0',
      LOG_LEVEL: 'warn',
      ...env,
    },
    port,
    async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok,
  );
}

async function api(base: string, method: string, url: string, token?: string, body?: unknown) {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : undefined;
}

/** Where the clients of one run connect, and the document they share. */
interface Target {
  label: string;
  /** Socket URL per client index (the observer is index -1). */
  url(i: number): string;
  /** A fresh document: [collection, id]; created by the server on first subscribe or here. */
  newDoc(): Promise<[string, string]>;
  create: boolean;
  instances: number;
}

async function open(target: Target, n: number): Promise<CollabClient[]> {
  const clients: CollabClient[] = [];
  for (let i = 0; i < n; i += 16) {
    clients.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(16, n - i) }, (_, k) => connectCollab(target.url(i + k))),
      )),
    );
  }
  return clients;
}

async function subscribeAll(target: Target, clients: CollabClient[], [c, id]: [string, string]) {
  const first = clients[0]!.doc(c, id);
  await docs.subscribe(first);
  if (target.create && first.type === null) {
    await new Promise<void>((resolve, reject) =>
      first.create('', collabTextType.uri, (err?: unknown) => (err ? reject(err) : resolve())),
    );
  }
  const all = [first];
  for (const client of clients.slice(1)) {
    const d = client.doc(c, id);
    await docs.subscribe(d);
    all.push(d);
  }
  return all;
}

/** Typists insert a tagged character every ~100 ms; the observer (last client) times arrivals. */
async function roundTrip(
  target: Target,
  typists: number,
  opsPerTypist = OPS_PER_TYPIST,
): Promise<Result> {
  const load0 = loadavg()[0]!;
  const clients = await open(target, typists + 1);
  try {
    const all = await subscribeAll(target, clients, await target.newDoc());
    const observer = all[typists]!;
    const sentAt = new Map<number, number>();
    const latencies: number[] = [];
    observer.on('op', (op: unknown) => {
      const now = performance.now();
      for (const part of op as unknown[]) {
        if (typeof part !== 'string') continue;
        for (const ch of part) {
          const sent = sentAt.get(ch.codePointAt(0)! - TAG_BASE);
          if (sent !== undefined) latencies.push(now - sent);
        }
      }
    });
    let errors = 0;
    let nextTag = 0;
    const started = performance.now();
    const stopAt = started + WINDOW_MS;
    await Promise.all(
      all.slice(0, typists).map(async (doc, who) => {
        await sleep((who * KEYSTROKE_MS) / typists); // spread the typists over the interval
        const acks: Promise<void>[] = [];
        for (let i = 0; i < opsPerTypist && performance.now() < stopAt; i++) {
          const tag = nextTag++;
          const length = Array.from((doc.data as string) ?? '').length;
          const at = Math.floor(Math.random() * (length + 1));
          sentAt.set(tag, performance.now());
          acks.push(
            docs.submit(doc, insert(at, String.fromCodePoint(TAG_BASE + tag))).catch((err) => {
              errors++;
              noteError(err);
            }),
          );
          await sleep(KEYSTROKE_MS * (0.5 + Math.random()));
        }
        await Promise.race([Promise.all(acks), sleep(DRAIN_MS)]);
      }),
    );
    const total = nextTag;
    const deadline = Date.now() + DRAIN_MS;
    while (latencies.length + errors < total && Date.now() < deadline) await sleep(10);
    const elapsed = performance.now() - started;
    const lost = total - latencies.length - errors;
    const result = summarise(
      `${target.label}, ${typists} typists (${total} ops, load ${load0.toFixed(1)}→${loadavg()[0]!.toFixed(1)})`,
      latencies,
      errors + Math.max(0, lost),
    );
    result.rps = (latencies.length / elapsed) * 1000;
    return result;
  } finally {
    for (const c of clients) c.close();
  }
}

/** 32 typists back to back; rps = acknowledged ops per second per instance. */
async function throughput(target: Target, typists: number): Promise<Result> {
  const load0 = loadavg()[0]!;
  const clients = await open(target, typists);
  try {
    const all = await subscribeAll(target, clients, await target.newDoc());
    const latencies: number[] = [];
    let errors = 0;
    const started = performance.now();
    const stopAt = started + WINDOW_MS;
    await Promise.all(
      all.map(async (doc) => {
        for (let i = 0; i < OPS_PER_TYPIST * 3 && performance.now() < stopAt; i++) {
          const t0 = performance.now();
          try {
            await Promise.race([
              docs.submit(doc, insert(0, 'x')),
              sleep(DRAIN_MS).then(() => Promise.reject(new Error('no ack'))),
            ]);
            latencies.push(performance.now() - t0);
          } catch (err) {
            errors++;
            noteError(err);
          }
        }
      }),
    );
    const elapsed = performance.now() - started;
    const result = summarise(
      `${target.label}, ${typists} typists back to back, submit → ack (${latencies.length} ops, ops/s per instance, load ${load0.toFixed(1)})`,
      latencies,
      errors,
    );
    result.rps = (latencies.length / elapsed / target.instances) * 1000;
    return result;
  } finally {
    for (const c of clients) c.close();
  }
}

interface MemoryRow {
  label: string;
  sockets: number;
  openSeconds: number;
  rssKiB: number;
  heapKiB: number;
  /** V8's heap as reserved from the system (used or not): the part of RSS that is V8's. */
  heapTotalKiB: number;
  externalKiB: number;
  /** The next BENCH_COLLAB_MORE sockets alone: what one more socket costs (fixed costs out). */
  more: number;
  moreRssKiB: number;
  moreHeapKiB: number;
  /** All sockets at the end (the first N and the next M): what V8 reserved once is spread. */
  allRssKiB: number;
  allHeapKiB: number;
}

/** N idle sockets, each subscribed to one document; server memory per socket after a GC. */
async function idleSockets(server: Server, target: Target): Promise<MemoryRow> {
  const [c, id] = await target.newDoc();
  const warm = await open(target, 20);
  await subscribeAll(target, warm, [c, id]); // the document exists before the baseline reading
  for (const w of warm) w.close();
  await sleep(2000);
  await server.memory();
  const before = await server.memory();
  const clients: CollabClient[] = [];
  const started = Date.now();
  let failures = 0;
  const openUpTo = async (count: number) => {
    const deadline = Date.now() + OPEN_DEADLINE_MS;
    while (clients.length < count && Date.now() < deadline && failures < 50) {
      const batch = Math.min(50, count - clients.length);
      const opened = await Promise.allSettled(
        Array.from({ length: batch }, async (_, k) => {
          const client = await connectCollab(target.url(clients.length + k));
          try {
            await docs.subscribe(client.doc(c, id));
          } catch (err) {
            client.close();
            throw err;
          }
          return client;
        }),
      );
      for (const o of opened) {
        if (o.status === 'fulfilled') clients.push(o.value);
        else failures++;
      }
    }
  };
  // Idle sockets: past the opening storm, long enough for V8's memory reducer to give back
  // the young generation the storm grew (it acts ~8 s after allocation slows down, in a few
  // rounds: after 15 s the second reading sometimes still held a 32 MiB young generation).
  const idle = async () => {
    await sleep(IDLE_MS);
    await server.memory();
    return server.memory();
  };
  try {
    await openUpTo(SOCKETS);
    const openSeconds = (Date.now() - started) / 1000;
    const sockets = clients.length;
    const after = await idle();
    await openUpTo(sockets + MORE_SOCKETS);
    const more = clients.length - sockets;
    const afterMore = more > 0 ? await idle() : after;
    const per = (a: number, b: number, n = sockets) => Number(((a - b) / 1024 / n).toFixed(2));
    return {
      label: `${target.label}${failures ? ` (${failures} refused)` : ''}`,
      sockets,
      openSeconds,
      rssKiB: per(after.rss, before.rss),
      heapKiB: per(after.heapUsed, before.heapUsed),
      heapTotalKiB: per(after.heapTotal, before.heapTotal),
      externalKiB: per(after.external, before.external),
      more,
      moreRssKiB: more ? per(afterMore.rss, after.rss, more) : 0,
      moreHeapKiB: more ? per(afterMore.heapUsed, after.heapUsed, more) : 0,
      allRssKiB: per(afterMore.rss, before.rss, clients.length),
      allHeapKiB: per(afterMore.heapUsed, before.heapUsed, clients.length),
    };
  } finally {
    for (const client of clients) client.close();
    await sleep(2000);
  }
}

/** Rows: baseline 8 typists first (the ratio column's base), then the rest. */
export async function collabSocketBench(): Promise<Result[]> {
  const log = createLogger('silent');
  const dir = mkdtempSync(path.join(tmpdir(), 'vf-bench-collab-socket-'));
  const pgDir = mkdtempSync(path.join(tmpdir(), 'vf-bench-collab-socket-pg-'));
  const embedded = process.env.BENCH_DATABASE_URL
    ? undefined
    : await startEmbeddedPostgres(pgDir, log);
  const databaseUrl = process.env.BENCH_DATABASE_URL ?? embedded!.url;
  const redis = await startRedis();
  const servers: Server[] = [];
  try {
    const baseline = await startBaseline();
    servers.push(baseline);
    const env = {
      DATABASE_URL: databaseUrl,
      VAPORFORM_DATA_DIR: path.join(dir, 'data'),
      REDIS_URL: redis.url,
      JWT_SECRET: randomBytes(32).toString('hex'),
    };
    const a = await startVaporform('instance A', env);
    servers.push(a);
    const b = await startVaporform('instance B', env); // after A: A ran the migrations
    servers.push(b);

    const email = `bench${Date.now()}@example.test`;
    await api(a.base, 'POST', '/api/auth/register', undefined, {
      email,
      password: 'bench password 1',
      name: 'Bench',
    });
    const { token } = await api(a.base, 'POST', '/api/auth/login', undefined, {
      email,
      password: 'bench password 1',
    });
    const projectId: string = (
      await api(a.base, 'POST', '/api/projects', token, { name: 'collab-bench' })
    ).project.id;
    let fileSeq = 0;
    const newFile = async (): Promise<[string, string]> => {
      const file = `bench/doc-${++fileSeq}.txt`;
      await api(a.base, 'PUT', `/api/projects/${projectId}/files/${file}`, token, {
        content: '// collab bench\n',
      });
      return [projectId, file];
    };
    let baseSeq = 0;
    const base: Target = {
      label: 'plain ShareDB, in-memory DB over WebSocket (baseline)',
      url: () => baseline.base.replace(/^http/, 'ws'),
      newDoc: async () => ['bench', `doc-${++baseSeq}`],
      create: true,
      instances: 1,
    };
    // Every Vaporform socket is opened as the IDE opens it: for the one project (`?project=`).
    const one: Target = {
      label: 'Vaporform WS /api/collab, 1 instance',
      url: () => collabUrl(a.base, token, projectId),
      newDoc: newFile,
      create: false,
      instances: 1,
    };
    const two: Target = {
      label: 'Vaporform WS /api/collab, 2 instances (PostgreSQL + Redis)',
      url: (i) => collabUrl(i % 2 === 0 ? a.base : b.base, token, projectId),
      newDoc: newFile,
      create: false,
      instances: 2,
    };
    // Observer = the last client: with 8 or 32 typists + 1 it is index 8/32 → instance A; put
    // it on B by making the typists' indices odd/even around it.
    const twoObserverOnB: Target = {
      ...two,
      label: 'Vaporform WS /api/collab, 2 instances, typists split (PostgreSQL + Redis)',
      url: (i) => collabUrl(i % 2 === 0 ? b.base : a.base, token, projectId),
    };
    // As HAProxy routes the IDE's sockets (`balance url_param project`): every typist on the
    // project's instance A, the observer (index `typists`) on B, reached through Redis.
    const routed = (typists: number): Target => ({
      ...two,
      label: 'Vaporform WS /api/collab, 2 instances, typists on the project’s instance',
      url: (i) => collabUrl(i < typists ? a.base : b.base, token, projectId),
    });

    const rows: Result[] = [];
    if (PARTS.has('latency')) {
      // Warm-up, not measured: the first runs after a start also time the JIT and the pools.
      for (const target of [base, one, routed(8), twoObserverOnB]) await roundTrip(target, 8, 5);
    }
    for (const typists of PARTS.has('latency') ? [8, 32] : []) {
      rows.push(await roundTrip(base, typists));
      rows.push(await roundTrip(one, typists));
      rows.push(await roundTrip(routed(typists), typists));
      rows.push(await roundTrip(twoObserverOnB, typists));
    }
    if (PARTS.has('throughput')) {
      rows.push(await throughput(base, 32));
      rows.push(await throughput(one, 32));
      rows.push(await throughput(two, 32));
    }

    const memory: MemoryRow[] = [];
    if (PARTS.has('memory')) {
      memory.push(await idleSockets(baseline, base));
      memory.push(await idleSockets(a, one));
    }
    console.log('### collab-socket: memory per idle socket (server process, after a GC)\n');
    console.log(
      '| server | sockets | opened in s | RSS KiB/socket | heap KiB/socket | heap reserved KiB/socket | external KiB/socket | next sockets | their RSS KiB/socket | their heap KiB/socket | all sockets: RSS KiB/socket | all: heap KiB/socket |',
    );
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const m of memory) {
      console.log(
        `| ${m.label} | ${m.sockets} | ${m.openSeconds.toFixed(1)} | ${m.rssKiB} | ${m.heapKiB} | ${m.heapTotalKiB} | ${m.externalKiB} | ${m.more} | ${m.moreRssKiB} | ${m.moreHeapKiB} | ${m.allRssKiB} | ${m.allHeapKiB} |`,
      );
    }
    console.log(
      `\nload average at the end: ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}\n`,
    );
    return rows;
  } finally {
    for (const s of servers.reverse()) await s.stop();
    await redis.stop();
    await embedded?.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(pgDir, { recursive: true, force: true });
  }
}
