import { ConfigError, loadConfig } from './config.ts';
import { createLogger } from './common/logger.ts';
import { startTelemetry } from './common/telemetry.ts';
import { createDb, migrate, startEmbeddedPostgres, type EmbeddedDatabase } from './db/index.ts';
import { composeServices } from './compose.ts';
import { createApp } from './http/app.ts';
import { serveApp } from './http/server.ts';

/** Composition root: config → database → services → HTTP → listen; SIGTERM/SIGINT/SIGHUP stop it all. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`vaporform: invalid configuration: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  const telemetry = startTelemetry(process.env, log);

  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    embedded = await startEmbeddedPostgres(config.dataDir, log);
    databaseUrl = embedded.url;
  }
  // DATABASE_DIRECT_URL: DATABASE_URL is a transaction pooler; what needs a session goes direct.
  const directUrl =
    config.databaseDirectUrl && config.databaseDirectUrl !== databaseUrl
      ? config.databaseDirectUrl
      : undefined;
  const { pool, db } = createDb(databaseUrl, 20, { pooled: directUrl !== undefined });
  telemetry?.tracePool(pool);
  const direct = directUrl ? createDb(directUrl, 5) : undefined;
  await migrate(direct?.pool ?? pool, log);

  const services = await composeServices({ config, log, pool, db, directPool: direct?.pool });
  const app = createApp(services);
  telemetry?.traceApp(app);
  const server = serveApp(
    app,
    { port: config.port, hostname: config.host, hostUpgrades: services.hostUpgrades },
    (info) => {
      log.info(
        {
          port: info.port,
          host: config.host,
          url: config.publicUrl,
          database: embedded ? 'embedded' : 'external',
        },
        `Vaporform is listening on ${config.publicUrl}`,
      );
    },
  );

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 15_000).unref();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Open streams (the dashboard's GET /api/me/events, a chat) get 2 s, then are cut.
    setTimeout(() => server.closeAllConnections(), 2_000).unref();
    await closed;
    await services.close();
    await telemetry?.shutdown();
    await db.destroy();
    await direct?.db.destroy();
    await embedded?.stop();
    clearTimeout(force);
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  // A closed terminal: stop in order too (the embedded PostgreSQL has its own process group).
  process.on('SIGHUP', () => void shutdown('SIGHUP'));
}

main().catch((err: unknown) => {
  process.stderr.write(
    `vaporform: failed to start: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(1);
});
