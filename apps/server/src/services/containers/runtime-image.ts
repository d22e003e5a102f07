import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import type { Logger } from '../../common/logger.ts';

/** The image project containers use when VAPORFORM_RUNTIME_IMAGE names none. */
export const DEFAULT_RUNTIME_IMAGE = 'vaporform/runtime:node';

/** The unprivileged user of the runtime image (and of every project container). */
export const RUNTIME_UID = 1000;

/** Commands copied from the host into the image (those present; their libraries come along). */
const hostCommands = [
  'sh',
  'bash',
  'env',
  'ls',
  'cat',
  'cp',
  'mv',
  'rm',
  'mkdir',
  'rmdir',
  'ln',
  'chmod',
  'touch',
  'echo',
  'printf',
  'sleep',
  'id',
  'whoami',
  'head',
  'tail',
  'grep',
  'sed',
  'wc',
  'sort',
  'uniq',
  'cut',
  'tr',
  'tee',
  'uname',
  'pwd',
  'stty',
  'tty',
  'ps',
  'kill',
  'clear',
  'find',
  'xargs',
  'date',
  'dirname',
  'basename',
  'readlink',
  'realpath',
  'true',
  'false',
  'test',
  'du',
  'df',
  'hostname',
  'less',
  'diff',
  'tar',
  'gzip',
];

const terminfo = ['x/xterm', 'x/xterm-256color', 'd/dumb', 'v/vt100', 'l/linux', 's/screen'];

/** What {@link buildRuntimeImage} did. */
export interface RuntimeImageResult {
  image: string;
  /** The content-addressed tag (`vaporform/runtime:node-<hash>`). */
  versionTag: string;
  built: boolean;
  seconds: number;
}

/**
 * Builds a usable runtime image (node, npm, a shell, coreutils) offline from this machine's own
 * files: no registry is needed. The image is tagged by a hash of its content, so a second call
 * with nothing changed only re-points `tag`.
 */
