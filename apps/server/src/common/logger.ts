import { AsyncLocalStorage } from 'node:async_hooks';
import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * Keys whose values never reach a log line, wherever they sit in a logged object.
 * pino's redaction matches exact paths, so the list names each depth we log at.
 */
const secretKeys = [
  'password',
  'currentPassword',
  'newPassword',
  'token',
  'refreshToken',
  'accessToken',
  'authorization',
  'cookie',
  'apiKey',
  'api_key',
  'secret',
  'totp',
  'code',
  'webhookSecret',
  'masterKey',
  'jwtSecret',
  'databaseUrl',
  'redisUrl',
  'password_hash',
  'mfa_secret',
  // Project environment values (secrets service) and what runtimes hand to containers.
  'vars',
  'env',
  'Env',
  'environment',
  'plaintext',
  'webhook_secret',
];

export const redactPaths = [
  ...secretKeys,
  ...secretKeys.map((k) => `*.${k}`),
  ...secretKeys.map((k) => `*.*.${k}`),
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
];

/** The id of the HTTP request being served, for every log line written while serving it. */
export const requestIdScope = new AsyncLocalStorage<string>();

/** Creates the process logger: JSON lines, secrets redacted, the current request id on each. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: redactPaths, censor: '[redacted]' },
      base: { service: 'vaporform' },
      timestamp: pino.stdTimeFunctions.isoTime,
      mixin: () => {
        const requestId = requestIdScope.getStore();
        return requestId ? { requestId } : {};
      },
    },
    destination,
  );
}
