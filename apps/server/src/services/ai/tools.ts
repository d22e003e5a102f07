import { z } from 'zod';
import { AppError } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import { unifiedDiff, type ChangesetRecorder, type FileOperation } from './changesets.ts';
import type { AiActor, AiFileState, AiFiles, AiRuntime } from './host.ts';
import type { ToolCallPart, ToolSpec } from './providers.ts';

const maxReadChars = 100_000;
const maxListEntries = 1_000;
const maxSearchResults = 50;
const defaultCommandTimeoutMs = 60_000;
const maxCommandTimeoutMs = 10 * 60_000;
const outputHeadChars = 2_000;
const outputTailChars = 8_000;

const inputs = {
  list_files: z.object({ path: z.string().max(1024).optional() }),
  read_file: z.object({ path: z.string().min(1).max(1024) }),
  write_file: z.object({ path: z.string().min(1).max(1024), content: z.string() }),
  edit_file: z.object({
    path: z.string().min(1).max(1024),
    old_str: z.string(),
    new_str: z.string(),
  }),
  delete_file: z.object({ path: z.string().min(1).max(1024) }),
  search_files: z.object({ query: z.string().min(1).max(200) }),
  run_command: z.object({
    command: z.string().min(1).max(10_000),
    timeout_ms: z.number().int().min(1_000).max(maxCommandTimeoutMs).optional(),
  }),
  read_logs: z.object({ lines: z.number().int().min(1).max(2_000).optional() }),
};

/** The names of the tools (part of the API contract). */
export type ToolName = keyof typeof inputs;

/** The tools the model works through: names and inputs are part of the contract. */
export const toolSpecs: ToolSpec[] = [
  {
    name: 'list_files',
    description:
      'List the project files (paths relative to the project root, with sizes in bytes). ' +
      'Optionally only those under `path` (a directory).',
    inputSchema: {
      type: 'object',
      properties: { path: { type: 'string', description: 'A directory, e.g. "src"' } },
    },
  },
  {
    name: 'read_file',
    description: 'Read a text file of the project.',
    inputSchema: {
      type: 'object',
      properties: { path: { type: 'string', description: 'Relative path, e.g. "src/app.ts"' } },
      required: ['path'],
    },
  },
  {
    name: 'write_file',
    description:
      'Create a file, or replace a whole file. For changes to an existing file prefer edit_file.',
    inputSchema: {
      type: 'object',
      properties: { path: { type: 'string' }, content: { type: 'string' } },
      required: ['path', 'content'],
    },
  },
  {
    name: 'edit_file',
    description:
      'Replace one exact occurrence of `old_str` with `new_str` in a file. `old_str` must match ' +
      'the file exactly (whitespace included) and exactly once: include enough surrounding lines ' +
      'to make it unique. Preferred over write_file for changing existing files.',
    inputSchema: {
      type: 'object',
      properties: {
        path: { type: 'string' },
        old_str: { type: 'string', description: 'Exact text to replace (unique in the file)' },
        new_str: { type: 'string', description: 'Replacement text' },
      },
      required: ['path', 'old_str', 'new_str'],
    },
  },
  {
    name: 'delete_file',
    description: 'Delete a file of the project.',
    inputSchema: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
  },
  {
    name: 'search_files',
    description: 'Search the project files for words or a path fragment; answers path:line: text.',
    inputSchema: {
      type: 'object',
      properties: { query: { type: 'string' } },
      required: ['query'],
    },
  },
  {
    name: 'run_command',
    description:
      "Run a shell command in the project's container (working directory /app, where the " +
      'project files are), e.g. `npm test` or `npm install zod`. Answers the exit code and ' +
      'output (long output is shortened to its start and end).',
    inputSchema: {
      type: 'object',
      properties: {
        command: { type: 'string' },
        timeout_ms: {
          type: 'integer',
          description: `Default ${defaultCommandTimeoutMs}, at most ${maxCommandTimeoutMs}`,
        },
      },
      required: ['command'],
    },
  },
  {
    name: 'read_logs',
    description: "The dev server's most recent output (stdout and stderr).",
    inputSchema: {
      type: 'object',
      properties: { lines: { type: 'integer', description: 'How many lines (default 100)' } },
    },
  },
];

