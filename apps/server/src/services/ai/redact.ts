/** Values shorter than this are not redacted: they would match ordinary words and numbers. */
export const minSecretLength = 6;

/**
 * Replaces every occurrence of a secret value in `text` with `[redacted NAME]`, longest value
 * first (so a value containing another is replaced whole). The model sees names, never values.
 */
export function createRedactor(secrets: Record<string, string>): (text: string) => string {
  const entries = Object.entries(secrets)
    .filter(([, value]) => value.length >= minSecretLength)
    .sort((a, b) => b[1].length - a[1].length);
  if (entries.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const [name, value] of entries) {
      if (out.includes(value)) out = out.split(value).join(`[redacted ${name}]`);
    }
    return out;
  };
}
