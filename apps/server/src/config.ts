import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

/** Raised when an environment variable is missing or malformed; the message names it. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const optionalUrl = (protocols: string[]) =>
  z
    .string()
    .optional()
    .refine((v) => v === undefined || v === '' || isUrlWith(v, protocols), {
      message: `must be a URL (${protocols.join(', ')})`,
    })
    .transform((v) => (v ? v : undefined));

function isUrlWith(value: string, protocols: string[]): boolean {
  try {
    return protocols.includes(new URL(value).protocol.replace(/:$/, ''));
  } catch {
    return false;
  }
}

/** Each comma/space separated entry is 32 bytes as hex or base64(url) (secrets/keyring.ts parses them). */
function isMasterKeyList(value: string): boolean {
  const entries = value.split(/[\s,]+/).filter(Boolean);
  return entries.every(
    (e) =>
      /^[0-9a-fA-F]{64}$/.test(e) ||
      (/^[A-Za-z0-9+/_-]{43}=?$/.test(e) &&
        Buffer.from(e.replace(/=$/, ''), 'base64').length === 32),
  );
}

const intFromEnv = (fallback: number, min: number, max: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return fallback;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `must be an integer from ${min} to ${max}` });
        return z.NEVER;
      }
      return n;
    });

const envSchema = z.object({
  PORT: intFromEnv(4000, 0, 65535),
  HOST: z.string().min(1).default('127.0.0.1'),
  VAPORFORM_DATA_DIR: z.string().min(1).default('./.vaporform'),
  DATABASE_URL: optionalUrl(['postgres', 'postgresql']),
  DATABASE_DIRECT_URL: optionalUrl(['postgres', 'postgresql']),
  REDIS_URL: optionalUrl(['redis', 'rediss']),
  SUPABASE_URL: optionalUrl(['http', 'https']),
  SUPABASE_JWT_SECRET: z.string().optional(),
  VAPORFORM_RUNTIME: z.enum(['auto', 'docker', 'process', 'kubernetes']).default('auto'),
  DOCKER_HOST: z.string().optional(),
  DOCKER_TLS_VERIFY: z.string().optional(),
  DOCKER_CERT_PATH: z.string().optional(),
  VAPORFORM_DOCKER_PORTS_HOST: z
    .string()
    .optional()
    .refine((v) => v === undefined || v === '' || /^[A-Za-z0-9.:[\]-]+$/.test(v), {
      message: 'must be a host name or an IP address',
    }),
  VAPORFORM_RUNTIME_IMAGE: z.string().optional(),
  VAPORFORM_PUBLIC_URL: optionalUrl(['http', 'https']),
  JWT_SECRET: z
    .string()
    .optional()
    .refine((v) => v === undefined || v === '' || v.length >= 32, {
      message: 'must be at least 32 characters',
    }),
  VAPORFORM_MASTER_KEY: z
    .string()
    .optional()
    .refine((v) => v === undefined || isMasterKeyList(v), {
      message:
        'must be 32-byte keys in hex (64 digits) or base64, comma-separated, newest first (`npm run vaporform -- generate-master-key` prints one)',
    }),
  ANTHROPIC_API_KEY: z.string().optional(),
  ANTHROPIC_BASE_URL: optionalUrl(['http', 'https']),
  OPENAI_API_KEY: z.string().optional(),
  OPENAI_BASE_URL: optionalUrl(['http', 'https']),
  VAPORFORM_AI_MODEL: z.string().min(1).default('claude-sonnet-5-5'),
  VAPORFORM_AI_TOKEN_BUDGET: intFromEnv(400_000, 1_000, 100_000_000),
  VAPORFORM_AI_MAX_STEPS: intFromEnv(40, 1, 1_000),
  VAPORFORM_AI_LOOP_LIMIT: intFromEnv(3, 2, 100),
  VAPORFORM_AI_MAX_OUTPUT_TOKENS: intFromEnv(8192, 256, 200_000),
  VAPORFORM_AI_LEASE_SECONDS: intFromEnv(60, 1, 3_600),
  VAPORFORM_AI_JOB_ATTEMPTS: intFromEnv(3, 1, 20),
  LOG_LEVEL: z.enum(logLevels).default('info'),
  VAPORFORM_TRUSTED_PROXIES: z.string().default(''),
  VAPORFORM_LOGIN_LIMIT_PER_IP: intFromEnv(50, 1, 1_000_000),
  VAPORFORM_LOGIN_LIMIT_PER_ACCOUNT: intFromEnv(10, 1, 1_000_000),
  VAPORFORM_LOGIN_LIMIT_WINDOW_SECONDS: intFromEnv(900, 1, 86_400),
  VAPORFORM_BODY_LIMIT_BYTES: intFromEnv(1024 * 1024, 1024, 1024 * 1024 * 1024),
  VAPORFORM_RUNTIME_IMAGES: z
    .string()
    .default('python=python:3.12-slim,go=golang:1.23-bookworm')
    .refine((v) => v.split(',').every((p) => !p.trim() || /^[a-z0-9_-]+=\S+$/.test(p.trim())), {
      message: 'must be comma-separated family=image pairs (python=python:3.12-slim)',
    }),
  VAPORFORM_WARM_POOL_SIZE: intFromEnv(0, 0, 200),
  VAPORFORM_RECONCILE_SECONDS: intFromEnv(30, 0, 86_400),
  VAPORFORM_STATS_SECONDS: intFromEnv(30, 0, 86_400),
  VAPORFORM_PIDS_LIMIT: intFromEnv(512, 16, 1_000_000),
  VAPORFORM_MAX_FILE_BYTES: intFromEnv(5 * 1024 * 1024, 1, 1024 * 1024 * 1024),
  VAPORFORM_WORKSPACE_IGNORE: z
    .string()
    .default('node_modules,.git,dist,build,__pycache__,.venv')
    .refine((v) => v.split(',').every((n) => !/[/\\]/.test(n) && n.trim() !== '..'), {
      message: 'must be comma-separated names (node_modules,.git), not paths',
    }),
  VAPORFORM_WORKSPACE_WATCH: z.enum(['inotify', 'poll']).default('inotify'),
  VAPORFORM_IMPORT_MAX_BYTES: intFromEnv(100 * 1024 * 1024, 1024, 8 * 1024 * 1024 * 1024),
  VAPORFORM_IMPORT_MAX_ENTRIES: intFromEnv(10_000, 1, 1_000_000),
  VAPORFORM_IMPORT_MAX_UNCOMPRESSED_BYTES: intFromEnv(512 * 1024 * 1024, 1, 64 * 1024 ** 3),
  VAPORFORM_IMPORT_MAX_RATIO: intFromEnv(100, 2, 100_000),
});

