import type { Stats } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { AnchoredDir, type Owner } from '../../common/anchored-dir.ts';
import type { Logger } from '../../common/logger.ts';
import { checkFilePath, pathProblem } from './paths.ts';
import { workspaceDir } from './workspace-path.ts';

/** Prefix of the temporary files atomic writes rename into place; never imported. */
export const tempPrefix = '.vf-tmp-';

/** Heavy generated directories nobody wants versioned (VAPORFORM_WORKSPACE_IGNORE's default). */
export const defaultIgnore = ['node_modules', '.git', 'dist', 'build', '__pycache__', '.venv'];

/** The most files {@link Workspaces.walk} lists by default. */
export const maxWalkFiles = 100_000;

/** One file found on disk by {@link Workspaces.walk}, with what its lstat said. */
export interface DiskFile {
  path: string;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
}

/**
 * The project workspaces on disk (`<dataDir>/workspaces/<projectId>`), which containers mount:
 * atomic writes, and one lane per project so that database commits, disk writes and imports
 * from the watcher never interleave.
 *
 * The project's own code changes its workspace while the server works in it (renames, links,
 * directory ⇄ symlink swaps), so no path below the workspace root is ever resolved by name:
 * every read and write walks from the root's descriptor one component at a time without
 * following links ({@link AnchoredDir}). What the server writes belongs to `owner`, the user the
 * project's code runs as, exactly as if that user had written it.
 */
export class Workspaces {
  readonly #dataDir: string;
  readonly #ignore: Set<string>;
  readonly #log: Logger;
  readonly #owner: Owner | undefined;
  readonly #lanes = new Map<string, Promise<unknown>>();
  /** What we last wrote per project and path (size, mtime, inode): our own writes seen again. */
  readonly #written = new Map<string, Map<string, string>>();

