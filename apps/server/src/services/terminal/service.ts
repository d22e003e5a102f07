import { socketCloseCodes, terminalControlFrame } from '@vaporform/sdk';
import type { RawData, WebSocket } from 'ws';
import type { Logger } from '../../common/logger.ts';
import type { AuthService } from '../auth/index.ts';
import type { TtySession } from '../containers/index.ts';
import { roleAtLeast, type ProjectsService } from '../projects/index.ts';

/** The largest frame a client may send (a big paste). */
const MAX_FRAME_BYTES = 1 << 20;
/** Pause the shell's output while this much is queued for a slow client. */
const HIGH_WATER_BYTES = 1 << 20;
/** How often an open terminal re-checks that its user may still use it. */
const RECHECK_MS = 30_000;

/** Close codes the IDE can act on. */
export const TERMINAL_CLOSE = {
  exited: socketCloseCodes.exited,
  revoked: socketCloseCodes.revoked,
  forbidden: socketCloseCodes.forbidden,
  shutdown: socketCloseCodes.shutdown,
} as const;

export interface TerminalServiceDeps {
  auth: AuthService;
  projects: ProjectsService;
  /** Opens a TTY in the project's running container. */
  openTty: (projectId: string, size: { cols: number; rows: number }) => Promise<TtySession>;
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
 * The TTYs of `WS /api/projects/:id/terminal` (the route is routes.ts): a real TTY in the
 * project's container for editors. Frames from the client are keystrokes (text or binary) or
 * the contract's control frame `{"type":"resize","cols","rows"}`; frames to the client are the
 * TTY's bytes (binary). The socket closes when the shell exits, when the session is revoked, or
 * when the user loses the editor role (at once, on every instance).
 */
export class TerminalService {
  readonly #d: TerminalServiceDeps;
  readonly #open = new Set<OpenTerminal>();
  readonly #unsubscribe: () => void;
  readonly #stopMembership: () => void;

  constructor(deps: TerminalServiceDeps) {
    this.#d = deps;
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

  /**
   * Opens a TTY for a caller the route has checked (editor); call `open` with the socket once
   * the handshake is done, or `abandon` when it never opens (the TTY is closed).
   * @throws AppError conflict when the project is not running.
   */
  async prepare(
    caller: { projectId: string; userId: string; sessionId: string },
    size: { cols?: number; rows?: number },
  ): Promise<{ open(ws: WebSocket): void; abandon(): void }> {
    const cols = clampSize(size.cols, 80, 500);
    const rows = clampSize(size.rows, 24, 200);
    const tty = await this.#d.openTty(caller.projectId, { cols, rows });
    let settled = false;
    return {
      open: (ws) => {
        if (settled) return;
        settled = true;
        this.#attach({ ws, ...caller, tty });
      },
      abandon: () => {
        if (settled) return;
        settled = true;
        tty.close();
      },
    };
  }

  /** Closes every terminal (server shutdown). */
  close(): void {
    this.#unsubscribe();
    this.#stopMembership();
    for (const t of this.#open) t.ws.close(TERMINAL_CLOSE.shutdown, 'server shutting down');
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
      if (bytes.length > MAX_FRAME_BYTES) {
        ws.close(1009, 'frame too big');
        return;
      }
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

/** The contract's resize frame with sane numbers, else undefined (plain input). */
function parseResize(bytes: Buffer): { cols: number; rows: number } | undefined {
  if (bytes.length > 200 || bytes[0] !== 0x7b) return undefined; // '{'
  try {
    const frame = terminalControlFrame.safeParse(JSON.parse(bytes.toString('utf8')));
    return frame.success ? { cols: frame.data.cols, rows: frame.data.rows } : undefined;
  } catch {
    return undefined;
  }
}

function clampSize(value: number | undefined, fallback: number, max: number): number {
  return value !== undefined && Number.isInteger(value) && value >= 1 && value <= max
    ? value
    : fallback;
}
