import { OpenAPIHono, z, type Hook } from '@hono/zod-openapi';
import type { Env } from 'hono';
import type { Logger } from './logger.ts';
import { AppError } from './errors.ts';
import { inputIssues } from './text.ts';

/** The caller behind an authenticated request. */
export interface AuthContext {
  userId: string;
  sessionId: string;
}

declare module 'hono' {
  interface ContextVariableMap {
    requestId: string;
    log: Logger;
    /** Set by the auth middleware on protected routes. */
    auth: AuthContext;
    /** Wall-clock ms (fractional) when the request reached the server. */
    receivedAt: number;
  }
}

/**
 * A sub-app for one service. Validation failures become 400 `invalid_request` with the
 * offending fields in `details`, through the one error renderer.
 */
export function createRouter(): OpenAPIHono {
  return new OpenAPIHono({ defaultHook: validationHook() });
}

/**
 * The validation hook of every route (the default of {@link createRouter}): a zod failure, a
 * string anywhere in the validated params, query or body (arbitrary JSON included, keys too)
 * that `text()` (common/text.ts) refuses (NUL, unpaired surrogates), or JSON nested deeper than
 * `maxInputDepth` (64), is 400 `invalid_request` naming the fields. Pass
 * `validationHook({ allowNul: true })` as a route's hook where NUL is content (file text).
 * @throws AppError invalid_request
 */
export function validationHook<T, E extends Env, P extends string>(
  options: { allowNul?: boolean } = {},
): Hook<T, E, P, undefined> {
  return (result) => {
    if (!result.success) {
      throw new AppError('invalid_request', 'The request is not valid', fieldIssues(result.error));
    }
    const unsafe = inputIssues(result.data, options);
    if (unsafe.length > 0) {
      throw new AppError(
        'invalid_request',
        'The request is not valid',
        unsafe.map((i) => ({
          field: i.path.map(String).join('.') || '(body)',
          message: i.message,
        })),
      );
    }
  };
}

/** `[{field, message}]` for a zod error, fields as dotted paths. */
export function fieldIssues(error: z.ZodError): { field: string; message: string }[] {
  return error.issues.map((i) => ({
    field: i.path.map(String).join('.') || '(body)',
    message: i.message,
  }));
}

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'not_found' }),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .openapi('Error');

const errorDescriptions: Record<number, string> = {
  400: 'Invalid request (code invalid_request)',
  401: 'Not authenticated (unauthenticated, mfa_required, token_reused)',
  403: 'Role too low (forbidden)',
  404: 'Not found, or not a member (not_found)',
  409: 'Conflict (conflict)',
  413: 'Too large (too_large)',
  429: 'Rate limited (rate_limited), see Retry-After',
  503: 'Unavailable',
};

/** OpenAPI `responses` entries for the given error statuses. */
export function errorResponses(...statuses: (keyof typeof errorDescriptions)[]) {
  return Object.fromEntries(
    statuses.map((s) => [
      s,
      {
        description: errorDescriptions[s]!,
        content: { 'application/json': { schema: ErrorSchema } },
      },
    ]),
  );
}

/** A JSON response entry for OpenAPI. */
export function jsonResponse<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { 'application/json': { schema } } };
}

/** A JSON request body entry for OpenAPI (required). */
export function jsonBody<T extends z.ZodType>(schema: T) {
  return { required: true, content: { 'application/json': { schema } } } as const;
}

export const bearerSecurity = [{ bearerAuth: [] }];

export const UuidParam = z.uuid().openapi({ example: '2f6d9c1e-8f7b-4e0a-9a57-4d2f8e3c1b20' });
