import type pg from 'pg';
import ShareDB from 'sharedb';
import { insert, remove, type as textUnicode } from 'ot-text-unicode';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/logger.ts';
import { createDb } from '../../db/index.ts';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { startRedis, type TestRedis } from '../../../test/redis.ts';
import {
  createPostgresShareDb,
  queueSubmitsPerDocument,
  type CollabOp,
  type CollabSnapshot,
  type PostgresDB,
  type SubmitPipeline,
} from './db-postgres.ts';
import { MissedOps } from './missed-ops.ts';
import { createRedisPubSub, type RedisPubSub } from './pubsub-redis.ts';

ShareDB.types.register(textUnicode as never);

type Doc = ShareDB.Doc;
type SubmitError = Error & { code?: string };

let database: TestDatabase;
let redis: TestRedis;
let pool: pg.Pool;

beforeAll(async () => {
  [database, redis] = await Promise.all([createTestDatabase(), startRedis()]);
  pool = createDb(database.url, 10).pool;
});

afterAll(async () => {
  await pool?.end();
  await Promise.all([database?.drop(), redis?.stop()]);
});

function call<T>(fn: (cb: (err: unknown, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) =>
    fn((err, value) => (err ? reject(err as Error) : resolve(value as T))),
  );
}

/** Waits (bounded) until `check` holds. */
async function until(check: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * The pool, with every `INSERT INTO collab_ops` (a commit) held until `open()`; `seen` is shown
 * every statement first.
 */
function gatedPool(seen: (sql: string) => void = () => undefined): {
  pool: pg.Pool;
  open: () => void;
} {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const gated = new Proxy(pool, {
    get(target, prop, receiver) {
      if (prop !== 'query') return Reflect.get(target, prop, receiver) as unknown;
      return async (sql: string, params?: unknown[]) => {
        seen(sql);
        if (/INSERT INTO collab_ops/.test(sql)) await gate;
        return target.query(sql, params);
      };
    },
  });
  return { pool: gated as pg.Pool, open };
}

/** A submit queue's hooks, as a test plays them: `submitting` names the op whose turn it is. */
function pipelineWith(submitting: () => CollabOp | undefined): SubmitPipeline {
  return { staged: () => undefined, restore: () => true, submitting, again: async () => {} };
}

interface Instance {
  backend: ShareDB;
  db: PostgresDB;
  pubsub: RedisPubSub;
  close(): Promise<void>;
}

/** One collab "instance": a ShareDB backend on the shared PostgreSQL and Redis. */
function instance(): Instance {
  const db = createPostgresShareDb(pool);
  const pubsub = createRedisPubSub(redis.url, { prefix: 'vf-collab-test' });
  const backend = new ShareDB({
    db,
    pubsub,
    presence: true,
    doNotForwardSendPresenceErrorsToClient: true,
  });
  return { backend, db, pubsub, close: () => call<void>((cb) => backend.close(cb)) };
}

function subscribed(backend: ShareDB, collection: string, id: string): Promise<Doc> {
  const doc = backend.connect().get(collection, id) as Doc;
  return call<void>((cb) => doc.subscribe(cb)).then(() => doc);
}

function submit(doc: Doc, op: unknown): Promise<void> {
  return call<void>((cb) => doc.submitOp(op as never, undefined, cb));
}

async function storedText(db: PostgresDB, collection: string, id: string): Promise<unknown> {
  const snapshot = await call<{ data: unknown }>((cb) =>
    db.getSnapshot(collection, id, null, null, cb),
  );
  return snapshot.data;
}

describe('PostgresDB + RedisPubSub: two ShareDB instances share one document', () => {
  it('an op typed on instance A reaches a client of B, committed in PostgreSQL', async () => {
    const a = instance();
    const b = instance();
    try {
      const onA = await subscribed(a.backend, 'p-relay', 'src/app.ts');
      await call<void>((cb) => onA.create('const a = 1;\n', textUnicode.uri, cb));
      const onB = await subscribed(b.backend, 'p-relay', 'src/app.ts');
      expect(onB.data).toBe('const a = 1;\n');

      await submit(onA, insert(13, '// 🙂 héllo\r\n'));
      // Acknowledged means committed: the op is in the log before B has even seen it.
      const { rows } = await pool.query(
        `SELECT version FROM collab_ops WHERE collection = 'p-relay' AND doc_id = 'src/app.ts' ORDER BY version`,
      );
      expect(rows.map((r) => r.version)).toEqual([0, 1]);
      await until(() => onB.version === 2, 'B to receive the op');
      expect(onB.data).toBe('const a = 1;\n// 🙂 héllo\r\n');
      expect(await storedText(b.db, 'p-relay', 'src/app.ts')).toBe(onB.data);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('an op that pub/sub loses (subscriber connections cut) still reaches the client of the other instance, from PostgreSQL', async () => {
    const a = instance();
    const b = instance();
    const missed = new MissedOps({
      backend: b.backend,
      pool,
      log: createLogger('silent'),
      intervalMs: 200,
    });
    const admin = new Redis(redis.url);
    try {
      const onA = await subscribed(a.backend, 'p-lost', 'notes.md');
      await call<void>((cb) => onA.create('', textUnicode.uri, cb));
      const onB = await subscribed(b.backend, 'p-lost', 'notes.md');
      await submit(onA, insert(0, 'a'));
      await until(() => onB.data === 'a', 'B to receive the first op');
      // Redis drops the subscribers' connections (a restart, a network cut, a failover): what
      // is published before they are back is lost. It is the last op typed, so no later op
      // shows B's client the gap. (A round whose op still got through is tried again.)
      let text = 'a';
      for (let round = 0; round < 5 && missed.delivered === 0; round++) {
        await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
        text += String(round);
        await submit(onA, insert(text.length - 1, String(round)));
        await until(() => onB.data === text, `B to get op ${round} (lost or not)`, 5_000);
      }
      expect(missed.delivered).toBeGreaterThan(0);
      expect(onB.data).toBe(onA.data);
      expect(onB.version).toBe(onA.version);
    } finally {
      missed.close();
      admin.disconnect();
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('an op resent with the same src and seq is acknowledged and never applied twice', async () => {
    const a = instance();
    const b = instance();
    try {
      const onA = await subscribed(a.backend, 'p-resend', 'README.md');
      await call<void>((cb) => onA.create('abc', textUnicode.uri, cb));
      const agentA = a.backend.connect().agent!;
      const agentB = b.backend.connect().agent!;
      const op = { src: 'client-1', seq: 7, v: 1, op: insert(3, 'X') };
      await call<unknown>((cb) =>
        a.backend.submit(agentA, 'p-resend', 'README.md', structuredClone(op), {}, cb),
      );
      // Someone else types in between; then the first client, reconnected to B, resends.
      await submit(onA, insert(0, '>'));
      const resent = await call<unknown>((cb) =>
        b.backend.submit(agentB, 'p-resend', 'README.md', structuredClone(op), {}, cb),
      ).then(
        () => null,
        (err: SubmitError) => err,
      );
      expect(resent?.code).toBe('ERR_OP_ALREADY_SUBMITTED');
      // The stock client takes that error as the acknowledgement of its op.
      expect(await storedText(b.db, 'p-resend', 'README.md')).toBe('>abcX');
      const ops = await call<unknown[]>((cb) =>
        a.db.getOps('p-resend', 'README.md', 0, null, null, cb),
      );
      expect(ops).toHaveLength(3);
      const version = await call<number | undefined>((cb) =>
        a.db.getCommittedOpVersion(
          'p-resend',
          'README.md',
          { id: 'README.md', v: 3, type: null, data: null, m: null },
          op,
          null,
          cb,
        ),
      );
      expect(version).toBe(1);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('concurrent typing on both instances converges to one text, every op applied once', async () => {
    const a = instance();
    const b = instance();
    // As the server runs them: submits queued per document, so each instance group-commits,
    // and a batch that loses its version to the other instance is retried op by op.
    queueSubmitsPerDocument(a.backend);
    queueSubmitsPerDocument(b.backend);
    try {
      const creator = await subscribed(a.backend, 'p-converge', 'index.html');
      await call<void>((cb) => creator.create('<p></p>\n', textUnicode.uri, cb));
      const docs = [
        await subscribed(a.backend, 'p-converge', 'index.html'),
        await subscribed(a.backend, 'p-converge', 'index.html'),
        await subscribed(b.backend, 'p-converge', 'index.html'),
        await subscribed(b.backend, 'p-converge', 'index.html'),
      ];
      const letters = ['a', 'b', 'c', 'd'];
      const perTypist = 25;
      const length = (doc: Doc): number => Array.from(doc.data as string).length;
      // Each typist fires its ops without waiting for acknowledgements (as a person typing on
      // a slow link), so the instances commit against each other and must transform.
      async function type(round: 'insert' | 'mixed'): Promise<void> {
        await Promise.all(
          docs.map(async (doc, who) => {
            const pending: Promise<void>[] = [];
            for (let i = 0; i < perTypist; i++) {
              const at = (i * 7 + who * 3) % (length(doc) + 1);
              const op =
                round === 'mixed' && i % 2 === 1 && length(doc) > 1
                  ? remove(Math.min(at, length(doc) - 1), 1)
                  : insert(at, i % 3 === 0 ? `${letters[who]}😀` : letters[who]!);
              pending.push(submit(doc, op));
              if (i % 4 === 0) await new Promise((r) => setTimeout(r, 1));
            }
            await Promise.all(pending);
          }),
        );
      }
      const converge = async (): Promise<string> => {
        const deadline = Date.now() + 15_000;
        for (;;) {
          const stored = await call<CollabSnapshot>((cb) =>
            a.db.getSnapshot('p-converge', 'index.html', null, null, cb),
          );
          if (docs.every((d) => !d.hasWritePending() && d.version === stored.v)) {
            expect(new Set(docs.map((d) => d.data))).toEqual(new Set([stored.data]));
            return stored.data as string;
          }
          if (Date.now() > deadline)
            throw new Error('clients did not settle on the stored version');
          await new Promise((r) => setTimeout(r, 20));
        }
      };

      await type('insert');
      const afterInserts = await converge();
      // Exactly once: every typist's characters are all there, none twice.
      for (const letter of letters) {
        expect(afterInserts.split(letter).length - 1).toBe(perTypist);
      }
      expect(afterInserts.split('😀').length - 1).toBe(letters.length * 9);

      await type('mixed');
      const text = await converge();
      // The op log, one op per version, replayed from the create gives the same text.
      const { rows } = await pool.query(
        `SELECT count(*)::int AS n, max(version) AS max FROM collab_ops WHERE collection = 'p-converge'`,
      );
      expect(rows[0].n).toBe(rows[0].max + 1);
      const log = await call<CollabOp[]>((cb) =>
        a.db.getOps('p-converge', 'index.html', 0, null, null, cb),
      );
      let replayed = (log[0]!.create as { data: string }).data;
      for (const entry of log.slice(1)) replayed = textUnicode.apply(replayed, entry.op as never);
      expect(replayed).toBe(text);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('PostgresDB storage details', () => {
  it('ops asked for from the current version while others commit are never "missing" (a subscribe racing a commit)', async () => {
    const a = instance();
    try {
      const writer = await subscribed(a.backend, 'p-race', 'race.txt');
      await call<void>((cb) => writer.create('', textUnicode.uri, cb));
      let typing = true;
      const typed = (async () => {
        for (let i = 0; i < 400 && typing; i++) await submit(writer, insert(0, 'x'));
      })();
      // What a subscribing client does: ask for the ops since the version it has, open-ended.
      const errors: string[] = [];
      let asked = 0;
      const deadline = Date.now() + 8_000;
      while (asked < 300 && Date.now() < deadline) {
        const version = writer.version!;
        const ops = await call<CollabOp[]>((cb) =>
          a.db.getOps('p-race', 'race.txt', version, null, null, cb),
        ).catch((err: Error) => (errors.push(err.message), []));
        expect(ops.every((op, k) => op.v === version + k)).toBe(true);
        asked++;
      }
      typing = false;
      await typed;
      expect(asked).toBeGreaterThan(50);
      expect(errors).toEqual([]);
    } finally {
      await a.close();
    }
  });

  it('with queueSubmitsPerDocument, 16 clients typing at once on one document cause no commit retry', async () => {
    const run = async (queued: boolean): Promise<{ retries: number; text: string }> => {
      const a = instance();
      if (queued) queueSubmitsPerDocument(a.backend);
      let retries = 0;
      a.backend.on('timing', (type) => {
        if (type === 'submit.retry') retries++;
      });
      try {
        const id = `queue-${queued}.txt`;
        const creator = await subscribed(a.backend, 'p-queue', id);
        await call<void>((cb) => creator.create('', textUnicode.uri, cb));
        const docs = await Promise.all(
          Array.from({ length: 16 }, () => subscribed(a.backend, 'p-queue', id)),
        );
        for (let round = 0; round < 3; round++) {
          await Promise.all(
            docs.map((doc, who) => submit(doc, insert(0, String.fromCharCode(65 + who)))),
          );
        }
        if (queued) {
          // A refused submit (here: based on a version from the future) must not block the queue.
          const refused = await call<unknown>((cb) =>
            a.backend.submit(
              a.backend.connect().agent!,
              'p-queue',
              id,
              { src: 'z', seq: 1, v: 999, op: insert(0, 'z') },
              {},
              cb,
            ),
          ).then(
            () => null,
            (err: SubmitError) => err,
          );
          expect(refused).toBeInstanceOf(Error);
          await submit(docs[0]!, insert(0, '!'));
        }
        const text = (await storedText(a.db, 'p-queue', id)) as string;
        return { retries, text: text.replace('!', '') };
      } finally {
        await a.close();
      }
    };
    const queued = await run(true);
    expect(queued.retries).toBe(0);
    expect(queued.text).toHaveLength(48);
    // Without the queue, the same typing makes ShareDB lose commits and start them over.
    const unqueued = await run(false);
    expect(unqueued.retries).toBeGreaterThan(0);
    expect(unqueued.text).toHaveLength(48);
  });

  it('typists of one document on two instances, back to back: a refused op waits for its turn, and none is retried without end', async () => {
    const a = instance();
    const b = instance();
    const retries = new Map<object, number>();
    for (const x of [a, b]) {
      queueSubmitsPerDocument(x.backend);
      x.backend.on('timing', (type: string, _ms: number, request: object) => {
        if (type === 'submit.retry') retries.set(request, (retries.get(request) ?? 0) + 1);
      });
    }
    try {
      const id = 'split.txt';
      const creator = await subscribed(a.backend, 'p-split', id);
      await call<void>((cb) => creator.create('', textUnicode.uri, cb));
      const docs = await Promise.all(
        Array.from({ length: 12 }, (_, i) => subscribed((i % 2 ? b : a).backend, 'p-split', id)),
      );
      const started = Date.now();
      await Promise.all(
        docs.map(async (doc, who) => {
          for (let i = 0; i < 20 && Date.now() - started < 60_000; i++) {
            await submit(doc, insert(0, String.fromCharCode(65 + who)));
          }
        }),
      );
      const text = (await storedText(a.db, 'p-split', id)) as string;
      expect(text).toHaveLength(12 * 20);
      const worst = Math.max(0, ...retries.values());
      console.log(`split typists: ${retries.size} ops retried, at most ${worst} times each`);
      expect(worst).toBeLessThanOrEqual(20);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('group commit: 16 typists at once need far fewer transactions than ops, each op acknowledged only once committed', async () => {
    // The adapter's pool, counting commit statements and the versions each one made durable.
    const durable = new Set<number>();
    let transactions = 0;
    const counting = new Proxy(pool, {
      get(target, prop, receiver) {
        if (prop !== 'query') return Reflect.get(target, prop, receiver) as unknown;
        return async (sql: string, params?: unknown[]) => {
          const result = await target.query(sql, params);
          if (/INSERT INTO collab_ops/.test(sql) && params) {
            transactions++;
            const committed = (result.rows[0] as { committed: number }).committed;
            const base = params[6] as number;
            for (let i = 0; i < committed; i++) durable.add(base + i);
          }
          return result;
        };
      },
    });
    const db = createPostgresShareDb(counting as pg.Pool);
    const backend = new ShareDB({ db });
    queueSubmitsPerDocument(backend);
    let retries = 0;
    backend.on('timing', (type) => {
      if (type === 'submit.retry') retries++;
    });
    try {
      const creator = await subscribed(backend, 'p-group', 'g.txt');
      await call<void>((cb) => creator.create('', textUnicode.uri, cb));
      const docs = await Promise.all(
        Array.from({ length: 16 }, () => subscribed(backend, 'p-group', 'g.txt')),
      );
      transactions = 0;
      const notDurableAtAck: number[] = [];
      const rounds = 3;
      for (let round = 0; round < rounds; round++) {
        await Promise.all(
          docs.map(
            (doc, who) =>
              new Promise<void>((resolve, reject) =>
                doc.submitOp(
                  insert(0, String.fromCharCode(65 + who)) as never,
                  undefined,
                  (err) => {
                    // Synchronously at the ack: the op (at base version doc.version - 1) is stored.
                    if (!durable.has(doc.version! - 1)) notDurableAtAck.push(doc.version! - 1);
                    if (err) reject(err as unknown as Error);
                    else resolve();
                  },
                ),
              ),
          ),
        );
      }
      expect(notDurableAtAck).toEqual([]);
      expect(retries).toBe(0);
      // 48 ops: never more than one transaction each (no retry storms). How many share one
      // depends on commit timing: since a batch is built on the staged tip only when nobody else
      // committed into it (8d758f7), a fast external server commits most ops alone (40–48 of
      // 48 seen), the embedded one batches more; `npm run bench -- collab-socket` measures it.
      expect(transactions).toBeLessThanOrEqual(rounds * 16);
      const text = (await storedText(db, 'p-group', 'g.txt')) as string;
      expect(text).toHaveLength(48);
      for (let who = 0; who < 16; who++) {
        expect(text.split(String.fromCharCode(65 + who)).length - 1).toBe(rounds);
      }
      const ops = await call<CollabOp[]>((cb) => db.getOps('p-group', 'g.txt', 0, null, null, cb));
      expect(ops.map((op) => op.v)).toEqual(Array.from({ length: 49 }, (_, i) => i));
    } finally {
      await call<void>((cb) => backend.close(cb));
    }
  });

  it("a submit to an instance whose staged ops lost their versions to another instance builds on the other instance's text", async () => {
    // Instance A's transaction waits at the gate while instance B commits the same version.
    const { pool: gated, open } = gatedPool();
    const a = createPostgresShareDb(gated);
    // The op being submitted: its client saw version 2 (B's op), past A's chain start (1).
    const submitting: CollabOp = { v: 2, src: 'c', seq: 1, op: insert(10, '!') };
    a.pipeline(pipelineWith(() => submitting));
    const lost: string[] = [];
    a.coordinate({ othersWrite: () => false, lostRace: (_c, doc) => void lost.push(doc) });
    const b = createPostgresShareDb(pool);
    const [c, id, type] = ['p-tip', 't.txt', textUnicode.uri];
    const snapshot = (v: number, data: string): CollabSnapshot => ({ id, v, type, data, m: null });
    const create: CollabOp = { v: 0, src: 'b', seq: 1, create: { type, data: 'hello' } };
    await call<boolean>((cb) => b.commit(c, id, create, snapshot(1, 'hello'), null, cb));
    const staged: CollabOp = { v: 1, src: 'a', seq: 1, op: insert(0, 'A') };
    const aCommitted = call<boolean>((cb) =>
      a.commit(c, id, staged, snapshot(2, 'Ahello'), null, cb),
    );
    const taken: CollabOp = { v: 1, src: 'b', seq: 2, op: insert(0, 'BBBBBB') };
    expect(
      await call<boolean>((cb) => b.commit(c, id, taken, snapshot(2, 'BBBBBBhello'), null, cb)),
    ).toBe(true);
    try {
      // A client of A that saw B's op (version 2) submits on top of it: it must get B's text,
      // not A's tip at the same version ('Ahello': its op would land in the wrong place).
      const forSubmit = await call<CollabSnapshot>((cb) =>
        a.getSnapshot(c, id, { $submit: true }, null, cb),
      );
      expect(forSubmit).toMatchObject({ v: 2, data: 'BBBBBBhello' });
    } finally {
      open();
    }
    expect(await aCommitted).toBe(false);
    expect(await storedText(b, c, id)).toBe('BBBBBBhello');
    // A lost the race: the other instances are told (so they stop committing back to back).
    expect(lost).toContain(id);
  });

  it('a submit whose client knows only committed history builds on the staged tip without reading the database', async () => {
    let snapshotReads = 0;
    const { pool: counted, open } = gatedPool((sql) => {
      if (/FROM collab_snapshots/.test(sql)) snapshotReads++;
    });
    const a = createPostgresShareDb(counted);
    let submitting: CollabOp | undefined;
    a.pipeline(pipelineWith(() => submitting));
    const [c, id, type] = ['p-fast', 'f.txt', textUnicode.uri];
    const snapshot = (v: number, data: string): CollabSnapshot => ({ id, v, type, data, m: null });
    const create: CollabOp = { v: 0, src: 'a', seq: 1, create: { type, data: 'hello' } };
    const created = call<boolean>((cb) => a.commit(c, id, create, snapshot(1, 'hello'), null, cb));
    try {
      // The create is in flight (the chain starts at 0). A client that knows version 0 submits.
      submitting = { v: 0, src: 'b', seq: 1, op: insert(0, 'B') };
      const reads = snapshotReads;
      const forSubmit = await call<CollabSnapshot>((cb) =>
        a.getSnapshot(c, id, { $submit: true }, null, cb),
      );
      expect(forSubmit).toMatchObject({ v: 1, data: 'hello' });
      expect(snapshotReads).toBe(reads);
      // One that claims a version past the chain's start is checked against the database.
      submitting = { v: 1, src: 'b', seq: 2, op: insert(0, 'B') };
      await call<CollabSnapshot>((cb) => a.getSnapshot(c, id, { $submit: true }, null, cb));
      expect(snapshotReads).toBe(reads + 1);
      // So is every submit to a document that other instances write too (pub/sub says so).
      submitting = { v: 0, src: 'b', seq: 1, op: insert(0, 'B') };
      a.coordinate({
        othersWrite: (collection, doc) => collection === c && doc === id,
        lostRace: () => undefined,
      });
      await call<CollabSnapshot>((cb) => a.getSnapshot(c, id, { $submit: true }, null, cb));
      expect(snapshotReads).toBe(reads + 2);
    } finally {
      open();
    }
    expect(await created).toBe(true);
    expect(await storedText(a, c, id)).toBe('hello');
  });

  it('compaction drops old ops, keeps the document, and refuses to serve a compacted range', async () => {
    const a = instance();
    try {
      const doc = await subscribed(a.backend, 'p-compact', 'a.txt');
      await call<void>((cb) => doc.create('', textUnicode.uri, cb));
      for (let i = 0; i < 10; i++) await submit(doc, insert(i, String(i)));
      expect(doc.version).toBe(11);

      expect(await a.db.compact('p-compact', 'a.txt', 8)).toBe(8);
      expect(await a.db.compact('p-compact', 'a.txt', 8)).toBe(0);
      const kept = await call<{ v: number }[]>((cb) =>
        a.db.getOps('p-compact', 'a.txt', 8, null, null, cb),
      );
      expect(kept.map((op) => op.v)).toEqual([8, 9, 10]);
      await expect(
        call((cb) => a.db.getOps('p-compact', 'a.txt', 2, null, null, cb)),
      ).rejects.toThrow(/Missing ops/);
      await expect(
        call((cb) => a.db.getOps('p-compact', 'a.txt', 0, 11, null, cb)),
      ).rejects.toThrow(/Missing ops/);

      // The document is whole and editing goes on; a fresh client on a new instance sees it.
      await submit(doc, insert(10, '!'));
      const b = instance();
      try {
        const fresh = await subscribed(b.backend, 'p-compact', 'a.txt');
        expect(fresh.data).toBe('0123456789!');
        expect(fresh.version).toBe(12);
      } finally {
        await b.close();
      }
      // A client whose pending op is based on a compacted version is told, not silently merged.
      const stale = await call<unknown>((cb) =>
        a.backend.submit(
          a.backend.connect().agent!,
          'p-compact',
          'a.txt',
          { src: 's', seq: 1, v: 3, op: insert(0, 'x') },
          {},
          cb,
        ),
      ).then(
        () => null,
        (err: SubmitError) => err,
      );
      expect(stale).toBeInstanceOf(Error);
      expect(await storedText(a.db, 'p-compact', 'a.txt')).toBe('0123456789!');
    } finally {
      await a.close();
    }
  });

  it('deleting a project deletes its documents and op log; other projects keep theirs', async () => {
    const { rows: users } = await pool.query<{ id: string }>(
      `INSERT INTO users (email, username, full_name, password_hash)
       VALUES ('collab-db@example.test', 'collab-db', 'Collab', 'x') RETURNING id`,
    );
    const { rows: projects } = await pool.query<{ id: string }>(
      `INSERT INTO projects (user_id, name) VALUES ($1, 'one'), ($1, 'two') RETURNING id`,
      [users[0]!.id],
    );
    const [gone, kept] = projects.map((p) => p.id) as [string, string];
    const a = instance();
    try {
      for (const project of [gone, kept]) {
        const doc = await subscribed(a.backend, project, 'src/index.ts');
        await call<void>((cb) => doc.create('x', textUnicode.uri, cb));
        await submit(doc, insert(1, 'y'));
      }
    } finally {
      await a.close();
    }
    await pool.query('DELETE FROM projects WHERE id = $1', [gone]);
    const count = async (table: string, project: string): Promise<number> =>
      (await pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE collection = $1`, [project]))
        .rows[0].n;
    expect(await count('collab_snapshots', gone)).toBe(0);
    expect(await count('collab_ops', gone)).toBe(0);
    expect(await count('collab_snapshots', kept)).toBe(1);
    expect(await count('collab_ops', kept)).toBe(2);
  });
});