/** What one tool call answered. */
export interface ToolOutcome {
  /** What the model is told. */
  content: string;
  isError: boolean;
  /** One line for people (the `tool` event, the chat history). */
  summary: string;
}

/** A file the AI changed, as streamed (`file_change`). */
export interface FileChangeEvent {
  path: string;
  operation: FileOperation;
  /** Unified diff of this change. */
  diff: string;
  version: number | null;
}

/** Everything a tool call may touch, for one run. */
export interface ToolContext {
  projectId: string;
  actor: AiActor;
  files: AiFiles | undefined;
  runtime: AiRuntime | undefined;
  recorder: ChangesetRecorder;
  /** Removes known secret values from text the model will see. */
  redact: (text: string) => string;
  /** Throws when this run may no longer change anything (e.g. it lost its queue lease). */
  guard: () => Promise<void>;
  onFileChange: (change: FileChangeEvent) => void;
  /** Commands run so far (for the interaction record and ClaudeResponse.commands). */
  commands: string[];
  signal?: AbortSignal;
  log: Logger;
}

class ToolFailure extends Error {}

/** Runs one tool call; failures the model can act on come back as `isError` results. */
export async function runTool(ctx: ToolContext, call: ToolCallPart): Promise<ToolOutcome> {
  const schema = inputs[call.name as ToolName];
  if (!schema) {
    return failure(
      `Unknown tool ${call.name}; use one of ${Object.keys(inputs).join(', ')}`,
      call.name,
    );
  }
  const parsed = schema.safeParse(call.input);
  if (!parsed.success) {
    const detail = parsed.error.issues
      .map((i) => `${i.path.join('.') || 'input'}: ${i.message}`)
      .join('; ');
    return failure(`Invalid input for ${call.name}: ${detail}`, call.name);
  }
  try {
    const outcome = await dispatch(ctx, call.name as ToolName, parsed.data as never);
    return {
      isError: outcome.isError ?? false,
      summary: outcome.summary,
      content: ctx.redact(outcome.content),
    };
  } catch (err) {
    if (ctx.signal?.aborted) throw err;
    if (err instanceof ToolFailure || err instanceof AppError) {
      return failure(ctx.redact(err.message), call.name);
    }
    ctx.log.error({ err, tool: call.name }, 'AI tool failed unexpectedly');
    return failure(`${call.name} failed because of an error on the server`, call.name);
  }
}

function failure(message: string, tool: string): ToolOutcome {
  return { content: message, isError: true, summary: `${tool} failed: ${firstLine(message)}` };
}

async function dispatch(
  ctx: ToolContext,
  name: ToolName,
  input: Record<string, unknown>,
): Promise<Omit<ToolOutcome, 'isError'> & { isError?: boolean }> {
  switch (name) {
    case 'list_files':
      return listFiles(ctx, input as z.infer<typeof inputs.list_files>);
    case 'read_file':
      return readFile(ctx, input as z.infer<typeof inputs.read_file>);
    case 'write_file':
      return writeFile(ctx, input as z.infer<typeof inputs.write_file>);
    case 'edit_file':
      return editFile(ctx, input as z.infer<typeof inputs.edit_file>);
    case 'delete_file':
      return deleteFile(ctx, input as z.infer<typeof inputs.delete_file>);
    case 'search_files':
      return searchFiles(ctx, input as z.infer<typeof inputs.search_files>);
    case 'run_command':
      return runCommand(ctx, input as z.infer<typeof inputs.run_command>);
    case 'read_logs':
      return readLogs(ctx, input as z.infer<typeof inputs.read_logs>);
  }
}

function requireFiles(ctx: ToolContext): AiFiles {
  if (!ctx.files) throw new ToolFailure('Project files are not available on this server');
  return ctx.files;
}

