/** What kind of work a run does (the seeds' request types, plus chat). */
export type RunMode = 'chat' | 'create' | 'modify' | 'debug' | 'deploy';

/** What the system prompt tells the model about the project. */
export interface PromptContext {
  mode: RunMode;
  project: { name: string; description: string; functionality?: string };
  /** The technology stack (template stack merged with the person's choices). */
  stack: unknown;
  /** How the project runs in its container, when known. */
  run?: { install: string | null; dev: string | null; port: number | null };
  files: { path: string; size: number }[];
  /** Names of the environment variables the app receives; values are never shown. */
  envNames: string[];
}

const maxTreeEntries = 400;

const modeInstructions: Record<RunMode, string> = {
  chat: 'Answer the person and make the changes they ask for.',
  modify: 'Make the change described in the instruction, then summarise it.',
  create:
    'Create the application described. Start from the files already present (a template may ' +
    'have been copied in), keep the dev command and port working, install what you add with ' +
    'run_command, and check that the app starts.',
  debug:
    'Find and fix the problem: read the dev server logs (read_logs) and the errors, run ' +
    'commands to reproduce, fix the cause with small edits, then re-check that the dev server ' +
    "answers (e.g. run_command with `node -e \"fetch('http://127.0.0.1:'+process.env.PORT)" +
    '.then(r=>console.log(r.status))"`).',
  deploy:
    'Prepare the project for deployment: make sure it builds and starts in production mode ' +
    '(build script, start script, a Dockerfile when missing), run the build to check it, and ' +
    'say what remains to be configured.',
};

/**
 * The system prompt: who the model is, the rules of the tools, the project's stack, tree and
 * environment variable names. Stable for a whole run, so providers cache it with the tools.
 */
export function systemPrompt(ctx: PromptContext): string {
  const tree = ctx.files.slice(0, maxTreeEntries).map((f) => `${f.path} (${f.size} B)`);
  if (ctx.files.length > maxTreeEntries) {
    tree.push(`… ${ctx.files.length - maxTreeEntries} more (use list_files)`);
  }
  return [
    'You are the coding assistant of Vaporform, a cloud development environment. You work on ' +
      'one project through tools; the person sees every change you make as a diff and can ' +
      'revert it.',
    '',
    '# Rules',
    '- Prefer edit_file with a small old_str that matches exactly once over rewriting a file ' +
      'with write_file; use write_file for new files (or a file you replace entirely).',
    '- Read a file before you edit it. Keep changes minimal; do not reformat unrelated code.',
    "- Commands run with run_command inside the project's container (files at /app); never " +
      'ask the person to run them.',
    '- If a tool fails twice the same way, do not repeat it: change approach or explain.',
    '- Never print, guess or ask for secret values; the environment variables below are set ' +
      'in the container and read with process.env (or equivalent). Tool output shows their ' +
      'values as [redacted NAME]: never write that text into a file, read the variable instead.',
    '- Finish with a short summary of what you changed and why.',
    '',
    `# Task\n${modeInstructions[ctx.mode]}`,
    '',
    '# Project',
    `Name: ${ctx.project.name}`,
    ctx.project.description ? `Description: ${ctx.project.description}` : null,
    ctx.project.functionality ? `What it should do: ${ctx.project.functionality}` : null,
    `Stack: ${JSON.stringify(ctx.stack ?? {})}`,
    ctx.run
      ? `Runs with: install \`${ctx.run.install ?? '(none)'}\`, dev \`${ctx.run.dev ?? '(none)'}\`, port ${ctx.run.port ?? '(unknown)'} (PORT is set)`
      : null,
    `Environment variables (names only): ${ctx.envNames.length ? ctx.envNames.join(', ') : '(none)'}`,
    '',
    `# Files (${ctx.files.length})`,
    tree.length ? tree.join('\n') : '(no files yet)',
  ]
    .filter((line) => line !== null)
    .join('\n');
}
