declare module '@teamwork/websocket-json-stream' {
  import { Duplex } from 'node:stream';
  /** A ws/browser WebSocket as an object-mode stream of JSON messages (what ShareDB listens on). */
  export default class WebSocketJSONStream extends Duplex {
    constructor(ws: unknown);
  }
}
