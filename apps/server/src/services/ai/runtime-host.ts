import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { AppError } from '../../common/errors.ts';
import type { AiRuntime, CommandResult } from './host.ts';

/**
 * What the AI uses of the containers service (structural, so either side can evolve): a TTY
 * in the project's container or sandbox, its logs, and start/restart. A non-interactive
 * `exec`, when the service offers one, is preferred over the TTY.
 */
export interface ContainersLike {
  openTty(
    projectId: string,
    size: { cols: number; rows: number },
  ): Promise<{ stream: Duplex; close(): void }>;
  logs(
    projectId: string,
    options: { follow: boolean; tail: number; signal?: AbortSignal },
  ): AsyncIterable<string>;
  start(
    projectId: string,
    options?: { wait?: boolean; actor?: string },
  ): Promise<{ status: string; reason?: string | null }>;
  restart?(
    projectId: string,
    options?: { wait?: boolean },
  ): Promise<{ status: string; reason?: string | null }>;
  exec?(
    projectId: string,
    command: string,
    options: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<CommandResult>;
}

const maxOutputBytes = 1024 * 1024;
/** TTY input lines are limited (canonical mode, 4096 bytes): send scripts in small pieces
 * (a multiple of 4: one escape is 4 characters). */
const chunkChars = 800;

/** The AI's view of the containers service: commands never run on the host. */
export function runtimeHost(containers: ContainersLike): AiRuntime {
  return {
    async exec(projectId, command, options) {
      if (containers.exec) return containers.exec(projectId, command, options);
      return execThroughTty(containers, projectId, command, options);
    },
    async logs(projectId, lines) {
      const out: string[] = [];
      const signal = AbortSignal.timeout(10_000);
      try {
        for await (const line of containers.logs(projectId, {
          follow: false,
          tail: lines,
          signal,
        })) {
          out.push(line);
        }
      } catch (err) {
        if (err instanceof AppError) return [`(no logs: ${err.message})`];
        if (!signal.aborted) throw err;
      }
      return out.slice(-lines);
    },
    async start(projectId, userId, options) {
      try {
        const info =
          options?.restart && containers.restart
            ? await containers.restart(projectId, { wait: true })
            : await containers.start(projectId, { wait: true, actor: userId });
        return {
          running: info.status === 'running',
          ...(info.reason ? { reason: info.reason } : {}),
        };
      } catch (err) {
        if (err instanceof AppError) return { running: false, reason: err.message };
        throw err;
      }
    },
  };
}

/**
 * Runs a command through a shell with a TTY in the project's container: the script is sent in
 * pieces of octal escapes (no quoting or line-length problems), run with its output
 * framed by random markers, and its exit code read from the closing marker.
 */
async function execThroughTty(
  containers: ContainersLike,
  projectId: string,
  command: string,
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<CommandResult> {
  const tty = await openTtyPatiently(containers, projectId, options.signal);
  const nonce = randomBytes(8).toString('hex');
  const begin = `__VF_BEGIN_${nonce}__`;
  const end = `__VF_END_${nonce}__`;
  // Every byte as a printf octal escape: printf is a builtin of every shell, base64 is not in
  // every image.
  const encoded = [...Buffer.from(command, 'utf8')]
    .map((b) => `\\${b.toString(8).padStart(3, '0')}`)
    .join('');
  return new Promise<CommandResult>((resolve, reject) => {
    let raw = '';
    let settled = false;
    const finish = (result: CommandResult | Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      tty.stream.removeAllListeners('data');
      try {
        tty.stream.write('\x03exit\n');
      } catch {
        // already closed
      }
      tty.close();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const output = () => {
      const text = stripTerminal(raw);
      const start = text.indexOf(`${begin}\n`);
      if (start === -1) return '';
      const body = text.slice(start + begin.length + 1);
      const stop = body.indexOf(end);
      return stop === -1 ? body : body.slice(0, stop);
    };
    const timer = setTimeout(
      () => finish({ exitCode: null, output: output(), timedOut: true }),
      options.timeoutMs,
    );
    const onAbort = () => finish(new Error('aborted'));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    tty.stream.on('data', (chunk: Buffer) => {
      if (raw.length < maxOutputBytes * 2) raw += chunk.toString('utf8');
      const text = stripTerminal(raw);
      const match = new RegExp(`${end}(\\d+)__`).exec(text);
      if (match) finish({ exitCode: Number(match[1]), output: output(), timedOut: false });
    });
    tty.stream.on('close', () => finish({ exitCode: null, output: output(), timedOut: false }));
    tty.stream.on('error', (err: Error) => finish(err));
    // No `stty`: changing the terminal's mode may flush input already typed.
    // The script is built in a shell variable (no file: /tmp may not be writable by the
    // project's user); each piece ends in x so command substitution keeps trailing newlines.
    const lines = [
      "__vf_c=''",
      ...chunks(encoded, chunkChars).map(
        (c) => `__vf_c="$__vf_c$(printf '${c}x')"; __vf_c="\${__vf_c%x}"`,
      ),
      // The markers are printed with a split string so the echoed input never contains them.
      `printf '%s\\n' '__VF_BEGIN_''${nonce}__'; (cd /app 2>/dev/null; sh -c "$__vf_c" </dev/null 2>&1); ` +
        `printf '\\n%s%s__\\n' '__VF_END_''${nonce}__' "$?"`,
    ];
    // Typed once the shell has shown its first output (its prompt): it is reading by then.
    const send = () => {
      if (!settled) tty.stream.write(lines.join('\n') + '\n');
    };
    const ready = setTimeout(send, 2_000);
    tty.stream.once('data', () => {
      clearTimeout(ready);
      setTimeout(send, 50);
    });
  });
}

/**
 * A container in a crash-restart loop (e.g. a dev server that fails on start, the very thing
 * being debugged) refuses exec for a moment at a time: try again for up to 10 s.
 */
async function openTtyPatiently(
  containers: ContainersLike,
  projectId: string,
  signal: AbortSignal | undefined,
): Promise<{ stream: Duplex; close(): void }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await containers.openTty(projectId, { cols: 500, rows: 50 });
    } catch (err) {
      const restarting = err instanceof Error && /restarting|is not running/i.test(err.message);
      if (!restarting || Date.now() > deadline || signal?.aborted) {
        if (err instanceof AppError) throw err;
        throw new AppError(
          'conflict',
          `The project's container cannot run commands now: ${(err as Error).message}`,
        );
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

function chunks(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out.length ? out : [''];
}

/** Output without carriage returns and terminal escape sequences. */
function stripTerminal(text: string): string {
  /* eslint-disable no-control-regex -- terminal escape sequences are control characters */
  return text
    .replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '')
    .replace(/\x1b\][^\x07]*(\x07|\x1b\\)/g, '')
    .replace(/\r\n?/g, '\n');
  /* eslint-enable no-control-regex */
}
