/**
 * The agent socket's messages (JSON text frames), both ways. The same file lives in
 * apps/agent/src/protocol.ts and apps/server/src/services/agent/protocol.ts (the server's
 * agent test checks they are identical): an app never imports another app's files.
 */

/** Bumped when a message changes shape. */
export const AGENT_VERSION = '1';

/** Run one command, at most once per id, before `expiresAt` (epoch ms). */
export interface ExecRequest {
  type: 'exec';
  id: string;
  /** Run through `/bin/sh -c` unless `args` is given (then it is the executable). */
  command: string;
  args?: string[];
  cwd?: string;
  timeoutMs: number;
  /** Per stream; what goes past it is dropped and the result says `truncated`. */
  maxOutputBytes: number;
  expiresAt: number;
}

/** Install and start a release whose archive (`deploy-chunk`s) arrived under the same id. */
export interface DeployCommit {
  type: 'deploy-commit';
  id: string;
  release: string;
  /** sha256 (hex) of the whole archive (tar.gz). */
  sha256: string;
  install?: string;
  installTimeoutMs: number;
  run: string;
  port: number;
  env: Record<string, string>;
  healthTimeoutMs: number;
}

/** What the server sends. */
export type ServerMessage =
  | { type: 'welcome'; machine: string; credential?: string }
  | ExecRequest
  | { type: 'cancel'; id: string }
  | { type: 'deploy-chunk'; id: string; data: string }
  | DeployCommit
  | { type: 'pty-open'; id: string; cols: number; rows: number }
  | { type: 'pty-input'; id: string; data: string }
  | { type: 'pty-close'; id: string };

/** What the agent sends. */
export type AgentMessage =
  | {
      type: 'hello';
      version: string;
      hostname: string;
      running: string[];
      app: { current?: string; previous?: string; port?: number };
    }
  | { type: 'started'; id: string; pid: number }
  | { type: 'output'; id: string; stream: 'stdout' | 'stderr'; data: string }
  | {
      type: 'exit';
      id: string;
      exitCode: number | null;
      signal: string | null;
      outcome: 'exited' | 'canceled' | 'timed_out';
      truncated: boolean;
      durationMs: number;
      error?: string;
    }
  | { type: 'rejected'; id: string; reason: 'replay' | 'expired'; message: string }
  | { type: 'deploy-progress'; id: string; stage: string; message: string }
  | {
      type: 'deploy-result';
      id: string;
      ok: boolean;
      release: string;
      rolledBack: boolean;
      error?: string;
    }
  | { type: 'pty-data'; id: string; data: string }
  | { type: 'pty-exit'; id: string; code: number | null };
