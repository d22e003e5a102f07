/**
 * Prints the OpenAPI document the composed server serves at `/openapi.json`, without listening:
 * `node --import tsx apps/server/src/openapi-document.ts > openapi.json`. Used by
 * `npm run contract` (packages/sdk) to snapshot the contract.
 *
 * The app is the real composition (`composeServices` + `createApp`, like main.ts), on a
 * throwaway embedded PostgreSQL in a temp dir (or `VF_CONTRACT_DATABASE_URL`, an empty database
 * it may migrate), with a fixed configuration so the document depends only on the code.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from './config.ts';
import { createLogger } from './common/logger.ts';
import { createDb, migrate, startEmbeddedPostgres, type EmbeddedDatabase } from './db/index.ts';
import { composeServices } from './compose.ts';
import { createApp } from './http/app.ts';

/** The public URL written into the document's `servers` (the documented default). */
const DOCUMENT_PUBLIC_URL = 'http://localhost:4000';

async function main(): Promise<void> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'vf-openapi-'));
  // As root, embedded PostgreSQL runs as the postgres user, which must enter the dir.
  chmodSync(dataDir, 0o755);
  const log = createLogger('error', process.stderr);
  let embedded: EmbeddedDatabase | undefined;
  try {
    let databaseUrl = process.env.VF_CONTRACT_DATABASE_URL;
    if (!databaseUrl) {
      embedded = await startEmbeddedPostgres(dataDir, log);
      databaseUrl = embedded.url;
    }
    // A fixed environment, not process.env: the document must not depend on who runs this.
    const config = loadConfig({
      VAPORFORM_DATA_DIR: dataDir,
      DATABASE_URL: databaseUrl,
      VAPORFORM_PUBLIC_URL: DOCUMENT_PUBLIC_URL,
      VAPORFORM_RUNTIME: 'process',
      VAPORFORM_RECONCILE_SECONDS: '0',
      VAPORFORM_STATS_SECONDS: '0',
      LOG_LEVEL: 'error',
    });
    const { pool, db } = createDb(databaseUrl, 4);
    try {
      await migrate(pool, log);
      const services = await composeServices({ config, log, pool, db });
      try {
        const res = await createApp(services).request('/openapi.json');
        if (!res.ok) throw new Error(`/openapi.json answered ${res.status}`);
        process.stdout.write(`${JSON.stringify(await res.json(), null, 2)}\n`);
      } finally {
        await services.close();
      }
    } finally {
      await db.destroy();
    }
  } finally {
    await embedded?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(
      `openapi-document: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
