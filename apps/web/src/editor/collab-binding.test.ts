// @vitest-environment jsdom
// The Monaco ↔ ShareDB binding against a real ShareDB backend in this process (MemoryDB, a real
// WebSocket server on loopback, the stock client over a reconnecting socket) and real Monaco
// text models (headless). The browser suite (tests/e2e/collab.test.ts) covers the editor view.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import ShareDB from 'sharedb';
import { WebSocket, WebSocketServer } from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type * as Monaco from 'monaco-editor';
import { MonacoBinding } from './collab-binding.ts';
import { CollabClient, registerCollabType, type CollabDoc } from './collab-connection.ts';

type MonacoModule = typeof Monaco;
let monaco: MonacoModule;
let backend: ShareDB;
let http: Server;
let wss: WebSocketServer;
let port = 0;
/** While false, the server drops every socket (the network is down). */
let online = true;
/** Refuse every submitted op with this message (a role change on the server). */
let refuseWith: string | null = null;

/** ShareDB's server speaks JSON objects over a stream (what @teamwork/websocket-json-stream does). */
function jsonStream(ws: WebSocket): Duplex {
  const stream = new Duplex({
    objectMode: true,
    read() {},
    write(msg: unknown, _enc, cb) {
      if (ws.readyState !== ws.OPEN) return cb(new Error('closed'));
      ws.send(JSON.stringify(msg), (err) => cb(err ?? null));
    },
  });
  ws.on('message', (data: Buffer) => stream.push(JSON.parse(data.toString('utf8'))));
  ws.on('close', () => {
    stream.push(null);
    stream.destroy();
  });
  stream.on('error', () => ws.terminate());
  return stream;
}