  /** `owner`: who the project's code runs as (undefined: the server's own user). */
  constructor(deps: { dataDir: string; ignore: string[]; log: Logger; owner?: Owner }) {
    this.#dataDir = deps.dataDir;
    this.#ignore = new Set(deps.ignore);
    this.#log = deps.log;
    this.#owner = deps.owner;
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

  /** Creates the project's workspace directory (owned by the project's user). */
  async ensure(projectId: string): Promise<string> {
    const dir = this.dir(projectId);
    await mkdir(dir, { recursive: true });
    if (this.#owner) {
      const root = await AnchoredDir.open(dir);
      await root.chown(this.#owner).finally(() => root.close());
    }
    return dir;
  }

  /**
   * Writes `bytes` to `filePath` atomically (temp file + rename), creating directories on the
   * way; an existing file keeps its mode (e.g. executable scripts). Refuses, and returns false,
   * when something on the way is not a real directory (a link, a file) or a directory stands
   * at `filePath`.
   */
  async write(projectId: string, filePath: string, bytes: Uint8Array): Promise<boolean> {
    const { dirs, name } = split(filePath);
    const log = this.#log;
    const written = await this.#withRoot(projectId, async (root) => {
      const dir = await root.walk(dirs, { create: true, owner: this.#owner });
      if (!dir) return refuse('not a directory on the way');
      try {
        const existing = await dir.lstat(name);
        if (existing?.isDirectory()) return refuse('a directory is there');
        const stat = await dir.writeFileAtomic(name, bytes, {
          mode: existing?.isFile() ? existing.mode & 0o7777 : 0o644,
          owner: this.#owner,
          tempPrefix,
        });
        return stat ?? refuse('a directory is there');
      } finally {
        if (dir !== root) await dir.close();
      }
    });
    if (!written) return false;
    this.#remember(projectId, filePath, written);
    return true;

    function refuse(why: string): undefined {
      log.warn({ projectId, path: filePath }, `workspace write refused: ${why}`);
      return undefined;
    }
  }

  /**
   * {@link write} for many files at once (a restore, an import): the root opened once, each
   * directory walked once, a few files written at a time. Returns the paths not written (each
   * refusal logged as {@link write} does).
   */
  async writeMany(
    projectId: string,
    files: { path: string; bytes: Uint8Array }[],
  ): Promise<string[]> {
    const byDir = new Map<
      string,
      { dirs: string[]; items: { path: string; name: string; bytes: Uint8Array }[] }
    >();
    for (const f of files) {
      const { dirs, name } = split(f.path);
      const key = dirs.join('/');
      const entry = byDir.get(key) ?? { dirs, items: [] };
      entry.items.push({ path: f.path, name, bytes: f.bytes });
      byDir.set(key, entry);
    }
    const failed: string[] = [];
    const refuse = (filePath: string, why: string) => {
      this.#log.warn({ projectId, path: filePath }, `workspace write refused: ${why}`);
      failed.push(filePath);
    };
    await this.#withRoot(projectId, async (root) => {
      for (const { dirs, items } of byDir.values()) {
        const dir = await root.walk(dirs, { create: true, owner: this.#owner });
        if (!dir) {
          for (const item of items) refuse(item.path, 'not a directory on the way');
          continue;
        }
        try {
          let next = 0;
          const worker = async () => {
            while (next < items.length) {
              const item = items[next++]!;
              try {
                const existing = await dir.lstat(item.name);
                if (existing?.isDirectory()) {
                  refuse(item.path, 'a directory is there');
                  continue;
                }
                const stat = await dir.writeFileAtomic(item.name, item.bytes, {
                  mode: existing?.isFile() ? existing.mode & 0o7777 : 0o644,
                  owner: this.#owner,
                  tempPrefix,
                });
                if (stat) this.#remember(projectId, item.path, stat);
                else refuse(item.path, 'a directory is there');
              } catch (err) {
                this.#log.warn({ err, projectId, path: item.path }, 'workspace update failed');
                failed.push(item.path);
              }
            }
          };
          await Promise.all(Array.from({ length: Math.min(8, items.length) }, worker));
        } finally {
          if (dir !== root) await dir.close();
        }
      }
    });
    return failed;
  }

  /**
   * True when the file at `filePath` is still exactly what {@link write} (or {@link noteSynced})
   * left there: same size, mtime and inode. Lets the watcher skip our own writes without reading them.
   */
  async isUnchanged(projectId: string, filePath: string): Promise<boolean> {
    const known = this.#written.get(projectId)?.get(filePath);
    if (!known) return false;
    const stat = await this.#lstat(projectId, filePath);
    return stat !== undefined && fingerprint(stat) === known;
  }

  /**
   * lstat of many paths (undefined: missing, or not reachable through real directories), the
   * root opened once and each directory walked once: the watcher's check of a burst of 1,000
   * paths (our own restore coming back) is a few hundred system calls, not ten thousand.
   */
  async lstatMany(projectId: string, paths: string[]): Promise<Map<string, Stats | undefined>> {
    const out = new Map<string, Stats | undefined>();
    const byDir = new Map<string, { dirs: string[]; items: { path: string; name: string }[] }>();
    for (const p of paths) {
      out.set(p, undefined);
      const { dirs, name } = split(p);
      const key = dirs.join('/');
      const entry = byDir.get(key) ?? { dirs, items: [] };
      entry.items.push({ path: p, name });
      byDir.set(key, entry);
    }
    const root = await AnchoredDir.open(this.dir(projectId)).catch(() => undefined);
    if (!root) return out;
    try {
      for (const { dirs, items } of byDir.values()) {
        const dir: AnchoredDir | undefined = await root.walk(dirs);
        if (!dir) continue;
        try {
          let next = 0;
          const worker = async () => {
            while (next < items.length) {
              const item = items[next++]!;
              out.set(item.path, await dir.lstat(item.name).catch(() => undefined));
            }
          };
          await Promise.all(Array.from({ length: Math.min(8, items.length) }, worker));
        } finally {
          if (dir !== root) await dir.close();
        }
      }
    } finally {
      await root.close();
    }
    return out;
  }

  /** {@link isUnchanged} for a stat already taken (see {@link lstatMany}). */
  isUnchangedStat(projectId: string, filePath: string, stat: Stats | undefined): boolean {
    const known = this.#written.get(projectId)?.get(filePath);
    return known !== undefined && stat !== undefined && fingerprint(stat) === known;
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
    const { dirs, name } = split(filePath);
    await this.#withChain(projectId, dirs, async (chain) => {
      await chain.at(-1)!.unlinkFile(name);
      this.#forget(projectId, filePath);
      await pruneEmpty(chain, dirs);
    });
  }

  /**
   * Moves a file on disk (keeping any change not yet imported); returns false when there was
   * nothing to move, so the caller writes the content instead.
   */
  async move(projectId: string, from: string, to: string): Promise<boolean> {
    const source = split(from);
    const target = split(to);
    const moved = await this.#withChain(projectId, source.dirs, async (chain) => {
      const sourceDir = chain.at(-1)!;
      if (!(await sourceDir.lstat(source.name))?.isFile()) return false;
      const root = chain[0]!;
      const targetDir = await root.walk(target.dirs, { create: true, owner: this.#owner });
      if (!targetDir) return false;
      try {
        if ((await targetDir.lstat(target.name))?.isDirectory()) return false;
        await sourceDir.rename(source.name, targetDir, target.name);
      } finally {
        if (targetDir !== root) await targetDir.close();
      }
      await pruneEmpty(chain, source.dirs);
      return true;
    });
    if (!moved) return false;
    this.#forget(projectId, from);
    this.#forget(projectId, to);
    return true;
  }

  /**
   * Reads a regular file (never through a symbolic link, never a FIFO or socket); undefined
   * when it is not one or is larger than `maxBytes`. `stamp` identifies what was read (see
   * {@link noteSynced}).
   */
  async read(
    projectId: string,
    filePath: string,
    maxBytes: number,
  ): Promise<{ bytes: Buffer; stamp: string } | undefined> {
    const { dirs, name } = split(filePath);
    const read = await this.#inDir(projectId, dirs, (dir) => dir.readFile(name, maxBytes));
    return read && { bytes: read.bytes, stamp: fingerprint(read.stat) };
  }

