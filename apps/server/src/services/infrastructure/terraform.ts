import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { startSpan } from '../../common/telemetry.ts';

/** One line of a Terraform run: its `-json` event, or a plain line wrapped as one. */
export type TerraformEvent = Record<string, unknown> & { type: string };

/** How a Terraform command ended. */
export interface TerraformResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The last lines it wrote to stderr (errors of commands without -json). */
  stderr: string;
}

/** A running Terraform command: its outcome and a cancel that takes its process group down. */
export interface TerraformProcess {
  done: Promise<TerraformResult>;
  /** SIGINT to the process group (Terraform stops gracefully), SIGKILL after `graceMs`. */
  cancel(graceMs: number): void;
}

function parseLine(line: string): TerraformEvent {
  try {
    const parsed = JSON.parse(line) as unknown;
    if (
      parsed &&
      typeof parsed === 'object' &&
      typeof (parsed as TerraformEvent).type === 'string'
    ) {
      return parsed as TerraformEvent;
    }
  } catch {
    // a plain line
  }
  return { type: 'log', '@level': 'info', '@message': line };
}

/**
 * Runs `terraform <args>` in its own process group (so a cancel reaches the providers it
 * started too), with exactly `env` (no inherited secrets), calling `onEvent` per stdout line.
 */
export function runTerraform(
  bin: string,
  args: string[],
  options: {
    cwd: string;
    env: Record<string, string>;
    onEvent(event: TerraformEvent): void;
    /** Takes stdout lines as they are instead (`output -json`). */
    onLine?(line: string): void;
  },
): TerraformProcess {
  // The subcommand only: other arguments may carry variable values.
  const span = startSpan(`terraform ${args[0] ?? ''}`.trim(), {
    'process.executable.name': 'terraform',
  });
  const child = spawn(bin, args, {
    cwd: options.cwd,
    env: options.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stderr: string[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (options.onLine) options.onLine(line);
    else if (line.trim()) options.onEvent(parseLine(line));
  });
  createInterface({ input: child.stderr }).on('line', (line) => {
    stderr.push(line);
    if (stderr.length > 50) stderr.shift();
  });
  let killTimer: NodeJS.Timeout | undefined;
  const done = new Promise<TerraformResult>((resolve) => {
    child.on('error', (error) => {
      stderr.push(error.message);
      resolve({ exitCode: null, signal: null, stderr: stderr.join('\n') });
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(killTimer);
      resolve({ exitCode, signal, stderr: stderr.join('\n') });
    });
  });
  void done.then((r) =>
    span.end(
      r.exitCode === 0 ? undefined : new Error(`terraform exited ${r.exitCode ?? r.signal}`),
      { 'process.exit.code': r.exitCode ?? -1 },
    ),
  );
  const signalGroup = (signal: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  return {
    done,
    cancel(graceMs) {
      signalGroup('SIGINT');
      killTimer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
      killTimer.unref();
    },
  };
}
