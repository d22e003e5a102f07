import { WebSocket } from 'ws';

/** A project WebSocket as a client holds it: every event received, how it closed. */
export class ProjectSocket {
  readonly events: { type: string; data?: unknown }[] = [];
  closeCode: number | undefined;
  /** The HAProxy server name that took the upgrade (`X-Served-By`), when through HAProxy. */
  servedBy: string | undefined;
  readonly #ws: WebSocket;
  readonly #opened: Promise<void>;
  readonly #closed: Promise<number>;

  constructor(base: string, projectId: string, token: string) {
    const url = `${base.replace(/^http/, 'ws')}/api/projects/${projectId}/ws?token=${encodeURIComponent(token)}`;
    this.#ws = new WebSocket(url);
    this.#ws.on('upgrade', (res) => {
      const header = res.headers['x-served-by'];
      this.servedBy = Array.isArray(header) ? header[0] : header;
    });
    this.#ws.on('message', (raw) => {
      try {
        this.events.push(JSON.parse(raw.toString()) as { type: string; data?: unknown });
      } catch {
        // not an event
      }
    });
    this.#opened = new Promise((resolve, reject) => {
      this.#ws.once('open', () => resolve());
      this.#ws.once('unexpected-response', (_req, res) =>
        reject(new Error(`upgrade refused: ${res.statusCode}`)),
      );
      this.#ws.once('error', reject);
    });
    this.#closed = new Promise((resolve) =>
      this.#ws.once('close', (code) => {
        this.closeCode = code;
        resolve(code);
      }),
    );
    this.#opened.catch(() => undefined);
  }

  /** Resolves once open; rejects when the upgrade failed or took longer than `ms`. */
  opened(ms = 15_000): Promise<void> {
    return withTimeout(this.#opened, ms, 'socket did not open');
  }

  /** Resolves with the close code; rejects after `ms`. */
  closed(ms = 10_000): Promise<number> {
    return withTimeout(this.#closed, ms, 'socket did not close');
  }

  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  /** The first event (from now on or already received) that matches; rejects after `ms`. */
  async waitFor(
    match: (e: { type: string; data?: unknown }) => boolean,
    ms = 10_000,
  ): Promise<{ type: string; data?: unknown }> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const found = this.events.find(match);
      if (found) return found;
      if (this.closeCode !== undefined) throw new Error(`socket closed (${this.closeCode})`);
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no matching event in ${ms} ms: ${JSON.stringify(this.events.slice(-5))}`);
  }

  close(): void {
    this.#ws.terminate();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${message} in ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