export async function buildRuntimeImage(
  docker: Docker,
  options: { tag?: string; force?: boolean; log?: Logger } = {},
): Promise<RuntimeImageResult> {
  const started = performance.now();
  const tag = options.tag ?? DEFAULT_RUNTIME_IMAGE;
  const context = mkdtempSync(path.join(tmpdir(), 'vf-runtime-image-'));
  try {
    const rootfs = path.join(context, 'rootfs');
    assembleRootfs(rootfs);
    writeFileSync(path.join(context, 'Dockerfile'), dockerfile());
    const hash = hashTree(context).slice(0, 16);
    const repo = tag.includes(':') ? tag.slice(0, tag.lastIndexOf(':')) : tag;
    const versionTag = `${repo}:node-${hash}`;
    const seconds = () => Math.round((performance.now() - started) / 100) / 10;
    if (!options.force && (await imageExists(docker, versionTag))) {
      await docker.getImage(versionTag).tag({ repo, tag: tag.slice(repo.length + 1) || 'latest' });
      return { image: tag, versionTag, built: false, seconds: seconds() };
    }
    options.log?.info({ image: tag, versionTag }, 'building the runtime image from host files');
    const stream = await docker.buildImage(
      { context, src: ['Dockerfile', 'rootfs'] },
      { t: versionTag, labels: { 'vaporform.runtime': 'node', 'vaporform.content-hash': hash } },
    );
    await followBuild(docker, stream);
    await docker.getImage(versionTag).tag({ repo, tag: tag.slice(repo.length + 1) || 'latest' });
    return { image: tag, versionTag, built: true, seconds: seconds() };
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}

/** True when the engine has `image` locally. */
export async function imageExists(docker: Docker, image: string): Promise<boolean> {
  try {
    await docker.getImage(image).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

function dockerfile(): string {
  return [
    'FROM scratch',
    'COPY rootfs/ /',
    `COPY --chown=${RUNTIME_UID}:${RUNTIME_UID} rootfs/home/vaporform /home/vaporform`,
    `COPY --chown=${RUNTIME_UID}:${RUNTIME_UID} rootfs/app /app`,
    'ENV PATH=/usr/local/bin:/usr/bin:/bin HOME=/home/vaporform TERM=xterm-256color LANG=C.UTF-8',
    `USER ${RUNTIME_UID}:${RUNTIME_UID}`,
    'WORKDIR /app',
    'CMD ["/bin/sh"]',
    '',
  ].join('\n');
}

/** Lays out the image's filesystem under `rootfs` (merged /usr, like Debian). */
function assembleRootfs(rootfs: string): void {
  for (const dir of ['usr/bin', 'usr/lib', 'usr/lib64', 'usr/sbin', 'usr/local/bin', 'etc']) {
    mkdirSync(path.join(rootfs, dir), { recursive: true });
  }
  for (const link of ['bin', 'lib', 'lib64', 'sbin']) {
    symlinkSync(`usr/${link}`, path.join(rootfs, link));
  }
  for (const dir of ['tmp', 'app', 'home/vaporform', 'proc', 'sys', 'dev', 'etc/ssl/certs']) {
    mkdirSync(path.join(rootfs, dir), { recursive: true });
  }
  chmodSync(path.join(rootfs, 'tmp'), 0o1777);

  const libraries = new Set<string>();
  const node = realpathSync(process.execPath);
  copyFileSync(node, path.join(rootfs, 'usr/local/bin/node'));
  chmodSync(path.join(rootfs, 'usr/local/bin/node'), 0o755);
  for (const lib of sharedLibraries(node)) libraries.add(lib);

  const npmDir = findNpm();
  if (npmDir) {
    copyTree(npmDir, path.join(rootfs, 'usr/local/lib/node_modules/npm'));
    symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', path.join(rootfs, 'usr/local/bin/npm'));
    symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', path.join(rootfs, 'usr/local/bin/npx'));
  }

  for (const name of hostCommands) {
    const found = which(name);
    if (!found) continue;
    const target = path.join(rootfs, 'usr/bin', name);
    if (existsSync(target)) continue;
    copyFileSync(realpathSync(found), target);
    chmodSync(target, 0o755);
    for (const lib of sharedLibraries(found)) libraries.add(lib);
  }
  if (!existsSync(path.join(rootfs, 'usr/bin/sh'))) {
    throw new Error('no /bin/sh on this machine to put in the runtime image');
  }
  for (const lib of libraries) {
    // ldd names the path the loader asks for; store the content there (through /usr).
    const dir = realpathSync(path.dirname(lib));
    const target = path.join(rootfs, dir, path.basename(lib));
    mkdirSync(path.dirname(target), { recursive: true });
    if (!existsSync(target)) copyFileSync(realpathSync(lib), target);
  }
  for (const entry of terminfo) {
    for (const base of ['/usr/share/terminfo', '/lib/terminfo']) {
      const source = path.join(base, entry);
      if (!existsSync(source)) continue;
      const target = path.join(rootfs, 'usr/share/terminfo', entry);
      mkdirSync(path.dirname(target), { recursive: true });
      copyFileSync(realpathSync(source), target);
      break;
    }
  }
  const certs = '/etc/ssl/certs/ca-certificates.crt';
  if (existsSync(certs))
    copyFileSync(certs, path.join(rootfs, 'etc/ssl/certs/ca-certificates.crt'));

  writeFileSync(
    path.join(rootfs, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\n' +
      `vaporform:x:${RUNTIME_UID}:${RUNTIME_UID}:Vaporform:/home/vaporform:/bin/bash\n` +
      'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n',
  );
  writeFileSync(
    path.join(rootfs, 'etc/group'),
    `root:x:0:\nvaporform:x:${RUNTIME_UID}:\nnogroup:x:65534:\n`,
  );
  writeFileSync(
    path.join(rootfs, 'etc/nsswitch.conf'),
    'passwd: files\ngroup: files\nhosts: files dns\n',
  );
  writeFileSync(
    path.join(rootfs, 'home/vaporform/.bashrc'),
    "PS1='\\u@vaporform:\\w\\$ '\nalias ll='ls -l'\n",
  );
  writeFileSync(path.join(rootfs, 'app/.keep'), '');
}

/** The npm package directory of this Node.js installation, if there is one. */
function findNpm(): string | undefined {
  const candidates = [
    path.join(path.dirname(realpathSync(process.execPath)), '..', 'lib', 'node_modules', 'npm'),
    '/usr/lib/node_modules/npm',
    '/usr/local/lib/node_modules/npm',
  ];
  const npm = which('npm');
  if (npm) candidates.unshift(path.resolve(path.dirname(realpathSync(npm)), '..'));
  return candidates.find((dir) => existsSync(path.join(dir, 'bin', 'npm-cli.js')));
}

function which(name: string): string | undefined {
  for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin', '/usr/local/bin']) {
    const candidate = path.join(dir, name);
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The shared libraries `binary` loads (ldd), including the dynamic loader. */
function sharedLibraries(binary: string): string[] {
  let out: string;
  try {
    out = execFileSync('ldd', [binary], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return []; // static binary, or no ldd
  }
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const match = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (match?.[1]) libs.push(match[1]);
  }
  return libs;
}

function copyTree(source: string, target: string): void {
  mkdirSync(target, { recursive: true });
  for (const entry of readdirSync(source, { withFileTypes: true })) {
    const from = path.join(source, entry.name);
    const to = path.join(target, entry.name);
    if (entry.isSymbolicLink()) symlinkSync(readlinkSync(from), to);
    else if (entry.isDirectory()) copyTree(from, to);
    else if (entry.isFile()) {
      copyFileSync(from, to);
      chmodSync(to, statSync(from).mode & 0o777);
    }
  }
}

/** A hash of every path, mode and byte under `dir`, in a stable order. */
function hashTree(dir: string): string {
  const hash = createHash('sha256');
  const walk = (current: string) => {
    for (const name of readdirSync(current).sort()) {
      const full = path.join(current, name);
      const stat = lstatSync(full);
      hash.update(`${path.relative(dir, full)}\0${stat.mode}\0`);
      if (stat.isSymbolicLink()) hash.update(readlinkSync(full));
      else if (stat.isDirectory()) walk(full);
      else hash.update(readFileSync(full));
    }
  };
  walk(dir);
  return hash.digest('hex');
}

/** Waits for a build (or pull) stream to end; rejects with the engine's error message. */
export function followBuild(docker: Docker, stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null, output: { error?: string; errorDetail?: { message?: string } }[]) => {
        if (err) return reject(err);
        const failed = output.find((o) => o.error || o.errorDetail);
        if (failed) reject(new Error(failed.errorDetail?.message ?? failed.error));
        else resolve();
      },
    );
  });
}
