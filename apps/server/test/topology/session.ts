import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { basename } from 'node:path';
import autocannon from 'autocannon';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/db/index.ts';
import { collabUrl, connectCollab, docs, until, type CollabClient } from '../collab-client.ts';
import { createTestDatabase, type TestDatabase } from '../db.ts';
import { startFakeAnthropic, type FakeServer } from '../fakes/anthropic.ts';
import { startRedis, type TestRedis } from '../redis.ts';
import { call, signUp, type Session } from './client.ts';
import { startHaproxy, startServer, type HaproxyProc, type ServerProc } from './processes.ts';
import { ProjectSocket } from './socket.ts';

// The scale-out shape: three server processes sharing one PostgreSQL and one redis-server,
// behind HAProxy (round robin, no stickiness, WebSockets tunnelled). Clients only ever talk to
// HAProxy; which instance answers is HAProxy's choice (`X-Served-By` tells the test).
// The assistant talks to a local fake Anthropic API; each instance has its own API key, so the
// fake's requests say which instance ran a queued job. The same session runs on Node
// (three-instances.test.ts) and on Bun (three-instances-bun.test.ts).

/** Declares the three-instance session suite, its servers running on `runtime`. */
export function describeThreeInstances(runtime: 'node' | 'bun'): void {
  let redis: TestRedis;
  let database: TestDatabase;
  let anthropic: FakeServer;
  let proxy: HaproxyProc;
  const servers: ServerProc[] = [];
  const sockets: ProjectSocket[] = [];
  const collabClients: CollabClient[] = [];
  let env: Record<string, string>;
  let ports: number[];

  /**
   * What the co-editors of `path` and the op log say, for a convergence that timed out: each
   * client's version, instance and text, and the last committed ops.
   */
  async function collabState(
    path: string,
    editors: {
      client: CollabClient;
      doc: { version: number | null; data: string; subscribed: boolean };
    }[],
  ): Promise<string> {
    const clients = editors.map(
      ({ client, doc }) =>
        `${client.servedBy}@v${doc.version}${doc.subscribed ? '' : ' (not subscribed)'} ` +
        `${JSON.stringify(doc.data)}${client.errors.length ? ` errors: ${client.errors.join('; ')}` : ''}`,
    );
    // What the servers said about collaboration meanwhile (warnings and errors only).
    const said = servers
      .map((s, i) =>
        s
          .output()
          .split('\n')
          .filter((l) => /collab|sharedb/i.test(l))
          .slice(-5)
          .map((l) => `s${i + 1}: ${l.slice(0, 300)}`),
      )
      .flat();
    const pool = new pg.Pool({ connectionString: database.url, max: 1 });
    try {
      const { rows } = await pool.query<{ version: number; operation: unknown }>(
        `SELECT version, operation FROM collab_ops WHERE doc_id = $1 ORDER BY version DESC LIMIT 6`,
        [path],
      );
      const ops = rows.map((r) => `v${r.version} ${JSON.stringify(r.operation)}`);
      return `${clients.join(' / ')}; last ops: ${ops.join(', ')}; servers: ${said.join(' | ') || 'nothing'}`;
    } finally {
      await pool.end();
    }
  }

  /** Instance `i`'s environment (`s${i + 1}` behind HAProxy): the shared one plus its API key. */
  const instanceEnv = (i: number) => ({ ...env, ANTHROPIC_API_KEY: `sk-fake-s${i + 1}` });

  /**
   * Starts instance `i` again after it died, on its port and data dir, and waits until HAProxy's
   * health check sends it traffic again.
   */
  async function restart(i: number): Promise<void> {
    const old = servers[i]!;
    servers[i] = await startServer(instanceEnv(i), {
      port: old.port,
      dataDir: old.dataDir,
      runtime,
    });
    let back = false;
    for (let attempt = 0; attempt < 100 && !back; attempt++) {
      back = (await servedBy('/healthz')) === `200 s${i + 1}`;
      if (!back) await new Promise((r) => setTimeout(r, 100));
    }
    expect(back, `s${i + 1} takes traffic again`).toBe(true);
  }

  beforeAll(async () => {
    [redis, database, anthropic] = await Promise.all([
      startRedis(),
      createTestDatabase(),
      startFakeAnthropic(),
    ]);
    ports = [await freePort(), await freePort(), await freePort()];
    const proxyPort = await freePort();
    env = {
      DATABASE_URL: database.url,
      REDIS_URL: redis.url,
      // One deployment: every instance signs and seals with the same keys.
      JWT_SECRET: randomBytes(32).toString('hex'),
      VAPORFORM_MASTER_KEY: randomBytes(32).toString('hex'),
      VAPORFORM_PUBLIC_URL: `http://127.0.0.1:${proxyPort}`,
      VAPORFORM_TRUSTED_PROXIES: '127.0.0.1',
      VAPORFORM_LOGIN_LIMIT_PER_ACCOUNT: '4',
      ANTHROPIC_BASE_URL: anthropic.url,
      // A run whose instance died is handed back within seconds (heartbeat every lease/3).
      VAPORFORM_AI_LEASE_SECONDS: '2',
    };
    servers.push(
      ...(await Promise.all(
        ports.map((port, i) => startServer(instanceEnv(i), { port, runtime })),
      )),
    );
    proxy = await startHaproxy(
      ports.map((p) => `127.0.0.1:${p}`),
      { port: proxyPort },
    );
  }, 300_000);

  afterAll(async () => {
    for (const s of sockets) s.close();
    for (const c of collabClients) c.close();
    await proxy?.stop();
    await Promise.all(servers.map((s) => s.stop()));
    await redis?.stop();
    await anthropic?.close();
    await database?.drop();
    for (const s of servers) rmSync(s.dataDir, { recursive: true, force: true });
  });

  async function servedBy(path: string, token?: string): Promise<string> {
    const r = await call(proxy.url, 'GET', path, { token });
    return `${r.status} ${r.headers.get('x-served-by')}`;
  }

  /**
   * One project socket through HAProxy on each instance (s1, s2, s3, in that order). Round robin
   * is shared with every other request in flight (a writer, a health check), so sockets are
   * opened until each instance holds one (bounded); the extra ones are closed.
   */
  async function socketOnEachInstance(projectId: string, token: string): Promise<ProjectSocket[]> {
    const held = new Map<string, ProjectSocket>();
    for (let attempt = 0; attempt < 15 && held.size < 3; attempt++) {
      const s = new ProjectSocket(proxy.url, projectId, token);
      sockets.push(s);
      await s.opened();
      if (s.servedBy && !held.has(s.servedBy)) held.set(s.servedBy, s);
      else s.close();
    }
    expect([...held.keys()].sort(), 'a socket on each instance').toEqual(['s1', 's2', 's3']);
    return ['s1', 's2', 's3'].map((name) => held.get(name)!);
  }

  let owner: Session;
  let member: Session;
  let projectId: string;

  describe(`three instances on ${runtime} behind HAProxy, one PostgreSQL, one Redis`, () => {
    it('round robin: consecutive requests are answered by all three instances', async () => {
      const binary = runtime === 'bun' ? 'bun' : basename(process.execPath);
      for (const s of servers) expect(basename(s.child.spawnfile)).toBe(binary);
      const seen = new Set<string>();
      for (let i = 0; i < 6; i++) seen.add(await servedBy('/healthz'));
      expect([...seen].sort()).toEqual(['200 s1', '200 s2', '200 s3']);
    });

    it('register and sign in on whichever instance answers; the session works on all', async () => {
      owner = await signUp(proxy.url, 'topo-owner@example.test');
      member = await signUp(proxy.url, 'topo-member@example.test');
      const seen = new Set<string>();
      for (let i = 0; i < 6; i++) seen.add(await servedBy('/api/auth/me', owner.token));
      expect([...seen].sort()).toEqual(['200 s1', '200 s2', '200 s3']);
    });

    it('refresh rotation across instances: reuse of a rotated token is caught wherever it lands', async () => {
      const s = await signUp(proxy.url, 'topo-rotate@example.test');
      let current = s.refreshToken;
      const used: string[] = [];
      const where = new Set<string>();
      for (let i = 0; i < 3; i++) {
        const r = await call<{ refreshToken: string; token: string }>(
          proxy.url,
          'POST',
          '/api/auth/refresh',
          {
            body: { refreshToken: current },
          },
        );
        expect(r.status).toBe(200);
        where.add(r.headers.get('x-served-by') ?? '');
        used.push(current);
        current = r.body.refreshToken;
      }
      expect(where.size).toBe(3);
      // The first token, rotated away three instances ago, lands on some instance: reuse.
      const reused = await call<{ error: { code: string } }>(
        proxy.url,
        'POST',
        '/api/auth/refresh',
        {
          body: { refreshToken: used[0] },
        },
      );
      expect(reused.status).toBe(401);
      expect(reused.body.error.code).toBe('token_reused');
      // Reuse revoked the whole session on every instance: the newest token is dead everywhere.
      for (let i = 0; i < 3; i++) {
        const r = await call(proxy.url, 'POST', '/api/auth/refresh', {
          body: { refreshToken: current },
        });
        expect(r.status).toBe(401);
      }
    });

    it('the per-account sign-in limit is shared by the instances', async () => {
      const wrong = { email: 'topo-member@example.test', password: 'not the password' };
      const statuses: number[] = [];
      const where = new Set<string>();
      for (let i = 0; i < 5; i++) {
        const r = await call(proxy.url, 'POST', '/api/auth/login', { body: wrong });
        statuses.push(r.status);
        where.add(r.headers.get('x-served-by') ?? '');
      }
      expect(where.size).toBe(3);
      expect(statuses).toEqual([401, 401, 401, 401, 429]);
    });

    it('project events reach every member on every instance; logout closes sockets on all of them', async () => {
      const created = await call<{ project: { id: string } }>(proxy.url, 'POST', '/api/projects', {
        token: owner.token,
        body: { name: 'topology', description: 'three instances' },
      });
      expect(created.status).toBe(201);
      projectId = created.body.project.id;
      const added = await call(proxy.url, 'POST', `/api/projects/${projectId}/members`, {
        token: owner.token,
        body: { email: member.email, role: 'editor' },
      });
      expect(added.status).toBe(201);

      const memberSockets = await socketOnEachInstance(projectId, member.token);
      const write = await call(proxy.url, 'PUT', `/api/projects/${projectId}/files/hello.txt`, {
        token: owner.token,
        body: { content: 'hello from one instance' },
      });
      expect(write.status).toBe(201);
      for (const s of memberSockets) {
        await s.waitFor(
          (e) => e.type === 'file_changed' && (e.data as { path: string }).path === 'hello.txt',
        );
      }

      const out = await call(proxy.url, 'POST', '/api/auth/logout', { token: member.token });
      expect(out.status).toBe(204);
      expect(await Promise.all(memberSockets.map((s) => s.closed()))).toEqual([4401, 4401, 4401]);
      for (let i = 0; i < 3; i++) {
        expect((await call(proxy.url, 'GET', '/api/auth/me', { token: member.token })).status).toBe(
          401,
        );
      }
    });

    it('collaboration ops: stock ShareDB clients on different instances see each other’s ops and converge', async () => {
      const editor = await signUp(proxy.url, 'topo-editor@example.test');
      const added = await call(proxy.url, 'POST', `/api/projects/${projectId}/members`, {
        token: owner.token,
        body: { email: editor.email, role: 'editor' },
      });
      expect(added.status).toBe(201);
      const path = 'collab.txt';
      const put = await call(proxy.url, 'PUT', `/api/projects/${projectId}/files/${path}`, {
        token: owner.token,
        body: { content: 'shared\n' },
      });
      expect(put.status).toBe(201);
      const connect = async (token: string) => {
        const c = await connectCollab(collabUrl(proxy.url, token));
        collabClients.push(c);
        return c;
      };
      const a = await connect(owner.token);
      let b = await connect(editor.token);
      // Round robin may give the next upgrade to the same instance: connect again (bounded).
      for (let i = 0; i < 5 && b.servedBy === a.servedBy; i++) {
        b.close();
        b = await connect(editor.token);
      }
      expect(a.servedBy).toMatch(/^s[123]$/);
      expect(b.servedBy).toMatch(/^s[123]$/);
      expect(b.servedBy).not.toBe(a.servedBy);
      const [da, db] = [a.doc(projectId, path), b.doc(projectId, path)];
      await Promise.all([docs.subscribe(da), docs.subscribe(db)]);
      expect([da.data, db.data]).toEqual(['shared\n', 'shared\n']);

      // Both type at once at the start of the text; each op counts once acknowledged.
      const type = async (doc: typeof da, letter: string) => {
        for (let i = 0; i < 10; i++) await docs.submit(doc, [letter]);
      };
      await Promise.all([type(da, 'X'), type(db, 'Y')]);
      const count = (text: string, letter: string) => text.split(letter).length - 1;
      await until(
        () => da.data === db.data && count(da.data, 'X') === 10 && count(da.data, 'Y') === 10,
        15_000,
        () =>
          collabState(path, [
            { client: a, doc: da },
            { client: b, doc: db },
          ]),
      );
      expect(da.data.endsWith('shared\n')).toBe(true);
      expect(da.data).toHaveLength(27);
      // The typing is written back to the file, read through whichever instance answers.
      await until(
        async () =>
          (
            await call<{ content: string }>(
              proxy.url,
              'GET',
              `/api/projects/${projectId}/files/${path}`,
              { token: owner.token },
            )
          ).body.content === da.data,
        20_000,
        'the file to hold the converged text',
      );
    }, 60_000);

    it('the collab sockets of one project, opened as the IDE opens them (?project=), all reach one instance', async () => {
      const put = await call(proxy.url, 'PUT', `/api/projects/${projectId}/files/routed.txt`, {
        token: owner.token,
        body: { content: 'routed\n' },
      });
      expect(put.status).toBe(201);
      const scoped: CollabClient[] = [];
      for (let i = 0; i < 6; i++) {
        const c = await connectCollab(collabUrl(proxy.url, owner.token, projectId));
        collabClients.push(c);
        scoped.push(c);
      }
      const instances = new Set(scoped.map((c) => c.servedBy));
      expect(instances.size, [...instances].join(', ')).toBe(1);
      expect(scoped[0]!.servedBy).toMatch(/^s[123]$/);
      // Where they are, an op of one reaches the others.
      const [first, second] = [
        scoped[0]!.doc(projectId, 'routed.txt'),
        scoped[5]!.doc(projectId, 'routed.txt'),
      ];
      await Promise.all([docs.subscribe(first), docs.subscribe(second)]);
      await docs.submit(first, ['!']);
      expect(first.data).toBe('!routed\n');
      await until(() => second.data === '!routed\n', 10_000, 'the other socket to see the op');
      for (const c of scoped) c.close();
    }, 60_000);

    it('an instance SIGKILLed mid-session: sockets and co-editors reconnect through HAProxy, no acknowledged write is lost, the instance rejoins', async () => {
      const ownerSockets = await socketOnEachInstance(projectId, owner.token);
      const victimName = 's2';
      const victimSocket = ownerSockets.find((s) => s.servedBy === victimName)!;
      expect(victimSocket).toBeDefined();
      // Two co-editors of collab.txt: one on the instance about to die, one elsewhere.
      const collabOn = async (wanted: (servedBy: string | undefined) => boolean) => {
        for (let i = 0; i < 6; i++) {
          const c = await connectCollab(collabUrl(proxy.url, owner.token));
          collabClients.push(c);
          if (wanted(c.servedBy)) return c;
          c.close();
        }
        throw new Error('round robin never gave the wanted instance');
      };
      const editorOnVictim = await collabOn((by) => by === victimName);
      const editorElsewhere = await collabOn((by) => by !== victimName);
      const [dv, de] = [
        editorOnVictim.doc(projectId, 'collab.txt'),
        editorElsewhere.doc(projectId, 'collab.txt'),
      ];
      await Promise.all([docs.subscribe(dv), docs.subscribe(de)]);

      // A writer that saves file after file; a save counts once the API acknowledged it.
      const acknowledged = new Map<string, string>();
      let failedAttempts = 0;
      let acknowledgedWrites = 0;
      let stop = false;
      const writer = (async () => {
        for (let i = 0; i < 400 && !stop; i++) {
          const path = `kill/f${i % 20}.txt`;
          const content = `write ${i}`;
          // A refused or cut request is not acknowledged: the client tries again, same content.
          for (let attempt = 0; attempt < 20; attempt++) {
            const r = await call(proxy.url, 'PUT', `/api/projects/${projectId}/files/${path}`, {
              token: owner.token,
              body: { content },
            }).catch(() => undefined);
            if (r && (r.status === 200 || r.status === 201)) {
              acknowledged.set(path, content);
              acknowledgedWrites++;
              break;
            }
            failedAttempts++;
            await new Promise((res) => setTimeout(res, 100));
          }
        }
      })();

      const deadline = Date.now() + 30_000;
      while (acknowledgedWrites < 10 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      const victim = servers[1]!;
      const killedAt = Date.now();
      victim.child.kill('SIGKILL');
      expect(await victimSocket.closed()).toBe(1006);

      // The client reconnects through HAProxy, which no longer sends it to the dead instance.
      let replacement: ProjectSocket | undefined;
      for (let attempt = 0; attempt < 50 && !replacement; attempt++) {
        const s = new ProjectSocket(proxy.url, projectId, owner.token);
        sockets.push(s);
        try {
          await s.opened(5_000);
          replacement = s;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      expect(replacement).toBeDefined();
      const reconnectMs = Date.now() - killedAt;
      expect(replacement!.servedBy).not.toBe(victimName);
      const before = acknowledgedWrites;
      while (acknowledgedWrites < before + 5 && Date.now() < killedAt + 60_000) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await replacement!.waitFor((e) => e.type === 'file_changed');

      // The co-editor on the dead instance types while cut off; its client reconnects through
      // HAProxy (to another instance), the op is sent and acknowledged, and both converge.
      await editorOnVictim.closed;
      const typedOffline = docs.submit(dv, ['Z']);
      let rebound = false;
      for (let attempt = 0; attempt < 20 && !rebound; attempt++) {
        try {
          await editorOnVictim.reconnect(collabUrl(proxy.url, owner.token));
          rebound = true;
        } catch {
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      expect(rebound).toBe(true);
      expect(editorOnVictim.servedBy).not.toBe(victimName);
      await typedOffline;
      await docs.submit(de, ['W']);
      await until(
        () => dv.data === de.data && dv.data.includes('Z') && dv.data.includes('W'),
        15_000,
        () =>
          collabState('collab.txt', [
            { client: editorOnVictim, doc: dv },
            { client: editorElsewhere, doc: de },
          ]),
      );

      // The instance comes back on its port and HAProxy sends it traffic again.
      await restart(1);
      // HAProxy sends the restarted instance traffic again: it takes a socket.
      const rejoined = await socketOnEachInstance(projectId, owner.token);
      stop = true;
      await writer;

      // Every acknowledged write is there, read through every instance.
      const lost: string[] = [];
      for (const [path, content] of acknowledged) {
        const r = await call<{ content: string }>(
          proxy.url,
          'GET',
          `/api/projects/${projectId}/files/${path}`,
          {
            token: owner.token,
          },
        );
        if (r.body.content !== content) lost.push(`${path}: ${r.body.content} ≠ ${content}`);
      }
      const write = await call(proxy.url, 'PUT', `/api/projects/${projectId}/files/after.txt`, {
        token: owner.token,
        body: { content: 'after the restart' },
      });
      expect(write.status).toBe(201);
      for (const s of rejoined) {
        await s.waitFor(
          (e) => e.type === 'file_changed' && (e.data as { path: string }).path === 'after.txt',
        );
      }
      console.log(
        `topology: reconnect after SIGKILL ${reconnectMs} ms; ${acknowledgedWrites} writes to ${acknowledged.size} files acknowledged, ${lost.length} lost; ${failedAttempts} unacknowledged attempts retried`,
      );
      expect(lost).toEqual([]);
    }, 240_000);

    it('a queued assistant job finishes exactly once when the instance running it is SIGKILLed', async () => {
      const ownerSockets = await socketOnEachInstance(projectId, owner.token);
      const base = await call(proxy.url, 'PUT', `/api/projects/${projectId}/files/base.txt`, {
        token: owner.token,
        body: { content: 'count = 1\n' },
      });
      expect(base.status).toBe(201);

      // Each attempt writes a.txt and edits base.txt; the first also leaves scratch.txt, then its
      // model stalls — and the instance running it is killed.
      const ranOn: string[] = [];
      let stalledOn!: (instance: string) => void;
      const stalled = new Promise<string>((r) => (stalledOn = r));
      anthropic.script((request) => {
        const turns = (request.body.messages as unknown[]).length;
        const key = String(request.headers['x-api-key'] ?? request.headers.authorization);
        const instance = /sk-fake-(s[123])$/.exec(key)?.[1] ?? `unknown key ${key}`;
        if (turns === 1) ranOn.push(instance);
        const step = (turns - 1) / 2;
        const first = ranOn.length === 1;
        if (step === 0) {
          return {
            toolCalls: [
              { name: 'write_file', input: { path: 'a.txt', content: 'from the AI\n' } },
              ...(first
                ? [{ name: 'write_file', input: { path: 'scratch.txt', content: 'half-done\n' } }]
                : []),
            ],
          };
        }
        if (step === 1) {
          return {
            toolCalls: [
              {
                name: 'edit_file',
                input: { path: 'base.txt', old_str: 'count = 1', new_str: 'count = 2' },
              },
            ],
          };
        }
        if (first) {
          stalledOn(instance);
          return { text: 'never finished', stall: new Promise<void>(() => undefined) };
        }
        return { text: 'Done: count is 2.' };
      });
      const queued = await call<{ requestId: string }>(proxy.url, 'POST', '/api/claude/process', {
        token: owner.token,
        body: { projectId, message: 'Set count to 2', type: 'modify' },
      });
      expect(queued.status).toBe(202);
      const requestId = queued.body.requestId;

      const victimName = await stalled;
      const victimIndex = Number(victimName.slice(1)) - 1;
      const victim = servers[victimIndex];
      expect(victim, `the instance that ran the job: ${victimName}`).toBeDefined();
      const exited = new Promise((r) => victim!.child.once('exit', r));
      victim!.child.kill('SIGKILL');
      await exited;

      const deadline = Date.now() + 90_000;
      let done: { status: string; attempts: number } | undefined;
      while (!done && Date.now() < deadline) {
        const r = await call<{ status: string; attempts: number }>(
          proxy.url,
          'GET',
          `/api/claude/requests/${requestId}`,
          { token: owner.token },
        ).catch(() => undefined);
        if (r?.body.status === 'succeeded' || r?.body.status === 'failed') done = r.body;
        else await new Promise((res) => setTimeout(res, 200));
      }
      expect(done).toMatchObject({ status: 'succeeded', attempts: 2 });
      expect(ranOn).toHaveLength(2);
      expect(ranOn[1]).not.toBe(victimName);

      // The project as after one clean run: the first attempt's scratch file rolled back, the
      // edit applied once — read through whichever instance answers.
      const files = await call<{ files: { path: string }[] }>(
        proxy.url,
        'GET',
        `/api/projects/${projectId}/files`,
        { token: owner.token },
      );
      const paths = files.body.files.map((f) => f.path);
      expect(paths).toContain('a.txt');
      expect(paths).not.toContain('scratch.txt');
      const read = async (path: string) =>
        (
          await call<{ content: string }>(
            proxy.url,
            'GET',
            `/api/projects/${projectId}/files/${path}`,
            { token: owner.token },
          )
        ).body.content;
      expect(await read('base.txt')).toBe('count = 2\n');
      expect(await read('a.txt')).toBe('from the AI\n');

      // Its answer reached the owner on each surviving instance, once.
      const survivors = ownerSockets.filter((s) => s.servedBy !== victimName);
      expect(survivors).toHaveLength(2);
      const isAnswer = (e: { type: string; data?: unknown }) =>
        e.type === 'claude-response' && (e.data as { requestId?: string }).requestId === requestId;
      for (const s of survivors) await s.waitFor(isAnswer, 15_000);
      await new Promise((r) => setTimeout(r, 1_000));
      expect(survivors.map((s) => s.events.filter(isAnswer).length)).toEqual([1, 1]);
      console.log(
        `topology: queued assistant job stalled on ${victimName} (SIGKILLed), finished on ${ranOn[1]} after ${done!.attempts} attempts`,
      );

      await restart(victimIndex);
    }, 180_000);

    it('throughput: requests/s through HAProxy against one instance alone, same run', async () => {
      const path = `/api/projects/${projectId}/files/hello.txt`;
      const headers = { authorization: `Bearer ${owner.token}` };
      const run = (url: string) =>
        new Promise<number>((resolve, reject) => {
          autocannon(
            { url: `${url}${path}`, headers, connections: 12, duration: 4 },
            (err: Error | null, result: { requests: { average: number }; non2xx: number }) => {
              if (err) return reject(err);
              if (result.non2xx > 0) return reject(new Error(`${result.non2xx} non-2xx answers`));
              resolve(result.requests.average);
            },
          );
        });
      const alone = await run(servers[0]!.url);
      const balanced = await run(proxy.url);
      console.log(
        `topology: ${alone.toFixed(0)} req/s one instance alone, ${balanced.toFixed(0)} req/s through HAProxy over three (×${(balanced / alone).toFixed(2)})`,
      );
      expect(balanced).toBeGreaterThan(0);
    }, 60_000);
  });
}
