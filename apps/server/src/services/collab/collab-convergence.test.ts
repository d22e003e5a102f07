import { randomBytes } from 'node:crypto';
import type { Doc } from 'sharedb/lib/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../db/index.ts';
import { call, createTestApp, listen, registerAndLogin, type TestApp } from '../../../test/app.ts';
import {
  collabUrl,
  connectCollab,
  docs,
  until,
  type CollabClient,
} from '../../../test/collab-client.ts';
import { startServerProcess, type ServerProcess } from '../../../test/collab-instance.ts';
import { startRedis, type TestRedis } from '../../../test/redis.ts';

// Seeded, replayable convergence of the stock ShareDB client against two real instances: A (in
// this process) and B (`src/main.ts` in its own process), sharing PostgreSQL and a real
// redis-server. Several clients type at random (emoji, CRLF, tabs, long pastes), sockets are
// killed hard and reconnect to either instance, the API writes the file meanwhile, and B is
// SIGKILLed and restarted mid-run. After settling: every client, a fresh fetch from each
// instance and the stored file are identical, and every acknowledged op is in the op log once.
//
// VF_COLLAB_SEEDS (comma-separated; default two fixed seeds), VF_COLLAB_STEPS (default 100),
// VF_COLLAB_RESTARTS (how many seeds SIGKILL instance B, default 1). A failure names its seed:
// VF_COLLAB_SEEDS=<seed> npx vitest run src/services/collab/collab-convergence.test.ts
const SEEDS = (process.env.VF_COLLAB_SEEDS ?? '1,2')
  .split(',')
  .map((s) => Number(s.trim()))
  .filter((n) => Number.isInteger(n));
const STEPS = Number(process.env.VF_COLLAB_STEPS ?? 100);
const RESTARTS = Number(process.env.VF_COLLAB_RESTARTS ?? 1);
const CLIENTS = 4;

type User = Awaited<ReturnType<typeof registerAndLogin>>;

