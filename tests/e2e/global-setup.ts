// Builds the web IDE once before any browser test file (the server serves apps/web/dist).
// Here rather than in a beforeAll: a build takes minutes on a loaded 2-core machine and, added to
// a server start, overran the 300 s hook timeout; global setup has no timeout of its own.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './server.ts';

export default async function setup(): Promise<void> {
  const started = Date.now();
  // Asynchronously: vitest's RPC with its workers must keep answering meanwhile.
  const build = await promisify(execFile)(
    process.execPath,
    [path.join(repoRoot, 'scripts', 'ensure-web.mjs')],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  process.stdout.write(build.stdout + build.stderr);
  const s = ((Date.now() - started) / 1000).toFixed(1);
  if (build.stdout.includes('building')) console.log(`e2e: web IDE build took ${s} s`);
}
