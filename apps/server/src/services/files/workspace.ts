import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import {
  chmod,
  lstat,
  mkdir,
  open,
  readdir,
  realpath,
  rename,
  rm,
  rmdir,
  unlink,
} from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../common/logger.ts';
import { isReallyInside, parentDirs, pathProblem, resolveInside } from './paths.ts';
import { workspaceDir } from './workspace-path.ts';

/** Prefix of the temporary files atomic writes rename into place; never imported. */
export const tempPrefix = '.vf-tmp-';

/** Heavy generated directories nobody wants versioned (VAPORFORM_WORKSPACE_IGNORE's default). */
export const defaultIgnore = ['node_modules', '.git', 'dist', 'build', '__pycache__', '.venv'];

/** One file found on disk by {@link Workspaces.walk}. */
export interface DiskFile {
  path: string;
  size: number;
}

/**
 * The project workspaces on disk (`<dataDir>/workspaces/<projectId>`), which containers mount:
 * atomic writes, containment checks with resolved paths, and one lane per project so that
 * database commits, disk writes and imports from the watcher never interleave.
 */
export class Workspaces {
  readonly #dataDir: string;
  readonly #ignore: Set<string>;
  readonly #log: Logger;
  readonly #lanes = new Map<string, Promise<unknown>>();
  /** What we last wrote per project and path (size, mtime, inode): our own writes seen again. */
  readonly #written = new Map<string, Map<string, string>>();
  /** Workspace roots known to exist, resolved (realpath). */
  readonly #roots = new Map<string, string>();

  constructor(deps: { dataDir: string; ignore: string[]; log: Logger }) {
    this.#dataDir = deps.dataDir;
    this.#ignore = new Set(deps.ignore);
    this.#log = deps.log;
  }

