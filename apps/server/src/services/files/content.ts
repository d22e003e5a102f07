import { createHash } from 'node:crypto';
import path from 'node:path';
import { errors } from '../../common/errors.ts';

/** How a file's content travels over the API and sits in the database. */
export type Encoding = 'utf-8' | 'base64';

/** A file's bytes in their stored form, with what the database keeps about them. */
export interface StoredContent {
  /** UTF-8 text, or base64 of the bytes for binary files. */
  content: string;
  encoding: Encoding;
  isBinary: boolean;
  /** SHA-256 of the bytes, hex. */
  hash: string;
  size: number;
  lines: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** SHA-256 of `bytes` as 64 hex characters. */
export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The hash of no bytes: deletions carry it in the history. */
export const emptyHash = sha256(new Uint8Array());

/**
 * The bytes behind API content: UTF-8 text as given, or base64 decoded strictly.
 * @throws AppError invalid_request for base64 that is not canonical base64.
 */
export function decodeContent(content: string, encoding: Encoding, field = 'content'): Buffer {
  if (encoding === 'utf-8') return Buffer.from(content, 'utf8');
  const compact = content.replace(/[\r\n\t ]+/g, '');
  const bytes = Buffer.from(compact, 'base64');
  // Buffer.from skips what it does not understand; require a faithful round trip instead.
  if (bytes.toString('base64').replace(/=+$/, '') !== compact.replace(/=+$/, '')) {
    throw errors.invalid('Content is not valid base64', [{ field, message: 'invalid base64' }]);
  }
  return bytes;
}

/**
 * How `bytes` are stored: as text when they are valid UTF-8 without NUL bytes (PostgreSQL text
 * cannot hold NUL), otherwise as base64. Either way the bytes come back exactly.
 */
export function storeBytes(bytes: Uint8Array): StoredContent {
  const text = asText(bytes);
  const hash = sha256(bytes);
  if (text === undefined) {
    return {
      content: Buffer.from(bytes).toString('base64'),
      encoding: 'base64',
      isBinary: true,
      hash,
      size: bytes.length,
      lines: 0,
    };
  }
  return {
    content: text,
    encoding: 'utf-8',
    isBinary: false,
    hash,
    size: bytes.length,
    lines: countLines(text),
  };
}

/** The bytes of stored content. */
export function storedBytes(content: string, encoding: string): Buffer {
  return encoding === 'base64' ? Buffer.from(content, 'base64') : Buffer.from(content, 'utf8');
}

function asText(bytes: Uint8Array): string | undefined {
  if (bytes.includes(0)) return undefined;
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Lines as an editor counts them: `a\nb` and `a\nb\n` both have 2; empty text has 0. */
export function countLines(text: string): number {
  if (text.length === 0) return 0;
  let n = 1;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return text.endsWith('\n') ? n - 1 : n;
}

const types: Record<string, [type: string, mime: string]> = {
  '.ts': ['typescript', 'text/typescript'],
  '.tsx': ['typescript', 'text/tsx'],
  '.mts': ['typescript', 'text/typescript'],
  '.cts': ['typescript', 'text/typescript'],
  '.js': ['javascript', 'text/javascript'],
  '.jsx': ['javascript', 'text/jsx'],
  '.mjs': ['javascript', 'text/javascript'],
  '.cjs': ['javascript', 'text/javascript'],
  '.json': ['json', 'application/json'],
  '.md': ['markdown', 'text/markdown'],
  '.html': ['html', 'text/html'],
  '.htm': ['html', 'text/html'],
  '.css': ['css', 'text/css'],
  '.scss': ['scss', 'text/x-scss'],
  '.py': ['python', 'text/x-python'],
  '.go': ['go', 'text/x-go'],
  '.rs': ['rust', 'text/x-rust'],
  '.java': ['java', 'text/x-java'],
  '.rb': ['ruby', 'text/x-ruby'],
  '.php': ['php', 'application/x-php'],
  '.sh': ['shell', 'application/x-sh'],
  '.yml': ['yaml', 'application/yaml'],
  '.yaml': ['yaml', 'application/yaml'],
  '.toml': ['toml', 'application/toml'],
  '.xml': ['xml', 'application/xml'],
  '.svg': ['svg', 'image/svg+xml'],
  '.sql': ['sql', 'application/sql'],
  '.txt': ['text', 'text/plain'],
  '.png': ['image', 'image/png'],
  '.jpg': ['image', 'image/jpeg'],
  '.jpeg': ['image', 'image/jpeg'],
  '.gif': ['image', 'image/gif'],
  '.webp': ['image', 'image/webp'],
  '.ico': ['image', 'image/x-icon'],
  '.pdf': ['pdf', 'application/pdf'],
  '.zip': ['archive', 'application/zip'],
  '.wasm': ['wasm', 'application/wasm'],
};

const byName: Record<string, [string, string]> = {
  Dockerfile: ['dockerfile', 'text/plain'],
  Makefile: ['makefile', 'text/plain'],
  '.gitignore': ['ignore', 'text/plain'],
  '.env': ['dotenv', 'text/plain'],
};

/** A file's kind (its language, roughly) and MIME type, from its name and whether it is text. */
export function fileType(filePath: string, isBinary: boolean): { type: string; mime: string } {
  const name = path.posix.basename(filePath);
  const known = byName[name] ?? types[path.posix.extname(name).toLowerCase()];
  if (known) return { type: known[0], mime: known[1] };
  return isBinary
    ? { type: 'binary', mime: 'application/octet-stream' }
    : { type: 'text', mime: 'text/plain' };
}
