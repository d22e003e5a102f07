// Bundles the agent into one file for plain Node.js 18+ (dist/agent.js): `node apps/agent/build.mjs`.
// The server runs this when the bundle is missing or older than its sources.
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export async function buildAgent(outfile = path.join(here, 'dist', 'agent.js')) {
  await build({
    entryPoints: [path.join(here, 'src', 'agent.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node18',
    format: 'cjs',
    minify: false,
    legalComments: 'inline',
    // ws's optional native helpers: absent, it falls back to JavaScript.
    external: ['bufferutil', 'utf-8-validate'],
    logLevel: 'warning',
  });
  return outfile;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.stdout.write(`${await buildAgent(process.argv[2])}\n`);
}