function requireRuntime(ctx: ToolContext): AiRuntime {
  if (!ctx.runtime) {
    throw new ToolFailure(
      'No container runtime is available on this server, so commands cannot run',
    );
  }
  return ctx.runtime;
}

async function listFiles(ctx: ToolContext, input: { path?: string }) {
  const files = await requireFiles(ctx).list(ctx.projectId);
  const dir = (input.path ?? '').replace(/^\.\/?/, '').replace(/\/+$/, '');
  const shown = dir ? files.filter((f) => f.path.startsWith(`${dir}/`)) : files;
  if (shown.length === 0) {
    return {
      content: dir ? `No files under ${dir}/` : 'The project has no files yet',
      summary: `Listed ${dir || 'the project'}: empty`,
    };
  }
  const lines = shown.slice(0, maxListEntries).map((f) => `${f.path} (${f.size} bytes)`);
  if (shown.length > maxListEntries) {
    lines.push(`… and ${shown.length - maxListEntries} more; pass a directory as path`);
  }
  return {
    content: lines.join('\n'),
    summary: `Listed ${shown.length} file(s)${dir ? ` under ${dir}/` : ''}`,
  };
}

async function readFile(ctx: ToolContext, input: { path: string }) {
  const file = await requireFiles(ctx).read(ctx.projectId, input.path);
  if (!file) throw new ToolFailure(`${input.path} does not exist`);
  if (file.encoding !== 'utf-8') {
    return {
      content: `${input.path} is a binary file (${Buffer.from(file.content, 'base64').length} bytes)`,
      summary: `Read ${input.path} (binary)`,
    };
  }
  const text =
    file.content.length > maxReadChars
      ? `${file.content.slice(0, maxReadChars)}\n… (truncated: the file has ${file.content.length} characters)`
      : file.content;
  return { content: text, summary: `Read ${input.path}` };
}

async function writeFile(ctx: ToolContext, input: { path: string; content: string }) {
  const change = await applyWrite(ctx, input.path, input.content);
  return {
    content: `${change.operation === 'create' ? 'Created' : 'Wrote'} ${input.path} (${countLines(input.content)} lines)`,
    summary: `${change.operation === 'create' ? 'Created' : 'Rewrote'} ${input.path}`,
  };
}

async function editFile(
  ctx: ToolContext,
  input: { path: string; old_str: string; new_str: string },
) {
  const files = requireFiles(ctx);
  if (input.old_str === '') {
    throw new ToolFailure('old_str is empty; give the exact text to replace (or use write_file)');
  }
  const file = await files.read(ctx.projectId, input.path);
  if (!file) throw new ToolFailure(`${input.path} does not exist; create it with write_file`);
  if (file.encoding !== 'utf-8')
    throw new ToolFailure(`${input.path} is binary; it cannot be edited`);
  const count = occurrences(file.content, input.old_str);
  if (count === 0) {
    throw new ToolFailure(
      `old_str was not found in ${input.path}. It must match exactly, whitespace included; ` +
        'read the file again and copy the text.',
    );
  }
  if (count > 1) {
    throw new ToolFailure(
      `old_str occurs ${count} times in ${input.path}; include more surrounding lines so it ` +
        'matches exactly once.',
    );
  }
  const at = file.content.indexOf(input.old_str);
  const content =
    file.content.slice(0, at) + input.new_str + file.content.slice(at + input.old_str.length);
  await applyWrite(ctx, input.path, content, file);
  const line = file.content.slice(0, at).split('\n').length;
  return {
    content: `Edited ${input.path} at line ${line}`,
    summary: `Edited ${input.path}`,
  };
}

