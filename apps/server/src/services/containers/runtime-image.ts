import { execFileSync, spawn } from 'node:child_process';
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

/**
 * The server image's base (`infra/server.Dockerfile`): the runtime image's files and iptables
 * (the server keeps project containers off the host with it), built offline the same way.
 */
export const SERVER_BASE_IMAGE = 'vaporform/runtime:server';

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
  'mktemp',
  'stat',
  'nproc',
  'seq',
  'expr',
  'sha256sum',
  // What people type first in a terminal.
  'git',
  'curl',
  'which',
  'unzip',
  'nano',
  'python3',
];

/** Commands stored under another name: the first of the host's candidates that exists. */
const renamedCommands: Record<string, string[]> = { vi: ['vim.tiny', 'vim.basic', 'vi'] };

/** Top-level parts of Python's standard library left out of the image (tests, GUI, build kit). */
const pythonSkipped =
  /^(test|idlelib|tkinter|turtledemo|ensurepip|lib2to3|pydoc_data|config-.*|site-packages|dist-packages)$/;

/** git's helpers worth their size (the rest of /usr/lib/git-core is links to git, or scripts). */
const gitHelpers = new Set(['git-remote-http', 'git-sh-i18n--envsubst']);

const terminfo = ['x/xterm', 'x/xterm-256color', 'd/dumb', 'v/vt100', 'l/linux', 's/screen'];

/**
 * `vaporform-watch COMMAND…`: the image's dev-server watcher (project containers run
 * `node --watch…` commands under it). Node 20's own --watch follows each file by inode on Linux,
 * so it misses the second save of a file the server replaces by rename, and its --watch-path
 * dies on a temporary file it may not read; this one watches folders and restarts on code
 * changes only. It prints node's own lines (`Restarting '…'`, `Failed running '…'`), which the
 * supervisor reads.
 */
