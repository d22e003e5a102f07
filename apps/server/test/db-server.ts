// Holds the test run's PostgreSQL server in its own process (started by global-setup.ts):
//   node --import tsx test/db-server.ts <embedded|external> <dir>
// Prints `READY {"adminUrl": ...}` once the server accepts connections, then stops it and removes
// <dir> when its stdin closes (the test run ended or died) or on SIGINT/SIGTERM.
// Why a separate process: a server held by a child whose stdin is the parent's pipe is stopped
// even when the test run is killed.
import { rmSync } from 'node:fs';
import { createLogger } from '../src/common/logger.ts';
import { freePort, startEmbeddedPostgres } from '../src/db/index.ts';
import { startSystemPostgres } from './system-postgres.ts';

const [mode, dir] = process.argv.slice(2);

async function start(): Promise<{ adminUrl: string; stop(): Promise<void> }> {
  if (!dir) throw new Error('usage: db-server.ts <embedded|external> <dir>');
  if (mode === 'external') return startSystemPostgres(dir, await freePort());
  if (mode === 'embedded') {
    const server = await startEmbeddedPostgres(dir, createLogger('silent'));
    const adminUrl = new URL(server.url);
    adminUrl.pathname = '/postgres';
    return { adminUrl: adminUrl.toString(), stop: () => server.stop() };
  }
  throw new Error(`VF_TEST_DB must be "embedded" or "external", not "${mode}"`);
}

try {
  const server = await start();
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= server.stop().then(
      () => {
        rmSync(dir!, { recursive: true, force: true });
        process.exit(0);
      },
      (err: unknown) => {
        console.error(`stopping the test database failed: ${(err as Error).message}`);
        process.exit(1);
      },
    ));
  process.stdin.on('end', () => void stop());
  process.stdin.on('close', () => void stop());
  process.stdin.resume();
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  process.stdout.write(`READY ${JSON.stringify({ adminUrl: server.adminUrl })}\n`);
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}
