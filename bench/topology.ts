/**
 * The scale-out shape (issue 17): three `src/main.ts` processes sharing one PostgreSQL and one
 * redis-server behind Debian's HAProxy (round robin, no stickiness, the configuration of
 * apps/server/test/topology), against one instance alone, in the same run. Rows:
 *   - baseline: one instance alone, straight (authenticated `GET /api/projects/:id/files/:path`:
 *     token check, membership, a file read from PostgreSQL);
 *   - HAProxy over that one instance (what the proxy costs), and over the three (the scaling
 *     factor: three against one behind the same proxy, and against one alone), each with the
 *     test's configuration (a new backend connection per request, `http-server-close`) and
 *     with backend keep-alive (`http-reuse safe`);
 *   - reconnect after SIGKILL: project sockets opened through HAProxy, one instance killed, the
 *     time from the kill until each of its sockets is open again through HAProxy (p50/p99 ms;
 *     the req/s column counts the sockets that came back per second of the slowest one).
 * On a machine with fewer cores than instances the factor says what the cores allow, not what
 * the instances could do: every process, the proxy, PostgreSQL and autocannon share them.
 *
 *   npm run bench -- topology    # BENCH_SECONDS (10) per load run, BENCH_TOPOLOGY_CONNECTIONS (32)
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { createLogger } from '../apps/server/src/common/logger.ts';
import { freePort, startEmbeddedPostgres } from '../apps/server/src/db/index.ts';
import { startRedis } from '../apps/server/test/redis.ts';
import { call, signUp } from '../apps/server/test/topology/client.ts';
import {
  startHaproxy,
  startServer,
  type HaproxyProc,
  type ServerProc,
} from '../apps/server/test/topology/processes.ts';
import { ProjectSocket } from '../apps/server/test/topology/socket.ts';
import { summarise, type Result } from './results.ts';

const DURATION_S = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_TOPOLOGY_CONNECTIONS ?? 32);
const SOCKETS = 30;

/** autocannon against `url` (2 s warm-up first), as a row. */
async function load(name: string, url: string, token: string): Promise<Result> {
  const run = (duration: number) =>
    new Promise<autocannon.Result>((resolve, reject) =>
      autocannon(
        { url, headers: { authorization: `Bearer ${token}` }, connections: CONNECTIONS, duration },
        (err: Error | null, result: autocannon.Result) => (err ? reject(err) : resolve(result)),
      ),
    );
  await run(2);
  const r = await run(DURATION_S);
  return {
    name: `${name} (load avg ${loadavg()[0]!.toFixed(1)})`,
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  };
}

export async function topologyBench(): Promise<Result[]> {
  const log = createLogger('silent');
  const pgDir = mkdtempSync(path.join(tmpdir(), 'vf-bench-topology-pg-'));
  const embedded = process.env.BENCH_DATABASE_URL
    ? undefined
    : await startEmbeddedPostgres(pgDir, log);
  const redis = await startRedis();
  const servers: ServerProc[] = [];
  const proxies: HaproxyProc[] = [];
  const sockets: ProjectSocket[] = [];
  try {
    const proxyPort = await freePort();
    const env = {
      DATABASE_URL: process.env.BENCH_DATABASE_URL ?? embedded!.url,
      REDIS_URL: redis.url,
      JWT_SECRET: randomBytes(32).toString('hex'),
      VAPORFORM_MASTER_KEY: randomBytes(32).toString('hex'),
      VAPORFORM_PUBLIC_URL: `http://127.0.0.1:${proxyPort}`,
      VAPORFORM_TRUSTED_PROXIES: '127.0.0.1',
      LOG_LEVEL: 'error',
    };
    servers.push(await startServer(env)); // the first runs the migrations
    servers.push(...(await Promise.all([startServer(env), startServer(env)])));
    const backends = servers.map((s) => `127.0.0.1:${s.port}`);
    const three = await startHaproxy(backends, { port: proxyPort });
    const one = await startHaproxy(backends.slice(0, 1));
    const reuseThree = await startHaproxy(backends, { backendKeepAlive: true });
    const reuseOne = await startHaproxy(backends.slice(0, 1), { backendKeepAlive: true });
    proxies.push(three, one, reuseThree, reuseOne);

    const me = await signUp(three.url, `bench-topology-${Date.now()}@example.test`);
    const created = await call<{ project: { id: string } }>(three.url, 'POST', '/api/projects', {
      token: me.token,
      body: { name: 'topology bench' },
    });
    const projectId = created.body.project.id;
    const file = `/api/projects/${projectId}/files/hello.txt`;
    const put = await call(three.url, 'PUT', file, {
      token: me.token,
      body: { content: 'hello from the bench\n' },
    });
    if (put.status !== 201) throw new Error(`seeding the file: ${put.status}`);

    const alone = await load('one instance alone', `${servers[0]!.url}${file}`, me.token);
    const proxied = await load('HAProxy → one instance', `${one.url}${file}`, me.token);
    const balanced = await load('HAProxy → three instances', `${three.url}${file}`, me.token);
    const reusedOne = await load(
      'HAProxy, backend keep-alive → one instance',
      `${reuseOne.url}${file}`,
      me.token,
    );
    const reusedThree = await load(
      'HAProxy, backend keep-alive → three instances',
      `${reuseThree.url}${file}`,
      me.token,
    );

    // Sockets spread over the three by round robin; the second instance is killed.
    for (let i = 0; i < SOCKETS; i++) {
      const s = new ProjectSocket(three.url, projectId, me.token);
      sockets.push(s);
      await s.opened();
    }
    const onVictim = sockets.filter((s) => s.servedBy === 's2');
    const killedAt = performance.now();
    servers[1]!.child.kill('SIGKILL');
    const times = await Promise.all(
      onVictim.map(async (old) => {
        await old.closed();
        for (let attempt = 0; attempt < 100; attempt++) {
          const s = new ProjectSocket(three.url, projectId, me.token);
          sockets.push(s);
          try {
            await s.opened(5_000);
            if (s.servedBy !== 's2') return performance.now() - killedAt;
          } catch {
            await new Promise((r) => setTimeout(r, 50));
          }
        }
        throw new Error('a socket did not reconnect in 100 attempts');
      }),
    );
    const reconnect = summarise(
      `reconnect after SIGKILL (${onVictim.length} of ${SOCKETS} sockets were on it)`,
      times,
      0,
      0,
    );
    reconnect.rps = (times.length / Math.max(...times)) * 1000;
    const x = (a: Result, b: Result) => `×${(a.rps / b.rps).toFixed(2)}`;
    console.log(
      `topology: three instances vs one alone ${x(balanced, alone)}; vs one behind the same ` +
        `HAProxy ${x(balanced, proxied)} (keep-alive ${x(reusedThree, reusedOne)}); ` +
        `reconnect p50 ${reconnect.p50} ms`,
    );
    return [alone, proxied, balanced, reusedOne, reusedThree, reconnect];
  } finally {
    for (const s of sockets) s.close();
    for (const p of proxies) await p.stop();
    for (const s of servers) {
      await s.stop();
      rmSync(s.dataDir, { recursive: true, force: true });
    }
    await redis.stop();
    await embedded?.stop();
    rmSync(pgDir, { recursive: true, force: true });
  }
}
