/** The closed list of error codes the API answers with (API.md › General rules). */
export const errorStatus = {
  invalid_request: 400,
  unauthenticated: 401,
  mfa_required: 401,
  token_reused: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
  ai_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof errorStatus;

/** An expected failure with a contract code; rendered as `{error:{code,message,details?}}`. */
export class AppError extends Error {
  readonly status: (typeof errorStatus)[ErrorCode];
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    /** Extra response headers, e.g. Retry-After. */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'AppError';
    this.status = errorStatus[code];
  }
}

/** Small factories so domain code reads `throw errors.notFound('project')`. */
export const errors = {
  invalid(message: string, details?: unknown): AppError {
    return new AppError('invalid_request', message, details);
  },
  unauthenticated(message = 'Authentication required'): AppError {
    return new AppError('unauthenticated', message);
  },
  mfaRequired(): AppError {
    return new AppError('mfa_required', 'A valid one-time code (totp) is required');
  },
  tokenReused(): AppError {
    return new AppError(
      'token_reused',
      'This refresh token was already used; the session has been revoked',
    );
  },
  forbidden(message = 'Your role does not allow this'): AppError {
    return new AppError('forbidden', message);
  },
  notFound(what: string): AppError {
    return new AppError('not_found', `${capitalize(what)} not found`);
  },
  conflict(message: string, details?: unknown): AppError {
    return new AppError('conflict', message, details);
  },
  tooLarge(message = 'Request body is too large'): AppError {
    return new AppError('too_large', message);
  },
  rateLimited(retryAfterSeconds: number): AppError {
    const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
    return new AppError(
      'rate_limited',
      `Too many attempts; retry in ${seconds} s`,
      { retryAfterSeconds: seconds },
      { 'Retry-After': String(seconds) },
    );
  },
  unavailable(message: string): AppError {
    return new AppError('unavailable', message);
  },
};

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** True for PostgreSQL unique-violation errors (SQLSTATE 23505). */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const e = err as { code?: string; constraint?: string };
  return e?.code === '23505' && (constraint === undefined || e.constraint === constraint);
}
