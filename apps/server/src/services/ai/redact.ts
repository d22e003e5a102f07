/** Values shorter than this are not redacted: they would match ordinary words and numbers. */
export const minSecretLength = 6;

/** Lines of a multi-line value (a PEM key) shorter than this are not redacted on their own. */
const minLineLength = 16;

/**
 * Replaces every occurrence of a secret value in `text` with `[redacted NAME]`, longest first
 * (so a value containing another is replaced whole). The model sees names, never values.
 *
 * Besides the value as it is, the forms a command or a file commonly shows it in: JSON/JS string
 * escaped, percent-encoded, with CRLF line ends (a TTY) and line by line (a multi-line key),
 * base64 and base64url at any offset (`env | base64`, wrapped lines included), hex, and the
 * password of a URL-shaped value. This guards against accidental exposure; it cannot stop code
 * the model runs from transforming a value in some other way.
 */
export function createRedactor(secrets: Record<string, string>): (text: string) => string {
  const literals: { name: string; value: string }[] = [];
  const patterns: { name: string; pattern: RegExp; length: number }[] = [];
  for (const [name, value] of Object.entries(secrets)) {
    if (value.length < minSecretLength) continue;
    for (const form of literalForms(value)) literals.push({ name, value: form });
    for (const core of base64Cores(value)) {
      // `base64` wraps its output (76 columns): a line break may fall anywhere in the value.
      const pattern = new RegExp([...core].map(escapeRegExp).join('(?:\\r?\\n)?'), 'g');
      patterns.push({ name, pattern, length: core.length });
    }
  }
  if (literals.length === 0) return (text) => text;
  literals.sort((a, b) => b.value.length - a.value.length);
  patterns.sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const { name, value } of literals) {
      if (out.includes(value)) out = out.split(value).join(`[redacted ${name}]`);
    }
    for (const { name, pattern } of patterns) out = out.replace(pattern, `[redacted ${name}]`);
    return out;
  };
}

/** The value and the plain-text forms it is often printed in (each long enough to match). */
function literalForms(value: string): string[] {
  const forms = new Set([value]);
  forms.add(JSON.stringify(value).slice(1, -1));
  forms.add(encodeURIComponent(value));
  const bytes = Buffer.from(value, 'utf8');
  forms.add(bytes.toString('hex'));
  forms.add(bytes.toString('hex').toUpperCase());
  if (value.includes('\n')) {
    forms.add(value.replace(/\r?\n/g, '\r\n'));
    for (const line of value.split(/\r?\n/)) {
      if (line.trim().length >= minLineLength) forms.add(line.trim());
    }
  }
  const password = urlPassword(value);
  if (password) {
    forms.add(password);
    forms.add(safeDecode(password));
  }
  return [...forms].filter((f) => f.length >= minSecretLength);
}

/**
 * The base64 characters that depend only on the value's bytes, for each of the three offsets
 * it can start at inside a longer encoded text, in the standard and the URL-safe alphabet.
 */
function base64Cores(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  const cores = new Set<string>();
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
    // Character i carries bits [6i, 6i + 6); the value's bits are [8·offset, 8·(offset + n)).
    const first = Math.ceil((8 * offset) / 6);
    const end = Math.floor((8 * (offset + bytes.length)) / 6);
    const core = encoded.slice(first, end);
    if (core.length < minSecretLength + 2) continue;
    cores.add(core);
    cores.add(core.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return [...cores];
}

/** The password of `scheme://user:password@host…`, if the value is shaped so. */
function urlPassword(value: string): string | undefined {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:([^@/?#\s]+)@/i.exec(value.trim());
  return m?.[1];
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function escapeRegExp(char: string): string {
  return char.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
