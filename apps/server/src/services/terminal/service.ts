import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Logger } from '../../common/logger.ts';
import type { UpgradeHandler } from '../../common/upgrade.ts';
import type { AuthService } from '../auth/index.ts';
import type { TtySession } from '../containers/index.ts';
import { roleAtLeast, type ProjectsService } from '../projects/index.ts';
import { requireIdeOrigin } from '../realtime/index.ts';

const PATH = /^\/api\/projects\/([^/]+)\/terminal\/?$/;
/** Pause the shell's output while this much is queued for a slow client. */
const HIGH_WATER_BYTES = 1 << 20;
/** How often an open terminal re-checks that its user may still use it. */
const RECHECK_MS = 30_000;

/** Close codes the IDE can act on. */
export const TERMINAL_CLOSE = {
  exited: 1000,
  revoked: 4401,
  forbidden: 4403,
  shutdown: 1001,
} as const;

export interface TerminalServiceDeps {
  auth: AuthService;
  projects: ProjectsService;
  /** Opens a TTY in the project's running container. */
  openTty: (projectId: string, size: { cols: number; rows: number }) => Promise<TtySession>;
  /** The IDE's origin: a browser's Origin header must equal it. */
  publicUrl: string;
  log: Logger;
}

interface OpenTerminal {
  ws: WebSocket;
  projectId: string;
  userId: string;
  sessionId: string;
  tty: TtySession;
}

/**
 * `WS /api/projects/:id/terminal`: a real TTY in the project's container for editors. Frames
 * from the client are keystrokes (text or binary) or `{"type":"resize","cols","rows"}`; frames
 * to the client are the TTY's bytes (binary). The socket closes when the shell exits, when the
 * session is revoked, or when the user loses the editor role (at once, on every instance).
 */
export class TerminalService {
  readonly #d: TerminalServiceDeps;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 1 << 20 });
  readonly #open = new Set<OpenTerminal>();
  readonly #origin: string;
  readonly #unsubscribe: () => void;
  readonly #stopMembership: () => void;

  constructor(deps: TerminalServiceDeps) {
    this.#d = deps;
    this.#origin = new URL(deps.publicUrl).origin;
    this.#unsubscribe = deps.auth.onSessionsRevoked((ids) => {
      for (const t of this.#open) {
        if (ids.includes(t.sessionId)) t.ws.close(TERMINAL_CLOSE.revoked, 'session revoked');
      }
    });
    // Viewers may not use terminals: a removal or a downgrade below editor ends them now.
    this.#stopMembership = deps.projects.onMembershipChanged((change) => {
      if (change.role !== null && roleAtLeast(change.role, 'editor')) return;
      for (const t of this.#open) {
        if (t.projectId === change.projectId && t.userId === change.userId) {
          t.ws.close(TERMINAL_CLOSE.forbidden, 'access removed');
        }
      }
    });
  }

  /** How many terminals are open on this instance. */
  get openCount(): number {
    return this.#open.size;
  }

  /** The upgrade handler to register with the server's UpgradeRouter. */
  upgradeHandler(): UpgradeHandler {
    return async (req, socket, head) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const match = PATH.exec(url.pathname);
      if (!match) return false;
      await this.#accept(req, socket, head, decodeURIComponent(match[1]!), url);
      return true;
    };
  }

  /** Closes every terminal (server shutdown). */
  close(): void {
    this.#unsubscribe();
    this.#stopMembership();
    for (const t of this.#open) t.ws.close(TERMINAL_CLOSE.shutdown, 'server shutting down');
    this.#wss.close();
  }

  async #accept(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    projectId: string,
    url: URL,
  ): Promise<void> {
    requireIdeOrigin(req, this.#origin);
    const header = req.headers.authorization;
    const bearer = header ? /^Bearer\s+(\S+)$/i.exec(header)?.[1] : url.searchParams.get('token');
    const caller = await this.#d.auth.authenticate(bearer ?? undefined);
    await this.#d.projects.requireRole(projectId, caller.userId, 'editor');
    const cols = clampSize(url.searchParams.get('cols'), 80, 500);
    const rows = clampSize(url.searchParams.get('rows'), 24, 200);
    const tty = await this.#d.openTty(projectId, { cols, rows });
    if (socket.destroyed) {
      tty.close();
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) =>
      this.#attach({ ws, projectId, userId: caller.userId, sessionId: caller.sessionId, tty }),
    );
  }

  #attach(terminal: OpenTerminal): void {
    const { ws, tty, projectId, userId } = terminal;
    this.#open.add(terminal);
    this.#d.log.info({ projectId, userId }, 'terminal opened');
    let closed = false;
    const finish = () => {
      if (closed) return;
      closed = true;
      clearInterval(recheck);
      this.#open.delete(terminal);
      tty.close();
      this.#d.log.info({ projectId, userId }, 'terminal closed');
    };

    tty.stream.on('data', (chunk: Buffer) => {
      if (ws.readyState !== ws.OPEN) return;
      ws.send(chunk, { binary: true });
      if (ws.bufferedAmount > HIGH_WATER_BYTES) {
        tty.stream.pause();
        const resume = setInterval(() => {
          if (ws.readyState !== ws.OPEN || ws.bufferedAmount < HIGH_WATER_BYTES / 4) {
            clearInterval(resume);
            tty.stream.resume();
          }
        }, 20);
      }
    });
    tty.stream.once('end', () => ws.close(TERMINAL_CLOSE.exited, 'shell exited'));
    tty.stream.once('close', () => ws.close(TERMINAL_CLOSE.exited, 'shell exited'));
    tty.stream.on('error', () => ws.close(TERMINAL_CLOSE.exited, 'shell exited'));

    ws.on('message', (data: RawData, isBinary: boolean) => {
      const bytes = toBuffer(data);
      if (!isBinary) {
        const resize = parseResize(bytes);
        if (resize) {
          void tty.resize(resize.cols, resize.rows);
          return;
        }
      }
      if (tty.stream.writable) tty.stream.write(bytes);
    });
    ws.on('close', finish);
    ws.on('error', finish);

    const check = () => {
      this.#d.projects.requireRole(projectId, userId, 'editor').catch(() => {
        ws.close(TERMINAL_CLOSE.forbidden, 'access removed');
      });
    };
    // Once now: a change announced while the TTY was opening found no terminal to close.
    check();
    const recheck = setInterval(check, RECHECK_MS);
    recheck.unref();
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data as ArrayBuffer);
}

/** `{"type":"resize","cols":n,"rows":n}` with sane numbers, else undefined (plain input). */
function parseResize(bytes: Buffer): { cols: number; rows: number } | undefined {
  if (bytes.length > 200 || bytes[0] !== 0x7b) return undefined; // '{'
  try {
    const msg = JSON.parse(bytes.toString('utf8')) as {
      type?: unknown;
      cols?: unknown;
      rows?: unknown;
    };
    if (msg.type !== 'resize') return undefined;
    const cols = Number(msg.cols);
    const rows = Number(msg.rows);
    if (!Number.isInteger(cols) || !Number.isInteger(rows)) return undefined;
    if (cols < 1 || cols > 500 || rows < 1 || rows > 200) return undefined;
    return { cols, rows };
  } catch {
    return undefined;
  }
}

function clampSize(value: string | null, fallback: number, max: number): number {
  const n = Number(value);
  return Number.isInteger(n) && n >= 1 && n <= max ? n : fallback;
}