/** mulberry32: a small seeded PRNG, so a seed replays the same run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = ['a', 'b', 'xyz', ' ', '\t', '\r\n', '\n', '😀', '👩‍👩‍👧', 'é', '中文', '{}', 'ñ\t'];

function randomText(rng: () => number): string {
  if (rng() < 0.03) {
    // A long paste.
    const n = 2000 + Math.floor(rng() * 3000);
    let s = '';
    while ([...s].length < n) s += PIECES[Math.floor(rng() * PIECES.length)]!;
    return s;
  }
  let s = '';
  const n = 1 + Math.floor(rng() * 4);
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(rng() * PIECES.length)]!;
  return s;
}

function randomOp(rng: () => number, text: string): unknown[] {
  const len = [...text].length;
  if (len > 0 && rng() < 0.35) {
    const pos = Math.floor(rng() * len);
    const n = 1 + Math.floor(rng() * Math.min(40, len - pos));
    return pos > 0 ? [pos, { d: n }] : [{ d: n }];
  }
  const pos = Math.floor(rng() * (len + 1));
  const s = randomText(rng);
  return pos > 0 ? [pos, s] : [s];
}

interface Typist {
  client: CollabClient;
  doc: Doc<string>;
  user: User;
  acked: number;
  errors: string[];
  down: boolean;
  reconnecting?: Promise<void>;
}

describe('collab convergence across two instances (seeded)', () => {
  let redis: TestRedis;
  let a: TestApp;
  let serverA: Awaited<ReturnType<typeof listen>>;
  let b: ServerProcess | undefined;
  let bPort: number;
  let bEnv: Record<string, string>;
  let owner: User;
  let editor: User;
  let projectId: string;
  const all: CollabClient[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    const jwt = randomBytes(32).toString('hex');
    a = await createTestApp({
      REDIS_URL: redis.url,
      JWT_SECRET: jwt,
      VAPORFORM_RUNTIME: 'process',
    });
    serverA = await listen(a);
    bPort = await freePort();
    bEnv = {
      DATABASE_URL: a.databaseUrl,
      VAPORFORM_DATA_DIR: a.config.dataDir,
      REDIS_URL: redis.url,
      JWT_SECRET: jwt,
    };
    b = await startServerProcess(bPort, bEnv);
    [owner, editor] = await Promise.all([
      registerAndLogin(a.app, { name: 'Owner' }),
      registerAndLogin(a.app, { name: 'Editor' }),
    ]);
    projectId = (
      await call(a.app, 'POST', '/api/projects', { token: owner.token, body: { name: 'Fuzz' } })
    ).body.project.id;
    await call(a.app, 'POST', `/api/projects/${projectId}/members`, {
      token: owner.token,
      body: { email: editor.user.email, role: 'editor' },
    });
  }, 240_000);

  afterAll(async () => {
    for (const c of all) c.close();
    await b?.stop();
    await serverA?.close();
    await a?.close();
    await redis?.stop();
  }, 60_000);

  it.each(SEEDS.map((seed, i) => [seed, i < RESTARTS] as const))(
    'seed %i: clients, instances and the file end identical (restart of B: %s)',
    async (seed, restartB) => {
      const started = Date.now();
      const rng = prng(seed);
      const path = `fuzz/seed-${seed}.txt`;
      const initial = `start of ${seed}\r\n\tindented 😀\n`;
      const put = await call(a.app, 'PUT', `/api/projects/${projectId}/files/${path}`, {
        token: owner.token,
        body: { content: initial },
      });
      expect(put.status).toBeLessThan(300);

      let bUp: Promise<void> = Promise.resolve();
      let bAlive = true;
      const urlOf = (which: 'a' | 'b') =>
        which === 'a' ? serverA.url : `http://127.0.0.1:${bPort}`;
      const pick = (): 'a' | 'b' => (bAlive && rng() < 0.5 ? 'b' : 'a');

      const typists: Typist[] = [];
      for (let i = 0; i < CLIENTS; i++) {
        const user = i % 2 ? editor : owner;
        const client = await connectCollab(collabUrl(urlOf(pick()), user.token));
        all.push(client);
        const doc = client.doc(projectId, path) as Doc<string>;
        doc.on('error', () => undefined);
        doc.preventCompose = true; // one submitted op, one op in the log (for the exactly-once check)
        await docs.subscribe(doc);
        typists.push({ client, doc, user, acked: 0, errors: [], down: false });
      }
      const reconnect = (t: Typist) =>
        (t.reconnecting ??= reconnectOnce(t).finally(() => (t.reconnecting = undefined)));
      const reconnectOnce = async (t: Typist) => {
        let last: unknown;
        for (let attempt = 0; attempt < 100; attempt++) {
          try {
            await t.client.reconnect(collabUrl(urlOf(pick()), t.user.token));
            t.down = false;
            return;
          } catch (err) {
            last = err;
            await new Promise((r) => setTimeout(r, 200));
          }
        }
        throw new Error(`seed ${seed}: could not reconnect: ${String(last)}`);
      };

      const killAt = restartB ? Math.floor(STEPS / 3 + rng() * (STEPS / 3)) : -1;
      const reconnecting: Promise<void>[] = [];
      for (let step = 0; step < STEPS; step++) {
        if (step === killAt && b) {
          bAlive = false;
          await b.kill();
          for (const t of typists) if (t.client.ws.url.includes(`:${bPort}/`)) t.down = true;
          bUp = startServerProcess(bPort, bEnv).then((started) => {
            b = started;
            bAlive = true;
          });
        }
        const t = typists[Math.floor(rng() * typists.length)]!;
        const r = rng();
        if (t.down && r < 0.4) {
          reconnecting.push(reconnect(t));
        } else if (r < 0.8) {
          // Typing goes on while disconnected too: the client sends it on reconnect.
          if (t.doc.type) {
            t.doc.submitOp(randomOp(rng, t.doc.data) as never, {}, (err?: unknown) => {
              if (err) t.errors.push(String((err as Error).message ?? err));
              else t.acked++;
            });
          }
        } else if (r < 0.92) {
          if (t.down) continue;
          t.down = true;
          t.client.ws.terminate(); // a hard kill: no close frame
        } else {
          // Another writer: the API rewrites the file (a line inserted at the top).
          const current = await a.services.files.read(projectId, path);
          await call(a.app, 'PUT', `/api/projects/${projectId}/files/${path}`, {
            token: editor.token,
            body: { content: `api ${step} ✍️\n${current.content}` },
          });
        }
        await new Promise((res) => setTimeout(res, Math.floor(rng() * 15)));
      }

      // Settle: B back, everyone connected, nothing in flight, one text everywhere.
      await bUp;
      await Promise.all(reconnecting);
      for (const t of typists) if (t.down || t.client.ws.readyState !== 1) await reconnect(t);
      await until(
        () => typists.every((t) => !t.doc.hasWritePending()),
        60_000,
        `seed ${seed}: every op acknowledged`,
      );
      const fresh = async (which: 'a' | 'b') => {
        const c = await connectCollab(collabUrl(urlOf(which), owner.token));
        try {
          const d = c.doc(projectId, path);
          await docs.fetch(d);
          return { text: d.data as string, v: d.version };
        } finally {
          c.close();
        }
      };
      let diag = '';
      const final = await until(
        async () => {
          const [fa, fb] = [await fresh('a'), await fresh('b')];
          diag = JSON.stringify({
            a: { v: fa.v, len: fa.text.length },
            b: { v: fb.v, len: fb.text.length },
            clients: typists.map((t) => ({
              v: t.doc.version,
              same: t.doc.data === fa.text,
              len: (t.doc.data as string | undefined)?.length,
              pending: t.doc.hasWritePending(),
              inflight: Boolean((t.doc as unknown as { inflightOp?: unknown }).inflightOp),
              ready: t.client.ws.readyState,
              url: t.client.ws.url.replace(/\?.*/, ''),
              subscribed: t.doc.subscribed,
            })),
          });
          const same =
            fa.text === fb.text &&
            fa.v === fb.v &&
            typists.every((t) => t.doc.data === fa.text && t.doc.version === fa.v);
          return same ? fa : undefined;
        },
        60_000,
        `seed ${seed}: clients and both instances identical`,
        250,
      ).catch((err: unknown) => {
        console.error(`seed ${seed}: not converged: ${diag}`);
        throw err;
      });
      await until(
        async () => (await a.services.files.read(projectId, path)).content === final.text,
        30_000,
        `seed ${seed}: the stored file equals the document`,
        100,
      );
      expect(typists.flatMap((t) => t.errors)).toEqual([]);

      // Exactly once: no client op (src, seq) twice in the op log, and as many as acknowledged.
      const { rows } = await a.services.pool.query<{ src: string; seq: string; n: number }>(
        `SELECT operation->>'src' AS src, operation->>'seq' AS seq, count(*)::int AS n
           FROM collab_ops
          WHERE collection = $1 AND doc_id = $2 AND operation ? 'op'
            AND operation->>'src' NOT LIKE 'vf:%'
          GROUP BY 1, 2`,
        [projectId, path],
      );
      expect(rows.filter((r) => r.n !== 1)).toEqual([]);
      expect(rows.length).toBe(typists.reduce((n, t) => n + t.acked, 0));
      for (const t of typists) t.client.close();
      console.log(
        `seed ${seed}: ${rows.length} ops from ${CLIENTS} clients converged at version ${final.v}` +
          ` (${[...final.text].length} code points) in ${Date.now() - started} ms` +
          (restartB ? ', instance B SIGKILLed and restarted' : ''),
      );
    },
    240_000,
  );

  it('carries presence and ops from one instance to the other', async () => {
    const path = 'fuzz/presence.txt';
    await call(a.app, 'PUT', `/api/projects/${projectId}/files/${path}`, {
      token: owner.token,
      body: { content: 'hello there' },
    });
    const onA = await connectCollab(collabUrl(serverA.url, owner.token));
    const onB = await connectCollab(collabUrl(`http://127.0.0.1:${bPort}`, editor.token));
    all.push(onA, onB);
    const [da, db] = [onA.doc(projectId, path), onB.doc(projectId, path)];
    await Promise.all([docs.subscribe(da), docs.subscribe(db)]);
    const [pa, pb] = [
      onA.connection.getDocPresence(projectId, path),
      onB.connection.getDocPresence(projectId, path),
    ];
    for (const p of [pa, pb]) {
      await new Promise<void>((ok, fail) => p.subscribe((e?: unknown) => (e ? fail(e) : ok())));
    }
    const mine = pa.create('owner-cursor');
    await new Promise<void>((ok, fail) =>
      mine.submit({ sel: [5, 5], color: '#f80' }, (e?: unknown) => (e ? fail(e) : ok())),
    );
    const seen = await until(
      () => Object.values(pb.remotePresences)[0] as { sel: number[]; userId: string } | undefined,
      15_000,
      'presence from instance A on instance B',
    );
    expect(seen).toMatchObject({ sel: [5, 5], userId: owner.user.id });
    await docs.submit(db, ['¡']);
    await until(() => da.data === '¡hello there', 15_000, 'the op from B on A');
    await until(
      () => (Object.values(pb.remotePresences)[0] as { sel: number[] } | undefined)?.sel[0] === 6,
      15_000,
      'the cursor moved past the insert before it',
    );
    onA.close();
    await until(() => Object.keys(pb.remotePresences).length === 0, 15_000, 'presence gone');
  }, 60_000);
});
