import ShareDBClient from 'sharedb/lib/client/index.js';
import type { Connection, Doc } from 'sharedb/lib/client/index.js';
import { WebSocket } from 'ws';
import { collabTextType } from '../src/services/collab/type.ts';

ShareDBClient.types.register(collabTextType as never);

/** A stock ShareDB client connected to `WS /api/collab` over a real socket. */
export interface CollabClient {
  connection: Connection;
  ws: WebSocket;
  /** The instance that took the current socket's upgrade (HAProxy's `X-Served-By`), if any. */
  servedBy: string | undefined;
  /** Resolves when the socket closes, with its code. */
  closed: Promise<{ code: number; reason: string }>;
  /** Errors its documents emitted (a refused resubscribe, a hard rollback), newest last. */
  errors: string[];
  doc(projectId: string, path: string): Doc<string>;
  /** Opens a new socket to `url` (a reconnect, maybe to another instance) and binds to it. */
  reconnect(url?: string): Promise<void>;
  close(): void;
}

/** `ws://host/api/collab?token=…` of a server's base URL. */
export function collabUrl(base: string, token: string, project?: string): string {
  const url = `${base.replace(/^http/, 'ws')}/api/collab?token=${encodeURIComponent(token)}`;
  return project ? `${url}&project=${project}` : url;
}

const servedBy = new WeakMap<WebSocket, string>();

function open(url: string, headers: Record<string, string>): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('upgrade', (res) => {
      const by = res.headers['x-served-by'];
      if (by) servedBy.set(ws, String(by));
    });
    ws.once('unexpected-response', (_req, res) => {
      reject(
        Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode }),
      );
      ws.terminate();
    });
    ws.once('error', reject);
    ws.once('open', () => resolve(ws));
  });
}

/** Connects the stock client; rejects with `{status}` when the upgrade is refused. */
export async function connectCollab(
  url: string,
  headers: Record<string, string> = {},
): Promise<CollabClient> {
  let ws = await open(url, headers);
  let currentUrl = url;
  ws.on('error', () => undefined);
  const connection = new ShareDBClient.Connection(ws as never);
  let closed = closedOf(ws);
  const errors: string[] = [];
  const watched = new WeakSet<object>();
  const client: CollabClient = {
    connection,
    get ws() {
      return ws;
    },
    get servedBy() {
      return servedBy.get(ws);
    },
    get closed() {
      return closed;
    },
    errors,
    doc: (projectId, path) => {
      const doc = connection.get(projectId, path) as Doc<string>;
      if (!watched.has(doc)) {
        watched.add(doc);
        doc.on('error', (err: unknown) =>
          errors.push(`${path}: ${(err as Error)?.message ?? String(err)}`),
        );
      }
      return doc;
    },
    async reconnect(next?: string) {
      currentUrl = next ?? currentUrl;
      if (ws.readyState !== WebSocket.CLOSED) {
        // The client must have seen its old socket close before it binds to a new one.
        const gone = closed;
        ws.terminate();
        await gone;
      }
      ws = await open(currentUrl, headers);
      ws.on('error', () => undefined);
      closed = closedOf(ws);
      (connection as unknown as { bindToSocket(s: unknown): void }).bindToSocket(ws);
    },
    close() {
      connection.close();
      ws.terminate();
    },
  };
  return client;
}

function closedOf(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((done) =>
    ws.once('close', (code, reason) => done({ code, reason: reason.toString() })),
  );
}

/** Promisified doc calls. */
export const docs = {
  subscribe: (doc: Doc) =>
    new Promise<void>((resolve, reject) =>
      doc.subscribe((err?: unknown) => (err ? reject(err) : resolve())),
    ),
  fetch: (doc: Doc) =>
    new Promise<void>((resolve, reject) =>
      doc.fetch((err?: unknown) => (err ? reject(err) : resolve())),
    ),
  submit: (doc: Doc, op: unknown) =>
    new Promise<void>((resolve, reject) =>
      doc.submitOp(op as never, {}, (err?: unknown) => (err ? reject(err) : resolve())),
    ),
  /** Resolves once no op of this client is in flight or pending. */
  settled: (doc: Doc) =>
    new Promise<void>((resolve) =>
      doc.hasWritePending() ? doc.whenNothingPending(() => resolve()) : resolve(),
    ),
};

export { until } from './wait.ts';