  /** What is at `filePath`: 'file', 'dir', 'other' (links, sockets…) or undefined. */
  async kind(projectId: string, filePath: string): Promise<'file' | 'dir' | 'other' | undefined> {
    const stat = await this.#lstat(projectId, filePath);
    if (!stat) return undefined;
    return stat.isFile() ? 'file' : stat.isDirectory() ? 'dir' : 'other';
  }

  /**
   * Regular files under `dir` (the whole workspace when omitted), skipping ignored paths,
   * symbolic links and names that are not acceptable file paths. Bounded by `limit` files.
   */
  async walk(projectId: string, dir?: string, limit = maxWalkFiles): Promise<DiskFile[]> {
    const found: DiskFile[] = [];
    const start = dir === undefined ? [] : checkFilePath(dir, 'dir').split('/');
    await this.#inDir(projectId, start, async (top) => {
      const visit = async (at: AnchoredDir, rel: string): Promise<void> => {
        let entries;
        try {
          entries = await at.readdir();
        } catch {
          return;
        }
        for (const entry of entries) {
          if (found.length >= limit) return;
          const child = rel ? `${rel}/${entry.name}` : entry.name;
          if (pathProblem(child) || this.isIgnored(child)) continue;
          if (entry.isDirectory()) {
            const sub = await at.openDir(entry.name);
            if (!sub) continue;
            try {
              await visit(sub, child);
            } finally {
              await sub.close();
            }
          } else if (entry.isFile()) {
            const stat = await at.lstat(entry.name);
            if (stat?.isFile()) {
              const { size, mtimeMs, ctimeMs, ino } = stat;
              found.push({ path: child, size, mtimeMs, ctimeMs, ino });
            }
          }
        }
      };
      await visit(top, dir ?? '');
    });
    return found;
  }

  /** True when the project's workspace directory exists (and is a real directory). */
  async exists(projectId: string): Promise<boolean> {
    const root = await AnchoredDir.open(this.dir(projectId)).catch(() => undefined);
    await root?.close();
    return root !== undefined;
  }

  /** Deletes the project's workspace directory (its contents first, never following a link). */
  async destroy(projectId: string): Promise<void> {
    this.#written.delete(projectId);
    const root = await AnchoredDir.open(this.dir(projectId)).catch(() => undefined);
    if (root) await root.emptyTree().finally(() => root.close());
    await rm(this.dir(projectId), { recursive: true, force: true });
  }

  /** Runs `fn` with the workspace root open (creating the root if it was removed). */
  async #withRoot<T>(projectId: string, fn: (root: AnchoredDir) => Promise<T>): Promise<T> {
    const root = await AnchoredDir.open(this.dir(projectId)).catch(async (err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return AnchoredDir.open(await this.ensure(projectId));
    });
    try {
      return await fn(root);
    } finally {
      await root.close();
    }
  }

  /** Runs `fn` in the existing directory `dirs`; undefined when it is missing or not real. */
  async #inDir<T>(
    projectId: string,
    dirs: readonly string[],
    fn: (dir: AnchoredDir) => Promise<T>,
  ): Promise<T | undefined> {
    const root = await AnchoredDir.open(this.dir(projectId)).catch(() => undefined);
    if (!root) return undefined;
    try {
      const dir = await root.walk(dirs);
      if (!dir) return undefined;
      try {
        return await fn(dir);
      } finally {
        if (dir !== root) await dir.close();
      }
    } finally {
      await root.close();
    }
  }

  /** Runs `fn` with every directory from the root to `dirs` open (root first). */
  async #withChain<T>(
    projectId: string,
    dirs: readonly string[],
    fn: (chain: AnchoredDir[]) => Promise<T>,
  ): Promise<T | false> {
    const root = await AnchoredDir.open(this.dir(projectId)).catch(() => undefined);
    if (!root) return false;
    const chain = [root];
    try {
      for (const name of dirs) {
        const next = await chain.at(-1)!.openDir(name);
        if (!next) return false;
        chain.push(next);
      }
      return await fn(chain);
    } finally {
      for (const dir of chain.reverse()) await dir.close();
    }
  }

  #lstat(projectId: string, filePath: string): Promise<Stats | undefined> {
    const { dirs, name } = split(filePath);
    return this.#inDir(projectId, dirs, (dir) => dir.lstat(name));
  }
}

/** `a/b/c.ts` → dirs `['a', 'b']`, name `c.ts`, after checking the path. */
function split(filePath: string): { dirs: string[]; name: string } {
  const segments = checkFilePath(filePath).split('/');
  return { dirs: segments.slice(0, -1), name: segments.at(-1)! };
}

/** Removes the directories of `dirs` that are left empty, innermost first (`chain`: root…dirs). */
async function pruneEmpty(chain: AnchoredDir[], dirs: readonly string[]): Promise<void> {
  for (let i = dirs.length - 1; i >= 0; i--) {
    if (!(await chain[i]!.rmdir(dirs[i]!))) return; // not empty (or gone): stop climbing
  }
}

function fingerprint(stat: Stats): string {
  return `${stat.size}:${stat.mtimeMs}:${stat.ino}`;
}
