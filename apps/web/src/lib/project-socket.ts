import { parseProjectEvent, socketCloseCodes, type ProjectEvent } from '@vaporform/sdk';
import type { ApiConnection } from './client.ts';

export type { ProjectEvent };

/** Connection state shown in the status bar. */
export type SocketState = 'connecting' | 'open' | 'closed';

/**
 * Close codes after which reconnecting cannot help: the session ended (4401), access is gone
 * (4403) or the caller is no longer a member (4404).
 */
const FINAL_CODES = new Set<number>([
  socketCloseCodes.revoked,
  socketCloseCodes.forbidden,
  socketCloseCodes.removed,
]);

/** The WebSocket URL for an API path on the IDE's own origin (or the API's base URL). */
export function socketUrl(api: ApiConnection, path: string, token: string): string {
  const base = api.baseUrl || window.location.origin;
  const url = new URL(path, base);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.searchParams.set('token', token);
  return url.toString();
}

/**
 * The project WebSocket (`/api/projects/:id/ws`), reconnecting with backoff (bounded at 10 s)
 * and a fresh access token each time. Every message is parsed with the contract's union
 * (`projectEvent` of @vaporform/sdk): listeners get typed events; a message outside it (a newer
 * server's event, a bad shape) is logged and ignored. A close that ends access (removed from
 * the project, session ended) stops it and goes to the `onEnd` listeners.
 */
export class ProjectSocket {
  readonly #api: ApiConnection;
  readonly #projectId: string;
  readonly #listeners = new Set<(e: ProjectEvent) => void>();
  readonly #stateListeners = new Set<(s: SocketState) => void>();
  readonly #endListeners = new Set<(code: number, reason: string) => void>();
  #ws: WebSocket | undefined;
  #state: SocketState = 'closed';
  #attempt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(api: ApiConnection, projectId: string) {
    this.#api = api;
    this.#projectId = projectId;
  }

  get state(): SocketState {
    return this.#state;
  }

  /** Opens the socket (and keeps it open until close()). */
  start(): void {
    this.#stopped = false;
    void this.#connect();
  }

  /** Closes for good. */
  close(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#ws?.close();
    this.#setState('closed');
  }

  /** Adds an event listener; returns an unsubscribe. */
  on(listener: (e: ProjectEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Called once access ends (close code 4401, 4403 or 4404); returns an unsubscribe. */
  onEnd(listener: (code: number, reason: string) => void): () => void {
    this.#endListeners.add(listener);
    return () => this.#endListeners.delete(listener);
  }

  /** Adds a connection-state listener; returns an unsubscribe. */
  onState(listener: (s: SocketState) => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    this.#setState('connecting');
    const token = await this.#api.accessToken().catch(() => null);
    if (this.#stopped) return;
    if (!token) {
      this.#setState('closed');
      return;
    }
    const ws = new WebSocket(socketUrl(this.#api, `/api/projects/${this.#projectId}/ws`, token));
    this.#ws = ws;
    ws.onopen = () => {
      this.#attempt = 0;
      this.#setState('open');
    };
    ws.onmessage = (m) => {
      if (typeof m.data !== 'string') return;
      let raw: unknown;
      try {
        raw = JSON.parse(m.data);
      } catch {
        return;
      }
      const parsed = parseProjectEvent(raw);
      if (!parsed.ok) {
        console.warn('project socket: ignored a message outside the contract', parsed.error, raw);
        return;
      }
      for (const l of this.#listeners) l(parsed.event);
    };
    ws.onclose = (e) => {
      if (this.#ws !== ws) return;
      this.#setState('closed');
      if (this.#stopped) return;
      if (FINAL_CODES.has(e.code)) {
        this.#stopped = true;
        for (const l of this.#endListeners) l(e.code, e.reason);
        return;
      }
      const wait = Math.min(10_000, 500 * 2 ** this.#attempt++);
      this.#timer = setTimeout(() => void this.#connect(), wait);
    };
    ws.onerror = () => ws.close();
  }

  #setState(s: SocketState): void {
    if (this.#state === s) return;
    this.#state = s;
    for (const l of this.#stateListeners) l(s);
  }
}
