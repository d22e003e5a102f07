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

/** How deep request JSON may nest: deeper values are refused before any recursive code sees them. */
export const maxInputDepth = 64;
const maxIssues = 20;

/**
 * What is wrong with a validated request value: every string {@link textProblem} refuses
 * (object keys included) and any nesting deeper than {@link maxInputDepth}, with its path, e.g.
 * `[{path: ['config', 'a'], message}]`; at most 20. Iterative, so no input exhausts the stack.
 */
export function inputIssues(
  value: unknown,
  options: { allowNul?: boolean } = {},
): { path: (string | number)[]; message: string }[] {
  const found: { path: (string | number)[]; message: string }[] = [];
  const stack: { value: unknown; path: (string | number)[] }[] = [{ value, path: [] }];
  while (stack.length > 0 && found.length < maxIssues) {
    const { value: v, path } = stack.pop()!;
    if (typeof v === 'string') {
      const message = textProblem(v, options);
      if (message) found.push({ path, message });
    } else if (v !== null && typeof v === 'object') {
      if (path.length >= maxInputDepth) {
        found.push({ path, message: `must not nest deeper than ${maxInputDepth} levels` });
        continue;
      }
      const entries: [string | number, unknown][] = Array.isArray(v)
        ? v.map((item, i) => [i, item])
        : Object.entries(v);
      for (const [key, item] of entries.reverse()) {
        const keyProblem = typeof key === 'string' ? textProblem(key, options) : undefined;
        if (keyProblem) found.push({ path: [...path, key], message: `key ${keyProblem}` });
        stack.push({ value: item, path: [...path, key] });
      }
    }
  }
  return found.slice(0, maxIssues);
}

/**
 * A zod refinement that adds an issue for everything {@link inputIssues} finds; the schema's
 * later refinements are skipped then (they may recurse, e.g. `JSON.stringify`).
 */
export function refuseUnsafeInput(options: { allowNul?: boolean } = {}) {
  return (value: unknown, ctx: z.RefinementCtx): void => {
    for (const issue of inputIssues(value, options)) {
      ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message, continue: false });
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
  return z.string().superRefine(refuseUnsafeInput(options));
}

/**
 * A request field holding a JSON object of arbitrary shape (settings, context): its strings,
 * at any depth and keys included, must pass {@link text}; at most {@link maxInputDepth} deep.
 */
export function jsonObject(): z.ZodRecord<z.ZodString, z.ZodUnknown> {
  return z.record(z.string(), z.unknown()).superRefine(refuseUnsafeInput());
}
