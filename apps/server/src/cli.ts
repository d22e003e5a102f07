/**
 * Operator commands, run from the repository root:
 *
 *   npm run vaporform -- rotate-master-key [--batch-size N] [--pause-ms N]
 *   npm run vaporform -- master-key-status
 *   npm run vaporform -- generate-master-key
 *
 * They read the same environment as the server (VAPORFORM_DATA_DIR, DATABASE_URL,
 * VAPORFORM_MASTER_KEY). Without DATABASE_URL they use the embedded PostgreSQL: the running
 * server's (found through its postmaster.pid), or one started for the command.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createLogger, type Logger } from './common/logger.ts';
import { createDb, migrate, startEmbeddedPostgres } from './db/index.ts';
import { ActivityService } from './services/activity/index.ts';
import { Metrics } from './services/monitoring/index.ts';
import { createEventBus } from './common/bus.ts';
import { AuthStore } from './services/auth/index.ts';
import { KeyRing, SecretsService, generateMasterKey } from './services/secrets/index.ts';

const usage = `usage: npm run vaporform -- <command>

commands:
  rotate-master-key [--batch-size N] [--pause-ms N]
      add a new master key, re-seal every stored secret with it, retire the old key once
      nothing uses it. Safe to interrupt: run it again to resume.
  master-key-status
      list the master keys, their status and how many values each seals.
  generate-master-key
      print a new random key (for VAPORFORM_MASTER_KEY).
`;

/** Runs one command; resolves to the process exit code. */
async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help') {
    process.stdout.write(usage);
    return command ? 0 : 2;
  }
  if (command === 'generate-master-key') {
    const key = generateMasterKey();
    process.stderr.write(`key id ${key.id}; keep it secret\n`);
    process.stdout.write(`${key.key.toString('base64url')}\n`);
    return 0;
  }
  if (command !== 'rotate-master-key' && command !== 'master-key-status') {
    process.stderr.write(`vaporform: unknown command "${command}"\n\n${usage}`);
    return 2;
  }
  const options = parseOptions(rest);
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`vaporform: invalid configuration: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  // Operator output goes to stdout; the log (warnings and worse) to stderr.
  const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, process.stderr);
  return withDatabase(config, log, async (db, pool) => {
    await migrate(pool, log);
    const bus = createEventBus(undefined, log);
    const secrets = new SecretsService({
      db,
      keyring: new KeyRing({
        dataDir: config.dataDir,
        envKeys: config.masterKey,
        createFile: true,
      }),
      activity: new ActivityService(db),
      bus,
      metrics: new Metrics(),
      log,
    });
    secrets.addSealedColumn(new AuthStore(db).mfaSecretColumn());
    try {
      await secrets.start();
      if (command === 'master-key-status') {
        printStatus(await secrets.keyStatus());
        return 0;
      }
      const totals = new Map<string, number>();
      const report = await secrets.rotateMasterKey({
        batchSize: options.batchSize,
        pauseMs: options.pauseMs,
        onProgress: (p) => {
          totals.set(p.column, (totals.get(p.column) ?? 0) + p.resealed);
          process.stdout.write(
            `resealed ${p.resealed} in ${p.column} (${totals.get(p.column)} so far)${p.failed ? `, ${p.failed} would not open` : ''}\n`,
          );
        },
      });
      process.stdout.write(
        `${report.resumed ? 'resumed the rotation to' : 'rotated to'} master key ${report.activeKeyId}` +
          `${report.generated ? ' (generated into the key file)' : ''}: ${report.resealed} values re-sealed\n`,
      );
      for (const id of report.retired) process.stdout.write(`retired master key ${id}\n`);
      for (const [id, n] of Object.entries(report.stillInUse)) {
        process.stdout.write(`master key ${id} still seals ${n} values: not retired; run again\n`);
      }
      if (report.failed) {
        process.stderr.write(`${report.failed} values would not open: they keep their old key\n`);
        return 3;
      }
      if (report.retired.length && !existsSync(path.join(config.dataDir, 'keys', 'master-keys'))) {
        process.stdout.write('you may now drop the retired keys from VAPORFORM_MASTER_KEY\n');
      }
      return Object.keys(report.stillInUse).length ? 3 : 0;
    } finally {
      await bus.close();
    }
  });
}

function parseOptions(args: string[]): { batchSize?: number; pauseMs?: number } {
  const options: { batchSize?: number; pauseMs?: number } = {};
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i]!.split('=', 2);
    const value = inline ?? args[++i];
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} needs a whole number`);
    if (flag === '--batch-size' && n >= 1) options.batchSize = n;
    else if (flag === '--pause-ms') options.pauseMs = n;
    else throw new Error(`unknown option ${flag}`);
  }
  return options;
}

function printStatus(keys: Awaited<ReturnType<SecretsService['keyStatus']>>): void {
  for (const k of keys) {
    process.stdout.write(
      `${k.id}  ${k.status.padEnd(8)}  ${String(k.values).padStart(6)} values  ${k.available ? 'available' : 'NOT AVAILABLE'}  since ${k.activatedAt}\n`,
    );
  }
}

async function withDatabase(
  config: Config,
  log: Logger,
  fn: (
    db: ReturnType<typeof createDb>['db'],
    pool: ReturnType<typeof createDb>['pool'],
  ) => Promise<number>,
): Promise<number> {
  let url = config.databaseUrl ?? runningEmbeddedUrl(config.dataDir);
  const embedded = url ? undefined : await startEmbeddedPostgres(config.dataDir, log);
  url ??= embedded!.url;
  const { pool, db } = createDb(url, 4);
  try {
    return await fn(db, pool);
  } finally {
    await db.destroy();
    await embedded?.stop();
  }
}

/** The URL of the embedded PostgreSQL a running server started on this data dir, if any. */
function runningEmbeddedUrl(dataDir: string): string | undefined {
  const pidFile = path.join(dataDir, 'pg', 'postmaster.pid');
  const passwordFile = path.join(dataDir, 'pg-password');
  if (!existsSync(pidFile) || !existsSync(passwordFile)) return undefined;
  // postmaster.pid: pid, data dir, start time, port, ...
  const [pid, , , port] = readFileSync(pidFile, 'utf8').split('\n');
  try {
    process.kill(Number(pid), 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  const password = readFileSync(passwordFile, 'utf8').trim();
  return `postgres://vaporform:${encodeURIComponent(password)}@127.0.0.1:${Number(port)}/vaporform`;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`vaporform: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
