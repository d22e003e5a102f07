/**
 * The machine agent's socket (`WS /api/agent`): every message both ways, as JSON text frames.
 * One definition for the server (services/agent) and the agent (apps/agent, which bundles it
 * with zod into its single file); each side parses what it receives with these schemas and
 * drops what does not fit.
 */
import { z } from 'zod';

/** Bumped when a message changes shape. */
export const AGENT_VERSION = '1';

/** Run one command, at most once per id, before `expiresAt` (epoch ms). */
export const execRequest = z.object({
  type: z.literal('exec'),
  id: z.string(),
  /** Run through `/bin/sh -c` unless `args` is given (then it is the executable). */
  command: z.string(),
  args: z.array(z.string()).optional(),
  cwd: z.string().optional(),
  timeoutMs: z.number(),
  /** Per stream; what goes past it is dropped and the result says `truncated`. */
  maxOutputBytes: z.number(),
  expiresAt: z.number(),
});
export type ExecRequest = z.infer<typeof execRequest>;

/** Install and start a release whose archive (`deploy-chunk`s) arrived under the same id. */
export const deployCommit = z.object({
  type: z.literal('deploy-commit'),
  id: z.string(),
  release: z.string(),
  /** sha256 (hex) of the whole archive (tar.gz). */
  sha256: z.string(),
  install: z.string().optional(),
  installTimeoutMs: z.number(),
  run: z.string(),
  port: z.number(),
  env: z.record(z.string(), z.string()),
  healthTimeoutMs: z.number(),
});
export type DeployCommit = z.infer<typeof deployCommit>;

/** What the server sends. */
export const serverMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('welcome'), machine: z.string(), credential: z.string().optional() }),
  execRequest,
  z.object({ type: z.literal('cancel'), id: z.string() }),
  z.object({ type: z.literal('deploy-chunk'), id: z.string(), data: z.string() }),
  deployCommit,
  z.object({ type: z.literal('pty-open'), id: z.string(), cols: z.number(), rows: z.number() }),
  z.object({ type: z.literal('pty-input'), id: z.string(), data: z.string() }),
  z.object({ type: z.literal('pty-resize'), id: z.string(), cols: z.number(), rows: z.number() }),
  z.object({ type: z.literal('pty-close'), id: z.string() }),
]);
export type ServerMessage = z.infer<typeof serverMessage>;

/** The deployed app on a machine, as its agent last saw it. */
export const agentAppState = z.object({
  current: z.string().optional(),
  previous: z.string().optional(),
  port: z.number().optional(),
});

/** What the agent sends. */
export const agentMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('hello'),
    version: z.string(),
    hostname: z.string(),
    running: z.array(z.string()),
    app: agentAppState,
  }),
  z.object({ type: z.literal('started'), id: z.string(), pid: z.number() }),
  z.object({
    type: z.literal('output'),
    id: z.string(),
    stream: z.enum(['stdout', 'stderr']),
    data: z.string(),
  }),
  z.object({
    type: z.literal('exit'),
    id: z.string(),
    exitCode: z.number().nullable(),
    signal: z.string().nullable(),
    outcome: z.enum(['exited', 'canceled', 'timed_out']),
    truncated: z.boolean(),
    durationMs: z.number(),
    error: z.string().optional(),
  }),
  z.object({
    type: z.literal('rejected'),
    id: z.string(),
    reason: z.enum(['replay', 'expired']),
    message: z.string(),
  }),
  z.object({
    type: z.literal('deploy-progress'),
    id: z.string(),
    stage: z.string(),
    message: z.string(),
  }),
  z.object({
    type: z.literal('deploy-result'),
    id: z.string(),
    ok: z.boolean(),
    release: z.string(),
    rolledBack: z.boolean(),
    error: z.string().optional(),
  }),
  z.object({ type: z.literal('pty-data'), id: z.string(), data: z.string() }),
  z.object({ type: z.literal('pty-exit'), id: z.string(), code: z.number().nullable() }),
]);
export type AgentMessage = z.infer<typeof agentMessage>;

function parseWith<T>(schema: z.ZodType<T>, raw: string): T | undefined {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return undefined;
  }
  const parsed = schema.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}

/** A frame from the server, or undefined when it is not one of the protocol's messages. */
export function parseServerMessage(raw: string): ServerMessage | undefined {
  return parseWith(serverMessage, raw);
}

/** A frame from an agent, or undefined when it is not one of the protocol's messages. */
export function parseAgentMessage(raw: string): AgentMessage | undefined {
  return parseWith(agentMessage, raw);
}