  /** The names ignored anywhere in a path (node_modules, .git…). */
  get ignoredNames(): string[] {
    return [...this.#ignore];
  }

  /** `<dataDir>/workspaces/<projectId>`. */
  dir(projectId: string): string {
    return workspaceDir(this.#dataDir, projectId);
  }

  /** True for paths the workspace keeps to itself: ignored directories and our temp files. */
  isIgnored(filePath: string): boolean {
    const segments = filePath.split('/');
    if (segments.some((s) => this.#ignore.has(s))) return true;
    return segments.at(-1)!.startsWith(tempPrefix);
  }

  /**
   * Runs `fn` after every earlier task of the same project has settled, so a project's
   * database commits, disk writes and watcher imports happen one at a time (in this process).
   */
  exclusive<T>(projectId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#lanes.get(projectId) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.#lanes.set(projectId, settled);
    void settled.then(() => {
      if (this.#lanes.get(projectId) === settled) this.#lanes.delete(projectId);
    });
    return run;
  }

  /** Waits for every queued task of every project. */
  async drain(): Promise<void> {
    while (this.#lanes.size) await Promise.all([...this.#lanes.values()]);
  }

  /** Creates the project's workspace directory. */
  async ensure(projectId: string): Promise<string> {
    const dir = this.dir(projectId);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  /**
   * Writes `bytes` to `filePath` atomically (temp file + rename), creating directories on the
   * way; an existing file keeps its mode (e.g. executable scripts). Refuses, and returns false,
   * when a directory on the way is a symbolic link or a file, or resolves outside the workspace.
   */
  async write(projectId: string, filePath: string, bytes: Uint8Array): Promise<boolean> {
    const root = this.dir(projectId);
    const target = resolveInside(root, filePath);
    const parent = path.dirname(target);
    if (!(await this.#makeDirs(root, filePath))) return false;
    if (!(await isReallyInside(root, parent, this.#roots.get(root)))) {
      this.#log.warn(
        { projectId, path: filePath },
        'workspace write refused: leaves the workspace',
      );
      return false;
    }
    const existing = await lstatOrUndefined(target);
    if (existing?.isDirectory()) {
      this.#log.warn(
        { projectId, path: filePath },
        'workspace write refused: a directory is there',
      );
      return false;
    }
    const temp = path.join(parent, `${tempPrefix}${randomBytes(6).toString('hex')}`);
    const handle = await open(
      temp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o644,
    );
    try {
      await handle.writeFile(bytes);
    } finally {
      await handle.close();
    }
    try {
      if (existing?.isFile()) await chmod(temp, existing.mode & 0o7777);
      await rename(temp, target);
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      throw err;
    }
    const written = await lstatOrUndefined(target);
    if (written) this.#remember(projectId, filePath, written);
    return true;
  }

  /**
   * True when the file at `filePath` is still exactly what {@link write} (or {@link noteSynced})
   * left there: same size, mtime and inode. Lets the watcher skip our own writes without reading them.
   */
  async isUnchanged(projectId: string, filePath: string): Promise<boolean> {
    const known = this.#written.get(projectId)?.get(filePath);
    if (!known) return false;
    const stat = await lstatOrUndefined(path.join(this.dir(projectId), filePath));
    return stat !== undefined && fingerprint(stat) === known;
  }

  /** Records that the file read with `stamp` (see {@link read}) matches the database. */
  noteSynced(projectId: string, filePath: string, stamp: string): void {
    let files = this.#written.get(projectId);
    if (!files) this.#written.set(projectId, (files = new Map()));
    files.set(filePath, stamp);
  }

  #remember(projectId: string, filePath: string, stat: Stats): void {
    this.noteSynced(projectId, filePath, fingerprint(stat));
  }

  #forget(projectId: string, filePath: string): void {
    this.#written.get(projectId)?.delete(filePath);
  }

  /** Removes a file (not a directory) and the directories it leaves empty. */
  async remove(projectId: string, filePath: string): Promise<void> {
    const root = this.dir(projectId);
    const target = resolveInside(root, filePath);
    if (!(await isReallyInside(root, path.dirname(target)))) return;
    const stat = await lstatOrUndefined(target);
    if (stat && !stat.isDirectory()) await unlink(target).catch(ignoreMissing);
    this.#forget(projectId, filePath);
    await this.#pruneEmptyDirs(root, filePath);
  }

  /**
   * Moves a file on disk (keeping any change not yet imported); returns false when there was
   * nothing to move, so the caller writes the content instead.
   */
  async move(projectId: string, from: string, to: string): Promise<boolean> {
    const root = this.dir(projectId);
    const source = resolveInside(root, from);
    const target = resolveInside(root, to);
    const stat = await lstatOrUndefined(source);
    if (!stat?.isFile() || !(await isReallyInside(root, path.dirname(source)))) return false;
    if (!(await this.#makeDirs(root, to)) || !(await isReallyInside(root, path.dirname(target)))) {
      return false;
    }
    if ((await lstatOrUndefined(target))?.isDirectory()) return false;
    await rename(source, target);
    this.#forget(projectId, from);
    this.#forget(projectId, to);
    await this.#pruneEmptyDirs(root, from);
    return true;
  }

  /**
   * Reads a regular file (never through a symbolic link); undefined when it is not one or is
   * larger than `maxBytes`. `stamp` identifies what was read (see {@link noteSynced}).
   */
  async read(
    projectId: string,
    filePath: string,
    maxBytes: number,
  ): Promise<{ bytes: Buffer; stamp: string } | undefined> {
    const root = this.dir(projectId);
    const target = resolveInside(root, filePath);
    if (!(await isReallyInside(root, path.dirname(target)))) return undefined;
    let handle;
    try {
      handle = await open(target, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      return undefined;
    }
    try {
      // Stat before reading: a change made while we read gets a newer stamp.
      const stat = await handle.stat();
      if (!stat.isFile() || stat.size > maxBytes) return undefined;
      return { bytes: await handle.readFile(), stamp: fingerprint(stat) };
    } finally {
      await handle.close();
    }
  }

  /** What is at `filePath`: 'file', 'dir', 'other' (links, sockets…) or undefined. */
  async kind(projectId: string, filePath: string): Promise<'file' | 'dir' | 'other' | undefined> {
    const stat = await lstatOrUndefined(resolveInside(this.dir(projectId), filePath));
    if (!stat) return undefined;
    return stat.isFile() ? 'file' : stat.isDirectory() ? 'dir' : 'other';
  }

  /**
   * Regular files under `dir` (the whole workspace when omitted), skipping ignored paths,
   * symbolic links and names that are not acceptable file paths. Bounded by `limit` files.
   */
  async walk(projectId: string, dir?: string, limit = 100_000): Promise<DiskFile[]> {
    const root = this.dir(projectId);
    const found: DiskFile[] = [];
    const stack: string[] = [dir ?? ''];
    while (stack.length && found.length < limit) {
      const rel = stack.pop()!;
      let entries;
      try {
        entries = await readdir(rel ? path.join(root, rel) : root, { withFileTypes: true });
      } catch {
        continue;
      }
      for (const entry of entries) {
        const child = rel ? `${rel}/${entry.name}` : entry.name;
        if (pathProblem(child) || this.isIgnored(child)) continue;
        if (entry.isDirectory()) stack.push(child);
        else if (entry.isFile()) {
          const stat = await lstatOrUndefined(path.join(root, child));
          if (stat?.isFile()) found.push({ path: child, size: stat.size });
        }
      }
    }
    return found;
  }

  /** Deletes the project's workspace directory. */
  async destroy(projectId: string): Promise<void> {
    this.#written.delete(projectId);
    this.#roots.delete(this.dir(projectId));
    await rm(this.dir(projectId), { recursive: true, force: true });
  }

  /** Creates `root` if needed (it may have been removed); its resolved path, remembered. */
  async #realRoot(root: string): Promise<string> {
    await mkdir(root, { recursive: true });
    let real = this.#roots.get(root);
    if (!real) {
      real = await realpath(root);
      this.#roots.set(root, real);
    }
    return real;
  }

  /** mkdir one level at a time, refusing symbolic links and files on the way. */
  async #makeDirs(root: string, filePath: string): Promise<boolean> {
    await this.#realRoot(root);
    for (const dir of parentDirs(filePath)) {
      const abs = path.join(root, dir);
      const stat = await lstatOrUndefined(abs);
      if (stat?.isDirectory()) continue;
      if (stat) {
        this.#log.warn(
          { path: filePath, blocker: dir },
          'workspace write refused: not a directory',
        );
        return false;
      }
      await mkdir(abs).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
    }
    return true;
  }

  async #pruneEmptyDirs(root: string, filePath: string): Promise<void> {
    for (const dir of parentDirs(filePath).reverse()) {
      try {
        await rmdir(path.join(root, dir));
      } catch {
        return; // not empty (or gone): stop climbing
      }
    }
  }
}

async function lstatOrUndefined(target: string): Promise<Stats | undefined> {
  try {
    return await lstat(target);
  } catch {
    return undefined;
  }
}

function fingerprint(stat: Stats): string {
  return `${stat.size}:${stat.mtimeMs}:${stat.ino}`;
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}
