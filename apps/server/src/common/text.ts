import { z } from '@hono/zod-openapi';

// With the u flag a surrogate pair is one code point, so this matches only unpaired halves.
const unpairedSurrogate = /[\uD800-\uDFFF]/u;

/**
 * Why `value` cannot be stored as PostgreSQL text or jsonb, or undefined when it can. NUL is
 * refused by both (`invalid byte sequence 0x00`, `unsupported Unicode escape`); an unpaired
 * surrogate is not Unicode text at all (jsonb refuses its escape, text would get U+FFFD).
 */
export function textProblem(
  value: string,
  options: { allowNul?: boolean } = {},
): string | undefined {
  if (!options.allowNul && value.includes('\0')) return 'must not contain NUL characters';
  if (unpairedSurrogate.test(value)) return 'must not contain unpaired UTF-16 surrogates';
  return undefined;
}

/**
 * Every string in a JSON-like value (object keys included) that {@link textProblem} refuses,
 * with its path, e.g. `[{path: ['config', 'a'], message}]`.
 */
export function textIssues(
  value: unknown,
  options: { allowNul?: boolean } = {},
  path: (string | number)[] = [],
  found: { path: (string | number)[]; message: string }[] = [],
): { path: (string | number)[]; message: string }[] {
  if (typeof value === 'string') {
    const message = textProblem(value, options);
    if (message) found.push({ path, message });
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => textIssues(item, options, [...path, i], found));
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const keyProblem = textProblem(key, options);
      if (keyProblem) found.push({ path: [...path, key], message: `key ${keyProblem}` });
      textIssues(item, options, [...path, key], found);
    }
  }
  return found;
}

/** A zod refinement that adds an issue for every string {@link textIssues} finds. */
export function refuseUnsafeText(options: { allowNul?: boolean } = {}) {
  return (value: unknown, ctx: z.RefinementCtx): void => {
    for (const issue of textIssues(value, options)) {
      ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
    }
  };
}

/**
 * The string schema of every request field: a string without NUL characters or unpaired
 * surrogates (400 `invalid_request` otherwise). Chain the usual checks:
 * `text().trim().min(1).max(255)`. `allowNul` only where NUL is content (file text), never
 * for a name, an id or anything stored as text.
 */
export function text(options: { allowNul?: boolean } = {}): z.ZodString {
  return z.string().superRefine(refuseUnsafeText(options));
}

/**
 * A request field holding a JSON object of arbitrary shape (settings, context): its strings,
 * at any depth and keys included, must pass {@link text}.
 */
export function jsonObject(): z.ZodRecord<z.ZodString, z.ZodUnknown> {
  return z.record(z.string(), z.unknown()).superRefine(refuseUnsafeText());
}