export const WATCH_COMMAND = 'vaporform-watch';
const watchScript = `#!/usr/local/bin/node
// vaporform-watch COMMAND [ARG…]: runs the command and starts it again when code under the
// working directory changes (.js/.ts files, package.json, .env; node_modules and dot-folders
// aside: data files the program writes restart nothing). It watches folders, not files: a save
// that replaces a file by rename is seen every time, and a file it cannot read is no error.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error('usage: vaporform-watch command [arg…]');
  process.exit(2);
}
const name = args.find((a) => !a.startsWith('-')) || command;
const skip = (entry) => entry === 'node_modules' || (entry.startsWith('.') && entry !== '.env');
const code = (entry) => /\\.[cm]?[jt]sx?$/.test(entry) || entry === 'package.json' || entry === '.env';
const watchers = new Map();
let child = null;
let restarting = false;
let stopping = false;
let timer = null;

function run() {
  child = spawn(command, args, { stdio: 'inherit' });
  child.on('error', (err) => console.error(err.message));
  child.on('exit', (code) => {
    child = null;
    if (stopping) process.exit(0);
    if (restarting) {
      restarting = false;
      run();
      return;
    }
    console.error(
      code === 0 ? \`Completed running '\${name}'\` : \`Failed running '\${name}'\`,
    );
  });
}

function restart() {
  console.error(\`Restarting '\${name}'\`);
  if (!child) return run();
  restarting = true;
  const running = child;
  running.kill('SIGTERM');
  setTimeout(() => running.exitCode === null && running.kill('SIGKILL'), 3000).unref();
}

function watchDir(dir) {
  if (watchers.has(dir)) return;
  let watcher;
  try {
    watcher = fs.watch(dir, (event, file) => {
      if (!file || skip(path.basename(file))) return;
      const full = path.join(dir, file);
      if (event === 'rename') {
        try {
          if (fs.statSync(full).isDirectory()) watchDir(full);
        } catch {
          // gone again
        }
      }
      if (!code(path.basename(file))) return;
      clearTimeout(timer);
      timer = setTimeout(restart, 100);
    });
  } catch {
    return; // unreadable or gone
  }
  watcher.on('error', () => {
    watcher.close();
    watchers.delete(dir);
  });
  watchers.set(dir, watcher);
  let entries = [];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    // unreadable
  }
  for (const e of entries) if (e.isDirectory() && !skip(e.name)) watchDir(path.join(dir, e.name));
}

for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(signal, () => {
    stopping = true;
    if (child) child.kill(signal);
    else process.exit(0);
  });
}
watchDir(process.cwd());
run();
`;

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
  options: {
    tag?: string;
    force?: boolean;
    log?: Logger;
    /** `server`: the server image's base, with iptables ({@link SERVER_BASE_IMAGE}). */
    variant?: 'node' | 'server';
    /**
     * `server`: the node_modules its image will carry; the libraries their native addons
     * (`*.node`) load come along.
     */
    addonsFrom?: string;
  } = {},
): Promise<RuntimeImageResult> {
  const started = performance.now();
  const variant = options.variant ?? 'node';
  const tag = options.tag ?? (variant === 'server' ? SERVER_BASE_IMAGE : DEFAULT_RUNTIME_IMAGE);
  const context = mkdtempSync(path.join(tmpdir(), 'vf-runtime-image-'));
  try {
    const rootfs = path.join(context, 'rootfs');
    assembleRootfs(rootfs);
    if (variant === 'server') addServerParts(rootfs, options.addonsFrom);
    writeFileSync(path.join(context, 'Dockerfile'), dockerfile());
    const hash = hashTree(context).slice(0, 16);
    const repo = tag.includes(':') ? tag.slice(0, tag.lastIndexOf(':')) : tag;
    const versionTag = `${repo}:${variant}-${hash}`;
    const seconds = () => Math.round((performance.now() - started) / 100) / 10;
    if (!options.force && (await imageExists(docker, versionTag))) {
      await docker.getImage(versionTag).tag({ repo, tag: tag.slice(repo.length + 1) || 'latest' });
      return { image: tag, versionTag, built: false, seconds: seconds() };
    }
    options.log?.info({ image: tag, versionTag }, 'building the runtime image from host files');
    const stream = await docker.buildImage(packContext(context), {
      t: versionTag,
      labels: { 'vaporform.runtime': variant, 'vaporform.content-hash': hash },
    });
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

/**
 * The build context as a tar stream with every mode exactly as on disk (dockerode's own packer
 * applies the process umask: /tmp lost its write bits) and root as every file's owner.
 */
function packContext(context: string): NodeJS.ReadableStream {
  const tar = spawn(
    'tar',
    [
      '-C',
      context,
      '--numeric-owner',
      '--owner=0',
      '--group=0',
      '-cf',
      '-',
      'Dockerfile',
      'rootfs',
      'home',
      'app',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  tar.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  tar.on('close', (code) => {
    if (code !== 0)
      tar.stdout.destroy(new Error(`tar of the image context failed: ${stderr.trim()}`));
  });
  return tar.stdout;
}

function dockerfile(): string {
  return [
    'FROM scratch',
    'COPY rootfs/ /',
    // Created by these COPYs, so the directories themselves belong to the user too.
    `COPY --chown=${RUNTIME_UID}:${RUNTIME_UID} home/ /home/vaporform/`,
    `COPY --chown=${RUNTIME_UID}:${RUNTIME_UID} app/ /app/`,
    'ENV PATH=/usr/local/bin:/usr/bin:/bin HOME=/home/vaporform TERM=xterm-256color LANG=C.UTF-8',
    `USER ${RUNTIME_UID}:${RUNTIME_UID}`,
    'WORKDIR /app',
    'CMD ["/bin/sh"]',
    '',
  ].join('\n');
}

/**
 * Lays out the image's filesystem under `rootfs` (merged /usr, like Debian); the user's home
 * and /app go to `home` and `app` beside it.
 */
function assembleRootfs(rootfs: string): void {
  const context = path.dirname(rootfs);
  for (const dir of ['usr/bin', 'usr/lib', 'usr/lib64', 'usr/sbin', 'usr/local/bin', 'etc']) {
    mkdirSync(path.join(rootfs, dir), { recursive: true });
  }
  for (const link of ['bin', 'lib', 'lib64', 'sbin']) {
    symlinkSync(`usr/${link}`, path.join(rootfs, link));
  }
  for (const dir of ['tmp', 'home', 'proc', 'sys', 'dev', 'etc/ssl/certs']) {
    mkdirSync(path.join(rootfs, dir), { recursive: true });
  }
  chmodSync(path.join(rootfs, 'tmp'), 0o1777);

  const libraries = new Set<string>();
  const node = imageNodeBinary();
  copyFileSync(node, path.join(rootfs, 'usr/local/bin/node'));
  chmodSync(path.join(rootfs, 'usr/local/bin/node'), 0o755);
  for (const lib of sharedLibraries(node)) libraries.add(lib);

  const npmDir = findNpm();
  if (npmDir) {
    copyTree(npmDir, path.join(rootfs, 'usr/local/lib/node_modules/npm'));
    symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', path.join(rootfs, 'usr/local/bin/npm'));
    symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', path.join(rootfs, 'usr/local/bin/npx'));
  }

  const commands: [string, string][] = hostCommands.map((name) => [name, name]);
  for (const [name, candidates] of Object.entries(renamedCommands)) {
    const found = candidates.find((c) => which(c));
    if (found) commands.push([name, found]);
  }
  for (const [name, hostName] of commands) {
    const found = which(hostName);
    const target = path.join(rootfs, 'usr/bin', name);
    if (found && !existsSync(target)) copyProgram(found, target, libraries);
  }
  if (existsSync(path.join(rootfs, 'usr/bin/vi')))
    symlinkSync('vi', path.join(rootfs, 'usr/bin/vim'));
  const python = which('python3');
  if (python) addPython(rootfs, realpathSync(python), libraries);
  if (which('git')) addGit(rootfs, libraries);
  if (!existsSync(path.join(rootfs, 'usr/bin/sh'))) {
    throw new Error('no /bin/sh on this machine to put in the runtime image');
  }
  copyLibraries(rootfs, libraries);
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
  const watcher = path.join(rootfs, 'usr/local/bin', WATCH_COMMAND);
  writeFileSync(watcher, watchScript);
  chmodSync(watcher, 0o755);
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
  mkdirSync(path.join(context, 'home'), { recursive: true });
  mkdirSync(path.join(context, 'app'), { recursive: true });
  writeFileSync(
    path.join(context, 'home/.bashrc'),
    "PS1='\\u@vaporform:\\w\\$ '\nalias ll='ls -l'\n",
  );
  writeFileSync(path.join(context, 'app/.keep'), '');
}

/**
 * What the server needs in its image besides node: iptables (nft and legacy, named as on this
 * machine) with its extensions, the libraries of the native addons under `addonsFrom`, and
 * root's home.
 */
function addServerParts(rootfs: string, addonsFrom: string | undefined): void {
  const hostIptables = which('iptables');
  if (!hostIptables) throw new Error('no iptables on this machine to put in the server image');
  const libraries = new Set<string>();
  if (addonsFrom) {
    const addons = execFileSync('find', [addonsFrom, '-name', '*.node', '-type', 'f'], {
      encoding: 'utf8',
      maxBuffer: 16 * 1024 * 1024,
    });
    // Other platforms' prebuilt addons are no ELF for this loader: ldd lists nothing for them.
    for (const addon of addons.split('\n').filter(Boolean)) {
      for (const lib of sharedLibraries(addon)) libraries.add(lib);
    }
  }
  for (const multi of ['xtables-nft-multi', 'xtables-legacy-multi']) {
    const found = which(multi);
    if (found) copyProgram(found, path.join(rootfs, 'usr/sbin', multi), libraries);
  }
  const chosen = path.basename(realpathSync(hostIptables)); // the host's alternative
  for (const name of ['iptables', 'iptables-save', 'iptables-restore']) {
    symlinkSync(chosen, path.join(rootfs, 'usr/sbin', name));
    for (const kind of ['nft', 'legacy']) {
      const multi = `xtables-${kind}-multi`;
      if (existsSync(path.join(rootfs, 'usr/sbin', multi))) {
        symlinkSync(
          multi,
          path.join(rootfs, 'usr/sbin', name.replace('iptables', `iptables-${kind}`)),
        );
      }
    }
  }
  // Matches and targets are loaded at run time from the directory beside libxtables.
  const libxtables = [...libraries].find((l) => path.basename(l).startsWith('libxtables.'));
  const extensions = libxtables && path.join(path.dirname(realpathSync(libxtables)), 'xtables');
  if (extensions && existsSync(extensions)) {
    copyTree(extensions, path.join(rootfs, extensions));
    for (const name of readdirSync(extensions)) {
      for (const lib of sharedLibraries(path.join(extensions, name))) libraries.add(lib);
    }
  }
  copyLibraries(rootfs, libraries);
  // `iptables -w` locks /run/xtables.lock; npm run as root writes its logs under /root.
  mkdirSync(path.join(rootfs, 'run'), { recursive: true });
  mkdirSync(path.join(rootfs, 'root'), { recursive: true });
}

/** Copies a host program to `target` (executable) and notes the libraries it loads. */
function copyProgram(found: string, target: string, libraries: Set<string>): void {
  copyFileSync(realpathSync(found), target);
  chmodSync(target, 0o755);
  for (const lib of sharedLibraries(found)) libraries.add(lib);
}

/**
 * Stores each library where the loader asks for it: ldd names that path, the content is put
 * there (through /usr). One copied before is left as it is.
 */
function copyLibraries(rootfs: string, libraries: Set<string>): void {
  for (const lib of libraries) {
    const dir = realpathSync(path.dirname(lib));
    const target = path.join(rootfs, dir, path.basename(lib));
    mkdirSync(path.dirname(target), { recursive: true });
    if (!existsSync(target)) copyFileSync(realpathSync(lib), target);
  }
}

/** Python 3 with its standard library (no tests, GUI or build kit) and the modules' libraries. */
function addPython(rootfs: string, binary: string, libraries: Set<string>): void {
  const version = path.basename(binary); // python3.11
  const stdlib = path.join('/usr/lib', version);
  if (!/^python3\.\d+$/.test(version) || !existsSync(path.join(stdlib, 'os.py'))) return;
  symlinkSync('python3', path.join(rootfs, 'usr/bin', version));
  symlinkSync('python3', path.join(rootfs, 'usr/bin/python'));
  copyTree(stdlib, path.join(rootfs, stdlib), (rel, isDir) =>
    isDir
      ? !(pythonSkipped.test(rel) || /(^|\/)(__pycache__|tests?)$/.test(rel))
      : !rel.endsWith('.pyc'),
  );
  const dynload = path.join(stdlib, 'lib-dynload');
  if (!existsSync(dynload)) return;
  for (const name of readdirSync(dynload)) {
    if (!name.endsWith('.so')) continue;
    for (const lib of sharedLibraries(path.join(dynload, name))) libraries.add(lib);
  }
}

/** git's helper programs (HTTPS remotes, shell helpers) and the templates `git init` copies. */
function addGit(rootfs: string, libraries: Set<string>): void {
  const core = '/usr/lib/git-core';
  if (!existsSync(core)) return;
  const target = path.join(rootfs, core);
  mkdirSync(target, { recursive: true });
  for (const entry of readdirSync(core, { withFileTypes: true })) {
    const from = path.join(core, entry.name);
    const to = path.join(target, entry.name);
    if (entry.name === 'git') symlinkSync('../../bin/git', to);
    else if (entry.isSymbolicLink()) symlinkSync(readlinkSync(from), to);
    else if (entry.isDirectory()) copyTree(from, to);
    else if (entry.isFile() && (gitHelpers.has(entry.name) || statSync(from).size < 256 * 1024)) {
      copyFileSync(from, to);
      chmodSync(to, statSync(from).mode & 0o777);
      for (const lib of sharedLibraries(from)) libraries.add(lib);
    }
  }
  const templates = '/usr/share/git-core/templates';
  if (existsSync(templates)) copyTree(templates, path.join(rootfs, templates));
}

/** The npm package directory of this Node.js installation, if there is one. */
function findNpm(): string | undefined {
  const candidates = [
    path.join(path.dirname(imageNodeBinary()), '..', 'lib', 'node_modules', 'npm'),
    '/usr/lib/node_modules/npm',
    '/usr/local/lib/node_modules/npm',
  ];
  const npm = which('npm');
  if (npm) candidates.unshift(path.resolve(path.dirname(realpathSync(npm)), '..'));
  return candidates.find((dir) => existsSync(path.join(dir, 'bin', 'npm-cli.js')));
}

/**
 * The Node.js executable the image gets as `node`: this process's own, or, when the server runs
 * on Bun (`npm run start:bun`), the `node` on the PATH — never Bun itself (Bun puts a `node` that
 * is Bun on its children's PATH), or projects would run on Bun.
 * @throws when the server runs on Bun and no Node.js is on the PATH.
 */
export function imageNodeBinary(): string {
  if (!process.versions.bun) return realpathSync(process.execPath);
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, 'node');
    if (!existsSync(candidate)) continue;
    const real = realpathSync(candidate);
    if (!/^bun/.test(path.basename(real))) return real;
  }
  throw new Error(
    'The runtime image needs Node.js: the server runs on Bun and no node (other than Bun) is on the PATH',
  );
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

/** Copies `source` to `target`; `keep` (path relative to `source`) may leave entries out. */
function copyTree(
  source: string,
  target: string,
  keep: (rel: string, isDir: boolean) => boolean = () => true,
  rel = '',
): void {
  mkdirSync(target, { recursive: true });
  for (const entry of readdirSync(source, { withFileTypes: true })) {
    const from = path.join(source, entry.name);
    const to = path.join(target, entry.name);
    const relative = rel ? `${rel}/${entry.name}` : entry.name;
    if (!keep(relative, entry.isDirectory())) continue;
    if (entry.isSymbolicLink()) symlinkSync(readlinkSync(from), to);
    else if (entry.isDirectory()) copyTree(from, to, keep, relative);
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