beforeAll(async () => {
  // Headless Monaco: the text model and its events need no DOM layout.
  monaco = (await import('monaco-editor/editor/editor.api.js')) as unknown as MonacoModule;
  registerCollabType();
  backend = new ShareDB({ presence: true, doNotForwardSendPresenceErrorsToClient: true });
  backend.use('submit', (ctx, next) => {
    if (refuseWith) return next(new Error(refuseWith));
    next();
  });
  http = createServer();
  wss = new WebSocketServer({ server: http });
  wss.on('connection', (ws) => {
    if (!online) return ws.terminate();
    backend.listen(jsonStream(ws) as never);
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  port = (http.address() as AddressInfo).port;
}, 240_000);

afterAll(async () => {
  for (const ws of wss?.clients ?? []) ws.terminate();
  await new Promise((r) => wss?.close(r));
  await new Promise((r) => http?.close(r));
});

const open: {
  client: CollabClient;
  share: CollabDoc;
  binding: MonacoBinding;
  model: Monaco.editor.ITextModel;
}[] = [];
afterEach(() => {
  for (const o of open.splice(0)) {
    o.binding.dispose();
    o.model.dispose();
    o.share.release();
    o.client.close();
  }
  online = true;
  refuseWith = null;
});

let docCount = 0;
async function createDoc(text: string): Promise<string> {
  const id = `file-${++docCount}.txt`;
  const doc = backend.connect().get('project', id);
  await new Promise<void>((resolve, reject) =>
    doc.create(text, 'http://sharejs.org/types/text-unicode', (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  return id;
}

async function person(
  id: string,
  name: string,
  events: ConstructorParameters<typeof MonacoBinding>[0]['events'] = {},
) {
  const client = new CollabClient({ url: async () => `ws://127.0.0.1:${port}`, WebSocket });
  const share = await client.open('project', id, { timeoutMs: 10_000 });
  const model = monaco.editor.createModel(share.doc.data, 'plaintext');
  const binding = new MonacoBinding({ model, share, identity: { name, color: '#e5484d' }, events });
  const p = { client, share, binding, model };
  open.push(p);
  return p;
}

/** Waits until `check` holds (bounded). */
async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function serverText(id: string): Promise<string> {
  const doc = backend.connect().get('project', id);
  await new Promise<void>((r, j) => doc.fetch((e) => (e ? j(e) : r())));
  return doc.data as string;
}

function type(model: Monaco.editor.ITextModel, line: number, col: number, text: string): void {
  model.pushEditOperations(
    [],
    [{ range: new monaco.Range(line, col, line, col), text }],
    () => null,
  );
}

describe('co-editing through ShareDB', () => {
  test('one event with several changes (emoji, CRLF file) reaches the other editor intact', async () => {
    const id = await createDoc('a\r\nb\r\nc');
    const alice = await person(id, 'Alice');
    const bob = await person(id, 'Bob');
    expect(alice.model.getEOL()).toBe('\r\n');
    alice.model.pushEditOperations(
      [],
      [
        { range: new monaco.Range(1, 2, 1, 2), text: 'X\nY' }, // an LF paste into a CRLF file
        { range: new monaco.Range(3, 1, 3, 2), text: '😀' },
      ],
      () => null,
    );
    const expected = 'aX\r\nY\r\nb\r\n😀';
    expect(alice.model.getValue()).toBe(expected);
    await until(() => bob.model.getValue() === expected, 'bob sees the edit');
    await alice.binding.whenAcknowledged();
    expect(await serverText(id)).toBe(expected); // CRLF stays CRLF
    expect(bob.binding.text).toBe(expected);
  });

  test('two people typing at once on emoji and tabs converge (seeded, 150 events each)', async () => {
    const id = await createDoc('start 👍🏽\n\tline two\n');
    const alice = await person(id, 'Alice');
    const bob = await person(id, 'Bob');
    let seed = 42;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const pieces = ['a', '😀', '\t', ' ', 'é', '\n', 'zz', 'ж', '👍🏽'];
    for (let i = 0; i < 150; i++) {
      for (const p of [alice, bob]) {
        const m = p.model;
        const lines = m.getLineCount();
        const line = 1 + Math.floor(rnd() * lines);
        const col = 1 + Math.floor(rnd() * (m.getLineMaxColumn(line) - 1 + 1));
        const pos = m.validatePosition({ lineNumber: line, column: col });
        if (rnd() < 0.3 && m.getValueLength() > 4) {
          const end = m.modifyPosition(pos, 1 + Math.floor(rnd() * 3));
          m.pushEditOperations(
            [],
            [{ range: monaco.Range.fromPositions(pos, end), text: '' }],
            () => null,
          );
        } else {
          const text = pieces[Math.floor(rnd() * pieces.length)]!;
          m.pushEditOperations([], [{ range: monaco.Range.fromPositions(pos), text }], () => null);
        }
      }
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all([alice.binding.whenAcknowledged(), bob.binding.whenAcknowledged()]);
    await until(() => alice.model.getValue() === bob.model.getValue(), 'both editors agree');
    const onServer = await serverText(id);
    expect(alice.model.getValue()).toBe(onServer);
    expect(alice.binding.text).toBe(onServer);
    expect(bob.binding.text).toBe(onServer);
  });

  test('remote ops are not echoed and not on my undo stack; undo removes only my edit', async () => {
    const id = await createDoc('hello');
    const alice = await person(id, 'Alice');
    const bob = await person(id, 'Bob');
    let submitted = 0;
    alice.share.doc.on('op', (_op, source) => source && submitted++);
    type(alice.model, 1, 6, ' world');
    await until(() => bob.model.getValue() === 'hello world', 'bob sees alice');
    type(bob.model, 1, 1, '>> ');
    await until(() => alice.model.getValue() === '>> hello world', 'alice sees bob');
    expect(submitted).toBe(1); // applying Bob's op did not send anything back
    expect(alice.binding.undoOwn()).toBe(true);
    expect(alice.model.getValue()).toBe('>> hello');
    await until(() => bob.model.getValue() === '>> hello', 'bob sees the undo');
    expect(alice.binding.undoOwn()).toBe(false); // Bob's ">> " is not Alice's to undo
    expect(alice.binding.redoOwn()).toBe(true);
    await until(() => bob.model.getValue() === '>> hello world', 'bob sees the redo');
  });

  test('edits made while the connection is down are kept and sent on reconnect', async () => {
    const id = await createDoc('one\n');
    const alice = await person(id, 'Alice');
    const bob = await person(id, 'Bob');
    online = false;
    for (const ws of wss.clients) ws.terminate();
    await until(() => alice.client.state !== 'open', 'alice notices');
    type(alice.model, 2, 1, 'typed offline 😀'); // never waits for the server
    expect(alice.model.getValue()).toBe('one\ntyped offline 😀');
    expect(alice.binding.pending).toBe(true);
    online = true;
    await until(
      () => bob.model.getValue() === 'one\ntyped offline 😀',
      'bob gets it after reconnect',
      20_000,
    );
    expect(await serverText(id)).toBe('one\ntyped offline 😀');
  });

  test('a refused edit tells why and hands back the text as it was typed', async () => {
    const id = await createDoc('server text');
    const refused: { reason: string; text: string }[] = [];
    const alice = await person(id, 'Alice', {
      onRefused: (reason, text) => refused.push({ reason, text }),
    });
    refuseWith = 'You are a viewer of this project';
    type(alice.model, 1, 12, ' and mine');
    await until(() => refused.length > 0, 'the refusal arrives');
    expect(refused[0]!.reason).toContain('viewer');
    expect(refused[0]!.text).toBe('server text and mine');
    // The editor is back in step with the server.
    await until(() => alice.model.getValue() === 'server text', 'rolled back');
    expect(await serverText(id)).toBe('server text');
  });

  test("each person's presence carries name and selection in code points, moved by others' edits", async () => {
    const id = await createDoc('😀😀 abc');
    const alice = await person(id, 'Alice');
    const bob = await person(id, 'Bob');
    const local = alice.share.presence.create('alice-cursor');
    await new Promise<void>((r, j) =>
      local.submit({ sel: [2, 4], name: 'Alice', color: '#e5484d' }, (e) => (e ? j(e) : r())),
    );
    await until(() => !!bob.share.presence.remotePresences['alice-cursor'], 'bob receives alice');
    expect(bob.share.presence.remotePresences['alice-cursor']).toMatchObject({
      sel: [2, 4],
      name: 'Alice',
    });
    type(bob.model, 1, 1, 'é'); // one code point before Alice's selection
    await until(() => alice.model.getValue() === 'é😀😀 abc', 'alice sees bob');
    expect(bob.share.presence.remotePresences['alice-cursor']!.sel).toEqual([3, 5]);
  });
});
