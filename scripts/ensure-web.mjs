// Builds the web IDE (apps/web → apps/web/dist) when its sources changed since the last build,
// so `npm start` on a fresh clone serves the IDE and a restart with a current build stays fast.
// The build records a hash of its inputs in dist/.build-hash. Usage: node scripts/ensure-web.mjs [--force]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const web = path.join(root, 'apps', 'web');
const dist = path.join(web, 'dist');
const stamp = path.join(dist, '.build-hash');

/** Every input of the build: sources, config, and the versions of what it bundles. */
function inputsHash() {
  // Bump when the way the build runs changes (v2: always a production build).
  const hash = createHash('sha256').update('build-v2\0');
  const files = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (!/\.test\.tsx?$/.test(entry.name)) files.push(p);
    }
  };
  walk(path.join(web, 'src'));
  for (const f of ['index.html', 'vite.config.ts', 'package.json', 'tsconfig.json']) {
    if (existsSync(path.join(web, f))) files.push(path.join(web, f));
  }
  files.sort();
  for (const f of files) {
    hash.update(path.relative(web, f)).update('\0').update(readFileSync(f)).update('\0');
  }
  const require = createRequire(path.join(web, 'package.json'));
  const pkg = JSON.parse(readFileSync(path.join(web, 'package.json'), 'utf8'));
  for (const name of Object.keys({ ...pkg.dependencies, ...pkg.devDependencies }).sort()) {
    try {
      hash.update(`${name}@${findVersion(require, name)}\0`);
    } catch {
      hash.update(`${name}@missing\0`);
    }
  }
  return hash.digest('hex');
}

function findVersion(require, name) {
  // Some packages do not export package.json: walk up from the resolved entry.
  let dir = path.dirname(require.resolve(name));
  for (let i = 0; i < 10; i++) {
    const p = path.join(dir, 'package.json');
    if (existsSync(p)) {
      const json = JSON.parse(readFileSync(p, 'utf8'));
      if (json.name === name) return json.version;
    }
    dir = path.dirname(dir);
  }
  return 'unknown';
}

const force = process.argv.includes('--force');
const want = inputsHash();
const have = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : '';
if (!force && have === want && existsSync(path.join(dist, 'index.html'))) {
  process.exit(0);
}

let viteBin;
try {
  const require = createRequire(path.join(web, 'package.json'));
  const vitePkg = require.resolve('vite/package.json');
  viteBin = path.join(path.dirname(vitePkg), JSON.parse(readFileSync(vitePkg, 'utf8')).bin.vite);
} catch {
  console.error('vaporform: vite is not installed (npm ci installs it); the IDE is not built.');
  process.exit(existsSync(path.join(dist, 'index.html')) ? 0 : 1);
}

console.log('vaporform: building the web IDE (apps/web)…');
const started = Date.now();
const result = spawnSync(process.execPath, [viteBin, 'build', '--logLevel', 'warn'], {
  cwd: web,
  stdio: 'inherit',
  // A production build even when called from a test runner (NODE_ENV=test bundles React's
  // development build, twice the size).
  env: { ...process.env, NODE_ENV: 'production' },
});
if (result.status !== 0) {
  console.error('vaporform: the web IDE build failed (see above).');
  process.exit(result.status ?? 1);
}
writeFileSync(stamp, want + '\n');
const size = statSync(path.join(dist, 'index.html')).size;
console.log(
  `vaporform: web IDE built in ${((Date.now() - started) / 1000).toFixed(1)} s (index.html ${size} B)`,
);
