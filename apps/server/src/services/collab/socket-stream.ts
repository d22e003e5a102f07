import { EventEmitter } from 'node:events';
import { WebSocket, type RawData } from 'ws';

/** A client that leaves this much unread is dropped rather than buffered without end. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

/**
 * One collab WebSocket as ShareDB's Agent uses a stream: `write(message)` sends it as JSON,
 * `end()` closes the socket, and each JSON message received is a `data` event; `close` when the
 * socket closes. That is all the Agent touches of the Duplex it is documented to take
 * (sharedb/lib/agent.js: `write`, `end`, `isServer`, `data`/`end`/`close`).
 *
 * It stands in for `@teamwork/websocket-json-stream`, which wraps the socket in a full Duplex:
 * a Readable and a Writable state and listener wrappers per socket, and one write in flight at
 * a time (the next waits for the previous send's callback). Here a socket costs one small
 * object, its listeners are shared by every socket (no closure per socket), and each message
 * is handed to `ws` at once, in order (`ws` queues and counts what is unsent:
 * `ws.bufferedAmount`). It also keeps the heartbeat's flag: `alive`, set by every pong.
 *
 * A message that is not a JSON object closes the socket with 1007 (invalid payload).
 */
export class SocketStream extends EventEmitter {
  /** A client's socket, not a server-side one (ShareDB counts remote agents by it). */
  readonly isServer = false;
  readonly ws: WebSocket;
  /** Answered the last heartbeat ping (set by every pong). */
  alive = true;
  readonly #onClosed: ((stream: SocketStream) => void) | undefined;
  #closed = false;

  /** @param onClosed called once the socket is closed (one function for every socket). */
  constructor(ws: WebSocket, onClosed?: (stream: SocketStream) => void) {
    super();
    this.ws = ws;
    this.#onClosed = onClosed;
    (ws as Linked)[STREAM] = this;
    ws.on('message', onMessage);
    ws.on('close', onClose);
    ws.on('pong', onPong);
  }

  /**
   * Sends a message (nothing once the socket is closing). A client that does not read (16 MiB
   * unsent: e.g. fetching a large document over and over) is dropped.
   */
  write(message: unknown): boolean {
    const ws = this.ws;
    if (ws.readyState !== WebSocket.OPEN) return false;
    if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      ws.terminate();
      return false;
    }
    ws.send(JSON.stringify(message));
    return true;
  }

  /** Closes the socket (ShareDB's Agent.close); `close` follows once it is closed. */
  end(): this {
    this.ws.close(1000, 'stream end');
    return this;
  }

  /** Emits `close` once, whatever closed the socket (the socket's `close` listener). */
  closed(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.emit('close');
    this.#onClosed?.(this);
  }
}

const STREAM = Symbol('vaporform.collabStream');
type Linked = WebSocket & { [STREAM]?: SocketStream };

function onMessage(this: Linked, data: RawData): void {
  const stream = this[STREAM];
  if (!stream) return;
  let message: unknown;
  try {
    message = JSON.parse(String(data));
  } catch {
    message = undefined;
  }
  if (message === null || typeof message !== 'object') {
    this.close(1007, 'messages are JSON objects');
    return;
  }
  stream.emit('data', message);
}

function onClose(this: Linked): void {
  this[STREAM]?.closed();
}

function onPong(this: Linked): void {
  const stream = this[STREAM];
  if (stream) stream.alive = true;
}
