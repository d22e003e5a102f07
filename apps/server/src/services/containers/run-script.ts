import type { RuntimeSpec } from './runtime.ts';

/**
 * The shell script a project's instance runs: the install step when it is needed (a Node
 * project whose node_modules is missing; other installers every start), then the dev server.
 */
export function installScript(spec: Pick<RuntimeSpec, 'install' | 'dev'>): string {
  const dev = `exec /bin/sh -c ${shellQuote(spec.dev)}`;
  if (!spec.install) return dev;
  const node = /\b(npm|yarn|pnpm|bun)\b/.test(spec.install);
  const needed = node ? '[ -f package.json ] && [ ! -d node_modules ]' : 'true';
  return (
    `if ${needed}; then echo '[vaporform] ${spec.install.replace(/'/g, '')}'; ` +
    `${spec.install} || exit $?; fi; ${dev}`
  );
}

/** `value` as one single-quoted shell word. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Lines of text from chunks (a stream or a list), the last one even without a newline. */
export async function* splitLines(
  source: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
): AsyncGenerator<string> {
  let rest = '';
  for await (const chunk of source) {
    rest += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    const lines = rest.split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) yield line.replace(/\r$/, '');
  }
  if (rest) yield rest.replace(/\r$/, '');
}
