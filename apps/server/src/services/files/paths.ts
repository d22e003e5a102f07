import path from 'node:path';
import { errors } from '../../common/errors.ts';

/** API.md › Files: a path is at most 1,024 bytes (UTF-8). */
export const maxPathBytes = 1024;
/** One name (a path segment) is at most 255 bytes, as on Linux file systems. */
export const maxNameBytes = 255;

// eslint-disable-next-line no-control-regex
const controlChars = /[\u0000-\u001f\u007f]/;
const percentEscape = /%[0-9a-f]{2}/i;
/** Characters Windows (and so zip tools and many checkouts) cannot have in a name. */
const windowsForbidden = /[<>:"|?*]/;
/** Device names Windows reserves, with or without an extension (`nul.txt` too). */
const windowsDevice = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i;

/**
 * Why `input` is not an acceptable file path, or undefined when it is. A file path is relative
 * and POSIX (`src/app.ts`): no leading `/`, no `.` or `..` segments, no empty segments (`a//b`,
 * a trailing `/`), no NUL or other control characters, no backslashes, no percent escapes (the
 * URL was decoded once already; a surviving `%2e` is a double-encoding trick), at most 1,024
 * bytes and 255 bytes per name. Names are portable: none of `< > : " | ? *`, no trailing dot or
 * space, no Windows device name (`con`, `nul.txt`…), so every project can be exported as a zip
 * and checked out anywhere.
 */
export function pathProblem(input: unknown): string | undefined {
  if (typeof input !== 'string') return 'must be a string';
  if (input.length === 0) return 'must not be empty';
  if (Buffer.byteLength(input, 'utf8') > maxPathBytes) {
    return `must be at most ${maxPathBytes} bytes`;
  }
  if (input.includes('\0')) return 'must not contain NUL bytes';
  if (controlChars.test(input)) return 'must not contain control characters';
  if (input.includes('\\')) return 'must use forward slashes, not backslashes';
  if (input.startsWith('/')) return 'must be relative (no leading /)';
  if (percentEscape.test(input)) return 'must not contain percent-encoded characters';
  if (/[\ud800-\udfff]/.test(input.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''))) {
    return 'must be valid Unicode';
  }
  for (const segment of input.split('/')) {
    if (segment === '') return 'must not contain empty segments (// or a trailing /)';
    if (segment === '.' || segment === '..') return 'must not contain . or .. segments';
    if (Buffer.byteLength(segment, 'utf8') > maxNameBytes) {
      return `names must be at most ${maxNameBytes} bytes`;
    }
    if (windowsForbidden.test(segment)) return 'must not contain < > : " | ? or *';
    if (/[. ]$/.test(segment)) return 'names must not end with a dot or a space';
    if (windowsDevice.test(segment)) return `"${segment}" is a reserved device name`;
  }
  return undefined;
}

/**
 * Returns `input` if it is an acceptable file path (see {@link pathProblem}).
 * @throws AppError invalid_request naming `field`.
 */
export function checkFilePath(input: unknown, field = 'path'): string {
  const problem = pathProblem(input);
  if (problem) throw errors.invalid(`Invalid file path: ${problem}`, [{ field, message: problem }]);
  return input as string;
}

/** The directories a path lives in, outermost first: `a/b/c.ts` → `['a', 'a/b']`. */
export function parentDirs(filePath: string): string[] {
  const parts = filePath.split('/');
  const dirs: string[] = [];
  for (let i = 1; i < parts.length; i++) dirs.push(parts.slice(0, i).join('/'));
  return dirs;
}

/** The last segment: `src/app.ts` → `app.ts`. */
export function baseName(filePath: string): string {
  return filePath.slice(filePath.lastIndexOf('/') + 1);
}

/** True when `child` is `root` itself or inside it, comparing resolved absolute paths. */
export function isInside(root: string, child: string): boolean {
  const rel = path.relative(path.resolve(root), path.resolve(child));
  return rel === '' || (!rel.startsWith('..' + path.sep) && rel !== '..' && !path.isAbsolute(rel));
}

/**
 * The absolute location of `filePath` under `root`, after checking with resolved paths (never a
 * string prefix: `root` = `/w/proj` must not accept `/w/proj2/x`) that it stays inside.
 * @throws AppError invalid_request when the path is not acceptable or escapes `root`.
 */
export function resolveInside(root: string, filePath: string): string {
  checkFilePath(filePath);
  const target = path.resolve(root, filePath);
  if (!isInside(root, target) || target === path.resolve(root)) {
    throw errors.invalid('Invalid file path: escapes the workspace', [
      { field: 'path', message: 'escapes the workspace' },
    ]);
  }
  return target;
}
