const byExtension: Record<string, string> = {
  ts: 'typescript',
  tsx: 'typescript',
  mts: 'typescript',
  cts: 'typescript',
  js: 'javascript',
  jsx: 'javascript',
  mjs: 'javascript',
  cjs: 'javascript',
  json: 'json',
  html: 'html',
  htm: 'html',
  css: 'css',
  scss: 'scss',
  less: 'less',
  md: 'markdown',
  markdown: 'markdown',
  py: 'python',
  go: 'go',
  rs: 'rust',
  java: 'java',
  kt: 'kotlin',
  rb: 'ruby',
  php: 'php',
  c: 'c',
  h: 'c',
  cpp: 'cpp',
  cc: 'cpp',
  hpp: 'cpp',
  cs: 'csharp',
  sh: 'shell',
  bash: 'shell',
  yml: 'yaml',
  yaml: 'yaml',
  toml: 'ini',
  ini: 'ini',
  sql: 'sql',
  xml: 'xml',
  svg: 'xml',
  vue: 'html',
  svelte: 'html',
  graphql: 'graphql',
  tf: 'hcl',
  hcl: 'hcl',
  swift: 'swift',
  lua: 'lua',
  r: 'r',
  dart: 'dart',
};

const byName: Record<string, string> = {
  dockerfile: 'dockerfile',
  makefile: 'shell',
  '.env': 'ini',
  '.gitignore': 'ini',
};

/** Monaco's language id for a file path ("plaintext" when unknown). */
export function languageOf(path: string): string {
  const name = path.split('/').pop()!.toLowerCase();
  if (byName[name]) return byName[name];
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return 'plaintext';
  return byExtension[name.slice(dot + 1)] ?? 'plaintext';
}

/** True for files shown as binary (images, archives…): not opened in the text editor. */
export function isBinaryPath(path: string): boolean {
  return /\.(png|jpe?g|gif|webp|ico|bmp|pdf|zip|gz|tgz|woff2?|ttf|otf|eot|mp[34]|wasm|jar|class|so|dylib|exe)$/i.test(
    path,
  );
}
