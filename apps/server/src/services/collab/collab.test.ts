import { connect as connectTcp } from 'node:net';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  call,
  createTestApp,
  listen,
  registerAndLogin,
  slowUserReads,
  type TestApp,
} from '../../../test/app.ts';
import {
  collabUrl,
  connectCollab,
  docs,
  until,
  type CollabClient,
} from '../../../test/collab-client.ts';

type User = Awaited<ReturnType<typeof registerAndLogin>>;

const CONTENT = 'héllo 😀 wörld\r\n\tline two\r\n';

describe('WS /api/collab', () => {
  let t: TestApp;
  let server: Awaited<ReturnType<typeof listen>>;
  let owner: User;
  let editor: User;
  let viewer: User;
  let stranger: User;
  let projectId: string;
  const clients: CollabClient[] = [];

  const connect = async (user: User, headers: Record<string, string> = {}) => {
    const client = await connectCollab(collabUrl(server.url, user.token), headers);
    clients.push(client);
    return client;
  };
  const put = (path: string, content: string, token = owner.token) =>
    call(t.app, 'PUT', `/api/projects/${projectId}/files/${path}`, { token, body: { content } });
  const read = (path: string) => t.services.files.read(projectId, path);
  const history = (path: string) => t.services.files.history(projectId, path);
  const errorOf = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (err: { code?: string; message?: string }) => ({ code: err.code, message: err.message }),
    );

  beforeAll(async () => {
    t = await createTestApp();
    server = await listen(t);
    [owner, editor, viewer, stranger] = await Promise.all([
      registerAndLogin(t.app, { name: 'Olive Owner' }),
      registerAndLogin(t.app, { name: 'Eddie Editor' }),
      registerAndLogin(t.app, { name: 'Vera Viewer' }),
      registerAndLogin(t.app, { name: 'Stan Stranger' }),
    ]);
    const res = await call(t.app, 'POST', '/api/projects', {
      token: owner.token,
      body: { name: 'Together' },
    });
    projectId = res.body.project.id;
    for (const [user, role] of [
      [editor, 'editor'],
      [viewer, 'viewer'],
    ] as const) {
      await call(t.app, 'POST', `/api/projects/${projectId}/members`, {
        token: owner.token,
        body: { email: user.user.email, role },
      });
    }
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await server?.close();
    await t?.close();
  });

  it('gives a stock ShareDB client the file as a text-unicode document', async () => {
    expect((await put('src/app.js', CONTENT)).status).toBeLessThan(300);
    const client = await connect(owner);
    const doc = client.doc(projectId, 'src/app.js');
    await docs.subscribe(doc);
    expect(doc.type?.name).toBe('text-unicode');
    expect(doc.data).toBe(CONTENT);
  });

  it('two editors typing at once converge', async () => {
    await put('converge.txt', 'abc\n');
    const [a, b] = [await connect(owner), await connect(editor)];
    const [da, db] = [a.doc(projectId, 'converge.txt'), b.doc(projectId, 'converge.txt')];
    await Promise.all([docs.subscribe(da), docs.subscribe(db)]);
    await Promise.all([
      docs.submit(da, [1, 'X😀']),
      docs.submit(db, [3, 'Y\r\n']),
      docs.submit(da, ['start ']),
      docs.submit(db, [{ d: 1 }]),
    ]);
    await until(() => da.data === db.data && !da.hasWritePending() && !db.hasWritePending());
    expect(da.data).toBe(db.data);
    expect([...da.data]).toHaveLength([...'start X😀bcY\r\n\n'].length);
    expect(da.data).toContain('X😀');
    expect(da.data).toContain('Y\r\n');
  });

  it("refuses a viewer's op and applies it nowhere; the viewer still follows along", async () => {
    await put('readonly.txt', 'keep me\n');
    const [v, o] = [await connect(viewer), await connect(owner)];
    const [dv, dO] = [v.doc(projectId, 'readonly.txt'), o.doc(projectId, 'readonly.txt')];
    await Promise.all([docs.subscribe(dv), docs.subscribe(dO)]);
    expect(dv.data).toBe('keep me\n');
    const err = await errorOf(docs.submit(dv, ['sneaky ']));
    expect(err?.code).toBe('forbidden');
    await docs.submit(dO, [7, '!']);
    await until(() => dv.data === 'keep me!\n', 10_000, 'the viewer to see the owner op');
    const fresh = (await connect(owner)).doc(projectId, 'readonly.txt');
    await docs.fetch(fresh);
    expect(fresh.data).toBe('keep me!\n');
    expect(dO.data).toBe('keep me!\n');
  });

  it('tells a stranger exactly what it tells anyone about a missing file', async () => {
    await put('secret.txt', 'classified');
    const s = await connect(stranger);
    const o = await connect(owner);
    const strangers = await errorOf(docs.subscribe(s.doc(projectId, 'secret.txt')));
    const missing = await errorOf(docs.fetch(o.doc(projectId, 'no/such/file.txt')));
    const otherProject = await errorOf(
      docs.fetch(s.doc('00000000-0000-4000-8000-000000000000', 'secret.txt')),
    );
    expect(strangers).toEqual({ code: 'not_found', message: 'Document not found' });
    expect(missing).toEqual(strangers);
    expect(otherProject).toEqual(strangers);
    // A member spelling the project id another way gets no second document of the file.
    expect(await errorOf(docs.fetch(o.doc(projectId.toUpperCase(), 'secret.txt')))).toEqual(
      strangers,
    );
    // …also once the document exists (the owner opened it).
    await docs.subscribe(o.doc(projectId, 'secret.txt'));
    expect(await errorOf(docs.fetch(s.doc(projectId, 'secret.txt')))).toEqual(strangers);
    const presence = s.connection.getDocPresence(projectId, 'secret.txt');
    const presenceErr = await errorOf(
      new Promise<void>((ok, fail) => presence.subscribe((e?: unknown) => (e ? fail(e) : ok()))),
    );
    expect(presenceErr).toEqual(strangers);
  });

  it('refuses other origins (403) and missing tokens (401)', async () => {
    const status = (p: Promise<unknown>) =>
      p.then(
        () => 101,
        (e: { status?: number }) => e.status,
      );
    expect(
      await status(
        connectCollab(collabUrl(server.url, owner.token), { origin: 'https://evil.example' }),
      ),
    ).toBe(403);
    expect(await status(connectCollab(`${server.url.replace('http', 'ws')}/api/collab`))).toBe(401);
    const ok = await connect(owner, { origin: new URL(t.config.publicUrl).origin });
    expect(ok.ws.readyState).toBe(1);
  });

  it('serves a socket opened for one project (?project=) that project only', async () => {
    const other = await call(t.app, 'POST', '/api/projects', {
      token: owner.token,
      body: { name: 'Elsewhere' },
    });
    const otherId: string = other.body.project.id;
    await call(t.app, 'PUT', `/api/projects/${otherId}/files/mine.txt`, {
      token: owner.token,
      body: { content: 'also the owner’s\n' },
    });
    await put('scoped.txt', 'in scope\n');
    const scoped = await connectCollab(collabUrl(server.url, owner.token, projectId));
    clients.push(scoped);
    const doc = scoped.doc(projectId, 'scoped.txt');
    await docs.subscribe(doc);
    expect(doc.data).toBe('in scope\n');
    // The owner is a member of the other project too, but not on this socket.
    expect(await errorOf(docs.subscribe(scoped.doc(otherId, 'mine.txt')))).toEqual({
      code: 'not_found',
      message: 'Document not found',
    });
    // An unscoped socket of the same user opens both.
    const anywhere = await connect(owner);
    await docs.subscribe(anywhere.doc(otherId, 'mine.txt'));
    expect(anywhere.doc(otherId, 'mine.txt').data).toBe('also the owner’s\n');
    // A project that is not an id is refused before the handshake, in the contract's shape.
    const bad = await call(t.app, 'GET', '/api/collab?project=not-an-id', {
      token: owner.token,
      headers: { upgrade: 'websocket' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
  });

  it('closes the socket when its session is revoked', async () => {
    const session = await registerAndLogin(t.app);
    const client = await connect(session);
    const out = await call(t.app, 'POST', '/api/auth/logout', {
      token: session.token,
      body: { refreshToken: session.refreshToken },
    });
    expect(out.status).toBe(204);
    expect((await client.closed).code).toBe(4401);
  });

  it('closes a socket that sends what is not a JSON object (1007) and forgets it; others go on', async () => {
    await put('garbled.txt', 'steady\n');
    const calm = await connect(editor);
    const calmDoc = calm.doc(projectId, 'garbled.txt');
    await docs.subscribe(calmDoc);
    const before = t.services.collab.connections;
    const rude = await connect(owner);
    await until(() => t.services.collab.connections === before + 1);
    rude.ws.send('{"a":"hs"'); // cut short
    expect((await rude.closed).code).toBe(1007);
    const alsoRude = await connect(owner);
    alsoRude.ws.send('"a string"');
    expect((await alsoRude.closed).code).toBe(1007);
    await until(() => t.services.collab.connections === before);
    await docs.submit(calmDoc, [0, '> ']);
    const reader = await connect(owner);
    const readerDoc = reader.doc(projectId, 'garbled.txt');
    await docs.subscribe(readerDoc);
    expect(readerDoc.data).toBe('> steady\n');
  });

  it('drops a client that asks for a large document over and over and reads nothing', async () => {
    await put('heavy.txt', 'x'.repeat(900 * 1024));
    const before = t.services.collab.connections;
    // A bare TCP client: it upgrades, then sends and never reads again.
    const url = new URL(collabUrl(server.url, owner.token));
    const hog = connectTcp(Number(url.port), url.hostname);
    hog.on('error', () => undefined);
    await new Promise((ok) => hog.once('connect', ok));
    hog.write(
      `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\n` +
        'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
        'Sec-WebSocket-Version: 13\r\n\r\n',
    );
    const head = await new Promise<string>((ok) => hog.once('data', (d) => ok(String(d))));
    expect(head).toMatch(/^HTTP\/1.1 101/);
    hog.pause();
    await until(() => t.services.collab.connections === before + 1);
    const fetch = maskedTextFrame(JSON.stringify({ a: 'f', c: projectId, d: 'heavy.txt' }));
    for (let i = 0; i < 80; i++) hog.write(fetch); // ~70 MiB of answers
    // Dropped at 16 MiB unsent, not after the heartbeat's 30 s; the others are served on.
    await until(() => t.services.collab.connections === before, 10_000, 'the hog dropped');
    hog.destroy();
    const reader = await connect(editor);
    await docs.subscribe(reader.doc(projectId, 'heavy.txt'));
    expect(reader.doc(projectId, 'heavy.txt').data.length).toBe(900 * 1024);
  });

  it('turns an API write of an open file into an op by its author', async () => {
    await put('live.txt', 'one\ntwo\nthree\n');
    const client = await connect(editor);
    const doc = client.doc(projectId, 'live.txt');
    await docs.subscribe(doc);
    const seen: { op: unknown; src: string }[] = [];
    doc.on('op', (op: unknown, _source: unknown, src: string) => seen.push({ op, src }));
    const next = 'one\n2️⃣ two\nthree\nfour 🎉\n';
    expect((await put('live.txt', next)).status).toBe(200);
    await until(() => doc.data === next, 10_000, 'the API write to arrive as an op');
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((s) => s.src.startsWith(`vf:user:${owner.user.id}:`))).toBe(true);
  });

  it('keeps typing made while another writer saves (three-way)', async () => {
    await put('merge.txt', 'alpha\nbeta\ngamma\n');
    const client = await connect(editor);
    const doc = client.doc(projectId, 'merge.txt');
    await docs.subscribe(doc);
    // The editor types at the end while, concurrently, the owner rewrites the first line.
    await Promise.all([
      docs.submit(doc, [17, 'delta\n']),
      put('merge.txt', 'ALPHA\nbeta\ngamma\n'),
    ]);
    await until(() => doc.data === 'ALPHA\nbeta\ngamma\ndelta\n', 10_000, 'both changes');
  });

  it('writes typing to the file after a pause, as one new version by the typist', async () => {
    await put('typing.txt', 'x');
    const before = (await history('typing.txt')).length;
    const client = await connect(editor);
    const doc = client.doc(projectId, 'typing.txt');
    await docs.subscribe(doc);
    for (const ch of 'yz 😀\r\n') await docs.submit(doc, [[...doc.data].length, ch]);
    expect(doc.data).toBe('xyz 😀\r\n');
    await until(async () => (await read('typing.txt')).content === 'xyz 😀\r\n', 15_000, 'flush');
    const versions = await history('typing.txt');
    expect(versions.length).toBe(before + 1);
    expect(versions[0]!.source).toBe('collab');
    expect(versions[0]!.createdBy).toBe(editor.user.id);
  });

  it('writes the document to its file at once on a save (Ctrl+S), for editors only', async () => {
    await put('saved.txt', 'a');
    const client = await connect(editor);
    const doc = client.doc(projectId, 'saved.txt');
    await docs.subscribe(doc);
    await docs.submit(doc, [1, 'bc']);
    const save = (token: string, path = 'saved.txt') =>
      call(t.app, 'POST', `/api/projects/${projectId}/collab/save`, { token, body: { path } });
    const res = await save(editor.token);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ written: true });
    // In the file when the save answers: not after the pause in typing.
    const file = await read('saved.txt');
    expect(file.content).toBe('abc');
    expect((await history('saved.txt'))[0]!.createdBy).toBe(editor.user.id);
    expect((await save(viewer.token)).status).toBe(403);
    expect((await save(stranger.token)).status).toBe(404);
    const bad = await save(editor.token, '../outside.txt');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
  });

  it('recovers a document whose creation was cut short (crash before or after the create)', async () => {
    // A crash is simulated by failing the database statement at that point of the first open.
    const pool = t.services.pool;
    const query = pool.query.bind(pool) as (sql: string, params?: unknown[]) => Promise<unknown>;
    const failWhen = (match: (sql: string, params: unknown[]) => boolean) => {
      (pool as { query: unknown }).query = (sql: string, params?: unknown[]) =>
        typeof sql === 'string' && params && match(sql, params)
          ? Promise.reject(new Error('simulated crash'))
          : query(sql, params);
    };
    const points = {
      // The document's commit (its create) fails: the record is already there.
      'before the create': (sql: string, params: unknown[]) =>
        sql.includes('INSERT INTO collab_ops') && params[1] === 'cut-before.txt',
      // The create is committed, the record of its version is not.
      'after the create': (sql: string, params: unknown[]) =>
        sql.includes('INSERT INTO collab_files') &&
        params[1] === 'cut-after.txt' &&
        params[3] !== null,
    };
    try {
      for (const [point, match] of Object.entries(points)) {
        const path = point === 'before the create' ? 'cut-before.txt' : 'cut-after.txt';
        await put(path, 'one\n');
        const versions = (await history(path)).length;
        const client = await connect(editor);
        failWhen(match);
        expect(await errorOf(docs.subscribe(client.doc(projectId, path))), point).toBeDefined();
        (pool as { query: unknown }).query = query;
        // Reopened: the file's text, typing reaches the file, other writers reach the document.
        const again = await connect(editor);
        const doc = again.doc(projectId, path);
        await docs.subscribe(doc);
        expect(doc.data, point).toBe('one\n');
        await docs.submit(doc, [4, 'two\n']);
        await until(async () => (await read(path)).content === 'one\ntwo\n', 15_000, point);
        expect((await history(path)).length, point).toBe(versions + 1);
        expect((await put(path, 'one\ntwo\nthree\n')).status).toBeLessThan(300);
        await until(() => doc.data === 'one\ntwo\nthree\n', 10_000, `${point}: API write as op`);
      }
    } finally {
      (pool as { query: unknown }).query = query;
    }
  });

  it('refuses binary and oversized files with a clear error', async () => {
    await t.services.files.write(
      projectId,
      'logo.png',
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2]),
      {
        source: 'user',
        userId: owner.user.id,
      },
    );
    await t.services.files.write(projectId, 'big.txt', 'a'.repeat(1024 * 1024 + 1), {
      source: 'user',
      userId: owner.user.id,
    });
    const client = await connect(owner);
    const binary = await errorOf(docs.subscribe(client.doc(projectId, 'logo.png')));
    expect(binary?.code).toBe('invalid_request');
    expect(binary?.message).toMatch(/binary/);
    const big = await errorOf(docs.subscribe(client.doc(projectId, 'big.txt')));
    expect(big?.code).toBe('too_large');
    // A file that turns binary while it is open: its readers get `del`, the next opener the error.
    await put('turns.png', 'text for now\n');
    const reader = client.doc(projectId, 'turns.png');
    await docs.subscribe(reader);
    const deleted = new Promise<void>((ok) => reader.once('del', () => ok()));
    await t.services.files.write(projectId, 'turns.png', Buffer.from([0x89, 0x50, 0, 1]), {
      source: 'user',
      userId: owner.user.id,
    });
    await deleted;
    const late = await errorOf(docs.subscribe((await connect(editor)).doc(projectId, 'turns.png')));
    expect(late?.message).toMatch(/binary/);
  });

  it('never lets a client create a document', async () => {
    const client = await connect(owner);
    const made = client.doc(projectId, 'made-up.txt');
    made.on('error', () => undefined); // the client's rollback fetch fails too: no such document
    const created = await errorOf(
      new Promise<void>((ok, fail) =>
        made.create('hi', 'text-unicode', (e?: unknown) => (e ? fail(e) : ok())),
      ),
    );
    expect(created?.code).toBe('forbidden');
    await expect(read('made-up.txt')).rejects.toMatchObject({ code: 'not_found' });
  });

  it('deletes the document of a deleted file (clients get del)', async () => {
    await put('doomed.txt', 'bye');
    const client = await connect(editor);
    const doc = client.doc(projectId, 'doomed.txt');
    await docs.subscribe(doc);
    const deleted = new Promise<void>((ok) => doc.once('del', () => ok()));
    const res = await call(t.app, 'DELETE', `/api/projects/${projectId}/files/doomed.txt`, {
      token: owner.token,
    });
    expect(res.status).toBeLessThan(300);
    await deleted;
    expect(doc.type).toBeNull();
    const again = await errorOf(docs.fetch((await connect(owner)).doc(projectId, 'doomed.txt')));
    expect(again?.code).toBe('not_found');
  });

  it('turns a restore into an op and a move into the end of the old document', async () => {
    await put('story.txt', 'first draft\n');
    const first = (await history('story.txt'))[0]!.version;
    await put('story.txt', 'second draft\n');
    const client = await connect(editor);
    const doc = client.doc(projectId, 'story.txt');
    await docs.subscribe(doc);
    expect(doc.data).toBe('second draft\n');
    const srcs: string[] = [];
    doc.on('op', (_op: unknown, _source: unknown, src: string) => srcs.push(src));
    const restored = await call(t.app, 'POST', `/api/projects/${projectId}/restore`, {
      token: owner.token,
      body: { path: 'story.txt', version: first },
    });
    expect(restored.status).toBe(200);
    await until(() => doc.data === 'first draft\n', 10_000, 'the restore as an op');
    expect(srcs.at(-1)).toMatch(new RegExp(`^vf:user:${owner.user.id}:`));

    const deleted = new Promise<void>((ok) => doc.once('del', () => ok()));
    const moved = await call(t.app, 'POST', `/api/projects/${projectId}/move`, {
      token: owner.token,
      body: { from: 'story.txt', to: 'chapters/story.txt' },
    });
    expect(moved.status).toBe(200);
    await deleted;
    const next = client.doc(projectId, 'chapters/story.txt');
    await docs.subscribe(next);
    expect(next.data).toBe('first draft\n');
  });

  it('tells the project socket which file each person has open', async () => {
    await put('shown.txt', 'look');
    const events: any[] = [];
    const watcher = new WebSocket(
      `${server.url.replace('http', 'ws')}/api/projects/${projectId}/ws?token=${owner.token}`,
    );
    watcher.on('message', (raw) => events.push(JSON.parse(raw.toString())));
    await new Promise((ok, fail) => (watcher.once('open', ok), watcher.once('error', fail)));
    // The name is read when the socket opens; a slow read must not send the presence nameless.
    const fastNames = slowUserReads(t);
    try {
      const client = await connect(editor);
      await docs.subscribe(client.doc(projectId, 'shown.txt'));
      fastNames();
      const isFile = (open: boolean) => (e: any) =>
        e.type === 'presence' &&
        e.data.event === 'file' &&
        e.data.userId === editor.user.id &&
        e.data.path === 'shown.txt' &&
        e.data.open === open;
      const opened = await until(() => events.find(isFile(true)), 10_000, 'open presence');
      expect(opened.data.name).toBe('Eddie Editor');
      // Who opens the project later learns it too.
      const late: any[] = [];
      const latecomer = new WebSocket(
        `${server.url.replace('http', 'ws')}/api/projects/${projectId}/ws?token=${viewer.token}`,
      );
      latecomer.on('message', (raw) => late.push(JSON.parse(raw.toString())));
      try {
        await until(() => late.find(isFile(true)), 10_000, 'open files for a latecomer');
      } finally {
        latecomer.close();
      }
      client.close();
      await until(() => events.find(isFile(false)), 10_000, 'closed presence');
    } finally {
      fastNames();
      watcher.close();
    }
  });

  it('stops serving a member who leaves the project', async () => {
    const leaver = await registerAndLogin(t.app, { name: 'Lee Leaver' });
    await call(t.app, 'POST', `/api/projects/${projectId}/members`, {
      token: owner.token,
      body: { email: leaver.user.email, role: 'editor' },
    });
    await put('leaving.txt', 'stay?');
    const client = await connect(leaver);
    await docs.subscribe(client.doc(projectId, 'leaving.txt'));
    const removed = await call(
      t.app,
      'DELETE',
      `/api/projects/${projectId}/members/${leaver.user.id}`,
      { token: owner.token },
    );
    expect(removed.status).toBeLessThan(300);
    expect((await client.closed).code).toBe(4404);
    const again = await connect(leaver);
    expect(await errorOf(docs.fetch(again.doc(projectId, 'leaving.txt')))).toEqual({
      code: 'not_found',
      message: 'Document not found',
    });
  });

  it('shares cursors as presence, with the sender named by the server', async () => {
    await put('cursor.txt', 'abcdef');
    // Sent while the server still reads the sender's name, the cursor waits for it.
    const fastNames = slowUserReads(t);
    const [a, b] = await Promise.all([connect(owner), connect(editor)]).finally(fastNames);
    const [da, db] = [a.doc(projectId, 'cursor.txt'), b.doc(projectId, 'cursor.txt')];
    await Promise.all([docs.subscribe(da), docs.subscribe(db)]);
    const pa = a.connection.getDocPresence(projectId, 'cursor.txt');
    const pb = b.connection.getDocPresence(projectId, 'cursor.txt');
    await Promise.all(
      [pa, pb].map(
        (p) => new Promise<void>((ok, fail) => p.subscribe((e?: unknown) => (e ? fail(e) : ok()))),
      ),
    );
    const local = pb.create('b-cursor');
    await new Promise<void>((ok, fail) =>
      local.submit({ sel: [4, 4], name: 'Someone Else' }, (e?: unknown) => (e ? fail(e) : ok())),
    );
    const remote = await until(
      () => Object.values(pa.remotePresences)[0] as any,
      10_000,
      'presence',
    );
    expect(remote).toMatchObject({ sel: [4, 4], name: 'Eddie Editor', userId: editor.user.id });
    await docs.submit(da, ['>>']);
    await until(
      () => (Object.values(pa.remotePresences)[0] as any)?.sel?.[0] === 6,
      10_000,
      'moved',
    );
  });
});

/** A client's WebSocket text frame (masked, as RFC 6455 requires of clients), under 126 bytes. */
function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  if (payload.length >= 126) throw new Error('frame too long for this helper');
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = payload.map((b, i) => b ^ mask[i % 4]!);
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}