/** The whole server configuration, parsed once at start-up. */
export interface Config {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
  /**
   * A session-mode connection to the same database, set when `databaseUrl` is a pooler in
   * transaction mode (PgBouncer, Supavisor): migrations, the job queue and Terraform's runs use it.
   */
  databaseDirectUrl: string | undefined;
  redisUrl: string | undefined;
  /** Supabase Auth as an identity provider (its access tokens accepted beside ours). */
  supabase: { url: string; jwtSecret: string | undefined } | undefined;
  runtime: 'auto' | 'docker' | 'process' | 'kubernetes';
  dockerHost: string | undefined;
  /** DOCKER_TLS_VERIFY: the engine is reached over TLS with `ca.pem`, `cert.pem`, `key.pem`. */
  dockerTls: { certPath: string } | undefined;
  runtimeImage: string | undefined;
  publicUrl: string;
  jwtSecret: string;
  masterKey: string | undefined;
  ai: {
    anthropicApiKey: string | undefined;
    anthropicBaseUrl: string | undefined;
    openaiApiKey: string | undefined;
    openaiBaseUrl: string | undefined;
    model: string;
    /** Tokens (input + output, all turns) one request may use before it is stopped. */
    tokenBudget: number;
    /** Model turns one request may take. */
    maxSteps: number;
    /** The same failing tool call this many times stops the run. */
    loopLimit: number;
    maxOutputTokens: number;
    /** A queued run's lease: a worker silent this long is presumed dead and its job retried. */
    leaseSeconds: number;
    /** Deliveries of a queued request before it is given up (at-least-once). */
    jobAttempts: number;
  };
  logLevel: (typeof logLevels)[number];
  /** Peers whose X-Forwarded-For is believed (exact IPs). */
  trustedProxies: string[];
  loginLimits: { perIp: number; perAccount: number; windowSeconds: number };
  bodyLimitBytes: number;
  /** Project containers (services/containers). */
  containers: {
    /** Image per runtime family besides node (`runtimeImage` is node's). */
    images: Record<string, string>;
    /** Started containers kept ready for the next project start (docker, as root). */
    warmPoolSize: number;
    /** Reconciler period; 0 runs it only at start-up. */
    reconcileSeconds: number;
    /** Resource sampling period; 0 disables it. */
    statsSeconds: number;
    pidsLimit: number;
    /**
     * A remote engine (DOCKER_HOST on another machine): dev servers are published on every
     * interface of the engine and reached at this host. Undefined: 127.0.0.1 on both sides.
     */
    portsHost: string | undefined;
  };
  /** Project files (services/files). */
  files: {
    /** Largest file, in bytes (413 beyond). */
    maxFileBytes: number;
    /** Names ignored anywhere in a workspace path: never imported, not even watched. */
    workspaceIgnore: string[];
    /**
     * How changes made inside workspaces are noticed: inotify, or `poll` (each workspace walked
     * every 2 s) for a data dir on a network volume that other machines' containers write.
     */
    workspaceWatch: 'inotify' | 'poll';
    /** Largest zip upload (compressed). */
    importMaxBytes: number;
    importMaxEntries: number;
    importMaxUncompressedBytes: number;
    /** Largest uncompressed/compressed ratio accepted (zip bombs). */
    importMaxRatio: number;
  };
}

