import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { AppError, type ErrorCode } from '../common/errors.ts';
import { databaseUnavailable, isDatabaseUnreachable } from '../db/connection-errors.ts';

/** The one place errors become responses: `{error:{code,message,details?}}`, never a stack. */
export function renderError(err: unknown, c: Context): Response {
  if (err instanceof AppError) {
    return respond(c, err.status, err.code, err.message, err.details, err.headers);
  }
  if (err instanceof HTTPException) {
    // Raised by hono itself, e.g. a body that is not valid JSON.
    const status = err.status;
    const code: ErrorCode =
      status === 413
        ? 'too_large'
        : status === 401
          ? 'unauthenticated'
          : status === 404
            ? 'not_found'
            : 'invalid_request';
    const message =
      status === 400 ? 'The request body is not valid JSON' : err.message || 'Request refused';
    return respond(c, status >= 500 ? 400 : status, code, message);
  }
  if (isBodyParseError(err)) {
    return respond(c, 400, 'invalid_request', 'The request body is not valid JSON');
  }
  if (isDatabaseUnreachable(err)) {
    // Down or restarting (the embedded server is restarted automatically): retry, not a bug.
    // One short line per request (no stack: an outage answers many), the driver's words kept.
    const unavailable = databaseUnavailable(err);
    const cause = err as { message?: unknown; code?: unknown };
    c.var.log?.warn(
      { cause: { message: String(cause.message), errorCode: cause.code } },
      'database unreachable',
    );
    return respond(c, 503, unavailable.code, unavailable.message, undefined, unavailable.headers);
  }
  c.var.log?.error({ err }, 'unhandled error');
  return respond(c, 500, 'internal', 'Something went wrong on our side; it has been logged');
}

function respond(
  c: Context,
  status: number,
  code: ErrorCode,
  message: string,
  details?: unknown,
  headers?: Record<string, string>,
): Response {
  for (const [k, v] of Object.entries(headers ?? {})) c.header(k, v);
  const error = details === undefined ? { code, message } : { code, message, details };
  return c.json({ error }, status as ContentfulStatusCode);
}

function isBodyParseError(err: unknown): boolean {
  return err instanceof SyntaxError && /JSON/i.test(err.message);
}
