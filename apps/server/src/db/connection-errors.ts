import { AppError } from '../common/errors.ts';

/** Socket-level failures: the peer is down, went away or cannot be reached. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * SQLSTATEs that say the server, not the statement, failed: class 08 (connection exception),
 * 57P01–57P03 (admin shutdown, crash shutdown, starting up / shutting down), 57P05 (idle session
 * timeout), 53300 (too many connections).
 */
const SERVER_STATES = /^(08...|57P0[1235]|53300)$/;

/** What node-postgres says when a connection ends under it or cannot be had. */
const DRIVER_MESSAGES =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed and is not queryable|Cannot use a pool after calling end)/;

/**
 * True when `err` (or an error in its `cause` chain) is a connection-level database failure —
 * the server is down, restarting or unreachable — rather than a fault of the statement: such a
 * request may succeed if retried once the database is back.
 */
export function isDatabaseUnreachable(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 8; depth++) {
    const { code, message, errors } = e as { code?: unknown; message?: unknown; errors?: unknown };
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || SERVER_STATES.test(code)))
      return true;
    if (typeof message === 'string' && DRIVER_MESSAGES.test(message)) return true;
    // Node's happy-eyeballs connect reports every failed address in an AggregateError.
    if (Array.isArray(errors) && errors.some((inner) => isDatabaseUnreachable(inner))) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** The contract's 503 `unavailable` for a database that cannot be reached; keeps `cause`. */
export function databaseUnavailable(cause: unknown): AppError {
  const err = new AppError(
    'unavailable',
    'The database is not reachable at the moment; retry shortly',
    undefined,
    { 'Retry-After': '1' },
  );
  err.cause = cause;
  return err;
}