/**
 * Parses and validates the environment.
 * @throws {ConfigError} naming the first offending variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(String(issue.path[0] ?? 'environment'), issue.message);
  }
  const e = parsed.data;
  const dataDir = resolveDataDir(e.VAPORFORM_DATA_DIR, env);
  const publicUrl = (e.VAPORFORM_PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/$/, '');
  return {
    port: e.PORT,
    host: e.HOST,
    dataDir,
    databaseUrl: e.DATABASE_URL,
    databaseDirectUrl: e.DATABASE_URL ? e.DATABASE_DIRECT_URL : undefined,
    redisUrl: e.REDIS_URL,
    supabase: e.SUPABASE_URL
      ? { url: e.SUPABASE_URL, jwtSecret: e.SUPABASE_JWT_SECRET || undefined }
      : undefined,
    runtime: e.VAPORFORM_RUNTIME,
    dockerHost: e.DOCKER_HOST || undefined,
    // Docker's own convention: any non-empty DOCKER_TLS_VERIFY, certificates in DOCKER_CERT_PATH.
    dockerTls: e.DOCKER_TLS_VERIFY
      ? { certPath: e.DOCKER_CERT_PATH || path.join(os.homedir(), '.docker') }
      : undefined,
    runtimeImage: e.VAPORFORM_RUNTIME_IMAGE || undefined,
    publicUrl,
    jwtSecret: e.JWT_SECRET || readOrCreateSecret(dataDir, 'jwt-secret'),
    masterKey: e.VAPORFORM_MASTER_KEY || undefined,
    ai: {
      anthropicApiKey: e.ANTHROPIC_API_KEY || undefined,
      anthropicBaseUrl: e.ANTHROPIC_BASE_URL,
      openaiApiKey: e.OPENAI_API_KEY || undefined,
      openaiBaseUrl: e.OPENAI_BASE_URL,
      model: e.VAPORFORM_AI_MODEL,
      tokenBudget: e.VAPORFORM_AI_TOKEN_BUDGET,
      maxSteps: e.VAPORFORM_AI_MAX_STEPS,
      loopLimit: e.VAPORFORM_AI_LOOP_LIMIT,
      maxOutputTokens: e.VAPORFORM_AI_MAX_OUTPUT_TOKENS,
      leaseSeconds: e.VAPORFORM_AI_LEASE_SECONDS,
      jobAttempts: e.VAPORFORM_AI_JOB_ATTEMPTS,
    },
    logLevel: e.LOG_LEVEL,
    trustedProxies: e.VAPORFORM_TRUSTED_PROXIES.split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    loginLimits: {
      perIp: e.VAPORFORM_LOGIN_LIMIT_PER_IP,
      perAccount: e.VAPORFORM_LOGIN_LIMIT_PER_ACCOUNT,
      windowSeconds: e.VAPORFORM_LOGIN_LIMIT_WINDOW_SECONDS,
    },
    bodyLimitBytes: e.VAPORFORM_BODY_LIMIT_BYTES,
    containers: {
      images: Object.fromEntries(
        e.VAPORFORM_RUNTIME_IMAGES.split(',')
          .map((p) => p.trim())
          .filter(Boolean)
          .map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]),
      ),
      warmPoolSize: e.VAPORFORM_WARM_POOL_SIZE,
      reconcileSeconds: e.VAPORFORM_RECONCILE_SECONDS,
      statsSeconds: e.VAPORFORM_STATS_SECONDS,
      pidsLimit: e.VAPORFORM_PIDS_LIMIT,
      portsHost: e.VAPORFORM_DOCKER_PORTS_HOST || undefined,
    },
    files: {
      maxFileBytes: e.VAPORFORM_MAX_FILE_BYTES,
      workspaceIgnore: e.VAPORFORM_WORKSPACE_IGNORE.split(',')
        .map((n) => n.trim())
        .filter(Boolean),
      workspaceWatch: e.VAPORFORM_WORKSPACE_WATCH,
      importMaxBytes: e.VAPORFORM_IMPORT_MAX_BYTES,
      importMaxEntries: e.VAPORFORM_IMPORT_MAX_ENTRIES,
      importMaxUncompressedBytes: e.VAPORFORM_IMPORT_MAX_UNCOMPRESSED_BYTES,
      importMaxRatio: e.VAPORFORM_IMPORT_MAX_RATIO,
    },
  };
}

/**
 * A relative data dir is taken from where the person ran npm (`INIT_CWD`: the repository root
 * for `npm start`), not from the server's workspace folder npm switches to. A data dir an older
 * version left in the working directory, with none at the new place, is still used.
 */
export function resolveDataDir(dir: string, env: NodeJS.ProcessEnv): string {
  if (path.isAbsolute(dir)) return dir;
  const wanted = path.resolve(env.INIT_CWD ?? process.cwd(), dir);
  const legacy = path.resolve(dir);
  if (legacy !== wanted && !existsSync(wanted) && existsSync(legacy)) return legacy;
  return wanted;
}

/** Reads a random secret kept in the data dir, creating it (mode 0600) on first use. */
export function readOrCreateSecret(dataDir: string, name: string): string {
  const file = path.join(dataDir, 'keys', name);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dataDir, { recursive: true });
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const secret = randomBytes(48).toString('base64url');
  try {
    writeFileSync(file, secret + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return readFileSync(file, 'utf8').trim();
}
