/**
 * Collaborative editing storage (issue 13): op round trip on one `ot-text-unicode` document,
 * from `submitOp` at a typist's client to the op applied at an observer's client, with 8 and
 * 32 people typing, for
 *   - ShareDB's in-memory database, one instance (the baseline);
 *   - PostgresDB (services/collab/db-postgres.ts), one instance: every op committed in
 *     PostgreSQL before it is acknowledged and published;
 *   - PostgresDB + RedisPubSub, two instances: half the typists on each, the observer on the
 *     second, so most ops cross PostgreSQL and Redis.
 * Each typist inserts one tagged character (a private-use code point) every ~100 ms, the pace
 * of a fast typist; the observer notes when each tag arrives. Then a throughput row per
 * database: 32 typists each submitting the next op as soon as the last is acknowledged.
 * Every instance queues submits per document (`queueSubmitsPerDocument`), as the server does.
 *
 * Clients are ShareDB's stock client connected in-process (`backend.connect()`): the figures are
 * ShareDB + storage + pub/sub, without the WebSocket hop; both instances share this process.
 * Embedded PostgreSQL (or BENCH_DATABASE_URL) and a redis-server on loopback. Bounded: a fixed
 * number of ops per run, each run with a deadline.
 *
 *   npm run bench -- collab        # BENCH_COLLAB_OPS=40 ops per typist
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import ShareDB from 'sharedb';
import { insert, type as textUnicode } from 'ot-text-unicode';
import { createLogger } from '../apps/server/src/common/logger.ts';
import { migrate, startEmbeddedPostgres } from '../apps/server/src/db/index.ts';
import {
  createPostgresShareDb,
  createRedisPubSub,
  queueSubmitsPerDocument,
} from '../apps/server/src/services/collab/index.ts';
import { startRedis } from '../apps/server/test/redis.ts';
import { summarise, type Result } from './results.ts';

ShareDB.types.register(textUnicode as never);

const OPS_PER_TYPIST = Number(process.env.BENCH_COLLAB_OPS ?? 40);
const KEYSTROKE_MS = 100;
const RUN_DEADLINE_MS = 120_000;
const TAG_BASE = 0xe000; // private-use area: 6,400 distinct tags per document

type Doc = ShareDB.Doc;
type Setup = 'memory' | 'postgres' | 'postgres+redis';

interface Instances {
  backends: ShareDB[];
  close(): Promise<void>;
}

function call<T = void>(fn: (cb: (err: unknown, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) =>
    fn((err, value) => (err ? reject(err as Error) : resolve(value as T))),
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function subscribe(backend: ShareDB, id: string): Promise<Doc> {
  const doc = backend.connect().get('bench', id);
  await call((cb) => doc.subscribe(cb));
  return doc;
}

function instances(setup: Setup, pool: pg.Pool, redisUrl: string): Instances {
  const backends =
    setup === 'memory'
      ? [new ShareDB()]
      : setup === 'postgres'
        ? [new ShareDB({ db: createPostgresShareDb(pool) })]
        : [0, 1].map(
            () =>
              new ShareDB({
                db: createPostgresShareDb(pool),
                pubsub: createRedisPubSub(redisUrl, { prefix: 'vf-bench' }),
              }),
          );
  // As the collab server runs them: one submit per document at a time in each instance.
  for (const backend of backends) queueSubmitsPerDocument(backend);
  return {
    backends,
    close: async () => {
      await Promise.all(backends.map((b) => call((cb) => b.close(cb))));
    },
  };
}

let docSeq = 0;

/** Latency run: `typists` typing at KEYSTROKE_MS each, OPS_PER_TYPIST ops each. */
async function roundTrip(
  setup: Setup,
  typists: number,
  pool: pg.Pool,
  redisUrl: string,
): Promise<Result> {
  const { backends, close } = instances(setup, pool, redisUrl);
  try {
    const id = `doc-${process.pid}-${++docSeq}`;
    const creator = await subscribe(backends[0]!, id);
    await call((cb) => creator.create('', textUnicode.uri, cb));
    const observer = await subscribe(backends[backends.length - 1]!, id);
    const docs: Doc[] = [];
    for (let i = 0; i < typists; i++)
      docs.push(await subscribe(backends[i % backends.length]!, id));

    const sentAt = new Map<number, number>();
    const latencies: number[] = [];
    const total = typists * OPS_PER_TYPIST;
    observer.on('op', (op: unknown[]) => {
      const now = performance.now();
      for (const part of op) {
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
    await Promise.all(
      docs.map(async (doc, who) => {
        await sleep((who * KEYSTROKE_MS) / typists); // spread the typists over the interval
        const acks: Promise<void>[] = [];
        for (let i = 0; i < OPS_PER_TYPIST; i++) {
          const tag = nextTag++;
          const length = Array.from(doc.data as string).length;
          const at = Math.floor(Math.random() * (length + 1));
          sentAt.set(tag, performance.now());
          acks.push(
            call((cb) =>
              doc.submitOp(insert(at, String.fromCodePoint(TAG_BASE + tag)), undefined, cb),
            ).catch(() => {
              errors++;
            }),
          );
          await sleep(KEYSTROKE_MS * (0.5 + Math.random()));
        }
        await Promise.all(acks);
      }),
    );
    const deadline = Date.now() + RUN_DEADLINE_MS;
    while (latencies.length + errors < total && Date.now() < deadline) await sleep(10);
    const elapsed = performance.now() - started;
    const name = `${setup}, ${typists} typists (${backends.length} instance${backends.length > 1 ? 's' : ''})`;
    const result = summarise(name, latencies, errors + (total - latencies.length - errors));
    result.rps = (latencies.length / elapsed) * 1000;
    return result;
  } finally {
    await close();
  }
}

/** Throughput run: every typist submits its next op as soon as the last one is acknowledged. */
async function throughput(
  setup: Setup,
  typists: number,
  pool: pg.Pool,
  redisUrl: string,
): Promise<Result> {
  const { backends, close } = instances(setup, pool, redisUrl);
  try {
    const id = `doc-${process.pid}-${++docSeq}`;
    const creator = await subscribe(backends[0]!, id);
    await call((cb) => creator.create('', textUnicode.uri, cb));
    const docs: Doc[] = [];
    for (let i = 0; i < typists; i++)
      docs.push(await subscribe(backends[i % backends.length]!, id));
    const latencies: number[] = [];
    let errors = 0;
    const deadline = Date.now() + RUN_DEADLINE_MS;
    const started = performance.now();
    await Promise.all(
      docs.map(async (doc) => {
        for (let i = 0; i < OPS_PER_TYPIST && Date.now() < deadline; i++) {
          const t0 = performance.now();
          try {
            await call((cb) => doc.submitOp(insert(0, 'x'), undefined, cb));
            latencies.push(performance.now() - t0);
          } catch {
            errors++;
          }
        }
      }),
    );
    const elapsed = performance.now() - started;
    const result = summarise(
      `${setup}, ${typists} typists, submit → ack back to back (${backends.length} instance${backends.length > 1 ? 's' : ''})`,
      latencies,
      errors,
    );
    result.rps = (latencies.length / elapsed) * 1000;
    return result;
  } finally {
    await close();
  }
}

/** Rows: memory 8 typists (baseline), then every setup × 8/32 typists, then throughput. */
export async function collabBench(): Promise<Result[]> {
  const log = createLogger('silent');
  const dir = mkdtempSync(path.join(tmpdir(), 'vf-bench-collab-'));
  const embedded = process.env.BENCH_DATABASE_URL
    ? undefined
    : await startEmbeddedPostgres(dir, log);
  const url = process.env.BENCH_DATABASE_URL ?? embedded!.url;
  const pool = new pg.Pool({ connectionString: url, max: 20 });
  pool.on('error', () => undefined);
  const redis = await startRedis();
  try {
    await migrate(pool, log);
    await pool.query("DELETE FROM collab_ops WHERE collection = 'bench'");
    await pool.query("DELETE FROM collab_snapshots WHERE collection = 'bench'");
    const rows: Result[] = [];
    const setups: Setup[] = ['memory', 'postgres', 'postgres+redis'];
    for (const typists of [8, 32]) {
      for (const setup of setups) rows.push(await roundTrip(setup, typists, pool, redis.url));
    }
    for (const setup of setups) rows.push(await throughput(setup, 32, pool, redis.url));
    return rows;
  } finally {
    await pool.query("DELETE FROM collab_ops WHERE collection = 'bench'").catch(() => undefined);
    await pool
      .query("DELETE FROM collab_snapshots WHERE collection = 'bench'")
      .catch(() => undefined);
    await pool.end();
    await redis.stop();
    await embedded?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