async function deleteFile(ctx: ToolContext, input: { path: string }) {
  const files = requireFiles(ctx);
  await ctx.guard();
  const before = await files.read(ctx.projectId, input.path);
  if (!before) throw new ToolFailure(`${input.path} does not exist`);
  await files.remove(ctx.projectId, input.path, ctx.actor);
  await ctx.recorder.record(
    input.path,
    { content: before.content, hash: before.hash, version: before.version },
    { content: null, hash: null, version: null },
  );
  ctx.onFileChange({
    path: input.path,
    operation: 'delete',
    diff: before.encoding === 'utf-8' ? unifiedDiff(input.path, before.content, null) : '',
    version: null,
  });
  return { content: `Deleted ${input.path}`, summary: `Deleted ${input.path}` };
}

async function searchFiles(ctx: ToolContext, input: { query: string }) {
  const results = await requireFiles(ctx).search(ctx.projectId, input.query, maxSearchResults);
  if (results.length === 0) {
    return {
      content: `No matches for "${input.query}"`,
      summary: `Searched "${input.query}": none`,
    };
  }
  return {
    content: results.map((r) => `${r.path}:${r.line}: ${r.preview}`).join('\n'),
    summary: `Searched "${input.query}": ${results.length} match(es)`,
  };
}

async function runCommand(ctx: ToolContext, input: { command: string; timeout_ms?: number }) {
  const runtime = requireRuntime(ctx);
  await ctx.guard();
  ctx.commands.push(input.command);
  const result = await runtime.exec(ctx.projectId, input.command, {
    timeoutMs: input.timeout_ms ?? defaultCommandTimeoutMs,
    signal: ctx.signal,
  });
  const output = truncateOutput(result.output);
  const status = result.timedOut
    ? `timed out after ${input.timeout_ms ?? defaultCommandTimeoutMs} ms`
    : `exit code ${result.exitCode}`;
  const failed = result.timedOut || result.exitCode !== 0;
  return {
    content: `$ ${input.command}\n(${status})\n${output}`,
    isError: failed,
    summary: `Ran \`${firstLine(input.command)}\`: ${status}`,
  };
}

async function readLogs(ctx: ToolContext, input: { lines?: number }) {
  const lines = await requireRuntime(ctx).logs(ctx.projectId, input.lines ?? 100);
  return {
    content: lines.length ? truncateOutput(lines.join('\n')) : 'The dev server has no output yet',
    summary: `Read ${lines.length} log line(s)`,
  };
}

async function applyWrite(
  ctx: ToolContext,
  filePath: string,
  content: string,
  known?: AiFileState,
): Promise<FileChangeEvent> {
  const files = requireFiles(ctx);
  await ctx.guard();
  const before = known ?? (await files.read(ctx.projectId, filePath));
  const written = await files.write(ctx.projectId, filePath, content, ctx.actor);
  await ctx.recorder.record(
    filePath,
    before
      ? { content: before.content, hash: before.hash, version: before.version }
      : { content: null, hash: null, version: null },
    { content, hash: written.hash, version: written.version },
  );
  const change: FileChangeEvent = {
    path: filePath,
    operation: before ? 'update' : 'create',
    diff: unifiedDiff(filePath, before?.encoding === 'utf-8' ? before.content : null, content),
    version: written.version,
  };
  ctx.onFileChange(change);
  return change;
}

function occurrences(haystack: string, needle: string): number {
  let count = 0;
  for (let i = haystack.indexOf(needle); i !== -1; i = haystack.indexOf(needle, i + 1)) count++;
  return count;
}

function countLines(text: string): number {
  return text === '' ? 0 : text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
}

/** Keeps the start and the end of long output (errors are usually at the end). */
export function truncateOutput(output: string): string {
  if (output.length <= outputHeadChars + outputTailChars) return output;
  const omitted = output.length - outputHeadChars - outputTailChars;
  return (
    output.slice(0, outputHeadChars) +
    `\n… [${omitted} characters omitted] …\n` +
    output.slice(-outputTailChars)
  );
}

function firstLine(text: string): string {
  const line = text.split('\n', 1)[0] ?? '';
  return line.length > 120 ? `${line.slice(0, 117)}…` : line;
}
