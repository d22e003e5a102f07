import { randomBytes } from 'node:crypto';
import { constants, existsSync, type Dirent, type Stats } from 'node:fs';
import {
  lchown,
  lstat,
  mkdir,
  open,
  readdir,
  rename,
  rmdir,
  unlink,
  type FileHandle,
} from 'node:fs/promises';

/** Who owns what the server writes into a directory that hostile code shares (uid/gid). */
export interface Owner {
  uid: number;
  gid: number;
}

const dirFlags = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
// O_NONBLOCK: opening a FIFO planted where a file was expected must not hang the server.
const readFlags = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const createFlags =
  constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

let procChecked = false;

/**
 * A directory held open by a file descriptor; every name below it is resolved from that
 * descriptor, one component at a time, never following a symbolic link — the `openat(2)` way,
 * through `/proc/self/fd/<fd>/<name>` (the kernel jumps to the open directory itself, not to a
 * path that someone could have swapped since). Used for directories that untrusted code can
 * change while the server works in them (project workspaces): a check-then-use on paths there
 * is a race the project wins.
 *
 * Names are single path segments (no `/`, never `.` or `..`); callers validate paths first.
 */
export class AnchoredDir {
  readonly #handle: FileHandle;

  private constructor(handle: FileHandle) {
    this.#handle = handle;
  }

  /**
   * Opens `dir`, a trusted absolute path (its parents belong to the server), as an anchor.
   * @throws the open error (ENOENT, ENOTDIR, ELOOP when `dir` itself is a link).
   */
  static async open(dir: string): Promise<AnchoredDir> {
    if (!procChecked) {
      if (!existsSync('/proc/self/fd')) {
        throw new Error('workspace I/O needs /proc/self/fd (Linux with /proc mounted)');
      }
      procChecked = true;
    }
    return new AnchoredDir(await open(dir, dirFlags));
  }

  /** The kernel path of `name` inside this directory (resolved from the descriptor). */
  child(name: string): string {
    if (name === '' || name === '.' || name === '..' || name.includes('/')) {
      throw new Error(`not a single path segment: ${JSON.stringify(name)}`);
    }
    return `/proc/self/fd/${this.#handle.fd}/${name}`;
  }

  /** The directory itself, as a path readdir can take. */
  get self(): string {
    return `/proc/self/fd/${this.#handle.fd}`;
  }

  async close(): Promise<void> {
    await this.#handle.close().catch(() => undefined);
  }

  /** Sets the directory's owner (through the descriptor: never a path). */
  async chown(owner: Owner): Promise<void> {
    await this.#handle.chown(owner.uid, owner.gid);
  }

  /**
   * Opens the directory `name` below this one; undefined when it is missing (and `create` is
   * not set) or is anything but a real directory (a link, a file, a FIFO…). A directory it
   * creates gets `owner`.
   */
  async openDir(
    name: string,
    opts: { create?: boolean; owner?: Owner } = {},
  ): Promise<AnchoredDir | undefined> {
    const target = this.child(name);
    let created = false;
    if (opts.create) {
      try {
        await mkdir(target, 0o755); // mkdir never follows a link in the last component
        created = true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    let handle: FileHandle;
    try {
      handle = await open(target, dirFlags);
    } catch (err) {
      if (isExpectedMiss(err)) return undefined;
      throw err;
    }
    const dir = new AnchoredDir(handle);
    if (created && opts.owner) await dir.chown(opts.owner).catch(() => undefined);
    return dir;
  }

  /**
   * Follows `segments` down from this directory (creating missing ones when `create` is set),
   * closing the intermediate handles; undefined when one is missing or not a real directory.
   * The caller closes the result (it may be `this` itself when `segments` is empty: check with
   * `===` before closing).
   */
  async walk(
    segments: readonly string[],
    opts: { create?: boolean; owner?: Owner } = {},
  ): Promise<AnchoredDir | undefined> {
    let current: AnchoredDir | undefined;
    for (const name of segments) {
      const next = await (current ?? this).openDir(name, opts);
      await current?.close();
      if (!next) return undefined;
      current = next;
    }
    return current ?? this;
  }

  /** lstat of `name` (a link is reported as a link); undefined when it is missing. */
  async lstat(name: string): Promise<Stats | undefined> {
    try {
      return await lstat(this.child(name));
    } catch (err) {
      if (isExpectedMiss(err)) return undefined;
      throw err;
    }
  }

  /** The entries of this directory. */
  readdir(): Promise<Dirent[]> {
    return readdir(this.self, { withFileTypes: true });
  }

  /**
   * Reads the regular file `name` (never through a link, never blocking on a FIFO); undefined
   * when it is missing, not a regular file, or larger than `maxBytes`. `stat` is taken before
   * reading, so a change made meanwhile looks newer than what was read.
   */
  async readFile(
    name: string,
    maxBytes: number,
  ): Promise<{ bytes: Buffer; stat: Stats } | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(this.child(name), readFlags);
    } catch (err) {
      if (isExpectedMiss(err)) return undefined;
      throw err;
    }
    try {
      const stat = await handle.stat();
      if (!stat.isFile() || stat.size > maxBytes) return undefined;
      return { bytes: await handle.readFile(), stat };
    } finally {
      await handle.close();
    }
  }

  /**
   * Replaces `name` with `bytes` atomically: a new temp file (`O_EXCL | O_NOFOLLOW`) in this
   * directory, owned by `owner`, with `mode`, renamed over `name` (a link there is replaced, not
   * followed). Returns the new file's stat, or undefined when a directory stands at `name`.
   */
  async writeFileAtomic(
    name: string,
    bytes: Uint8Array,
    opts: { mode: number; owner?: Owner; tempPrefix: string },
  ): Promise<Stats | undefined> {
    const temp = `${opts.tempPrefix}${randomBytes(6).toString('hex')}`;
    // Created readable and given to its owner before any byte is written: watchers in the
    // project (node --watch-path) may open it the moment it appears.
    const handle = await open(this.child(temp), createFlags, opts.mode);
    try {
      if (opts.owner) await handle.chown(opts.owner.uid, opts.owner.gid);
      await handle.chmod(opts.mode);
      await handle.writeFile(bytes);
    } catch (err) {
      await handle.close();
      await unlink(this.child(temp)).catch(() => undefined);
      throw err;
    }
    await handle.close();
    try {
      await rename(this.child(temp), this.child(name));
    } catch (err) {
      await unlink(this.child(temp)).catch(() => undefined);
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST') return undefined;
      throw err;
    }
    return this.lstat(name);
  }

  /** Removes `name` unless it is a directory (a link is removed itself); true when removed. */
  async unlinkFile(name: string): Promise<boolean> {
    const stat = await this.lstat(name);
    if (!stat || stat.isDirectory()) return false;
    try {
      await unlink(this.child(name));
      return true;
    } catch (err) {
      if (isExpectedMiss(err) || (err as NodeJS.ErrnoException).code === 'EISDIR') return false;
      throw err;
    }
  }

  /** Removes the empty directory `name`; false when it is not empty, missing or not a directory. */
  async rmdir(name: string): Promise<boolean> {
    try {
      await rmdir(this.child(name));
      return true;
    } catch {
      return false;
    }
  }

  /** Renames `name` to `toName` in `to` (both resolved from their descriptors). */
  async rename(name: string, to: AnchoredDir, toName: string): Promise<void> {
    await rename(this.child(name), to.child(toName));
  }

  /**
   * Gives everything below this directory to `owner` (directories through their descriptors,
   * the rest with lchown: a link is never followed), skipping directories named in `skip`.
   */
  async chownTree(owner: Owner, skip: ReadonlySet<string> = new Set(), depth = 0): Promise<void> {
    await this.chown(owner);
    if (depth > 64) return;
    for (const entry of await this.readdir()) {
      if (entry.isDirectory()) {
        if (skip.has(entry.name)) continue;
        const sub = await this.openDir(entry.name);
        if (!sub) continue;
        try {
          await sub.chownTree(owner, skip, depth + 1);
        } finally {
          await sub.close();
        }
      } else {
        await lchown(this.child(entry.name), owner.uid, owner.gid).catch(ignoreMiss);
      }
    }
  }

  /** Removes everything below this directory (links removed, never followed). */
  async emptyTree(depth = 0): Promise<void> {
    for (const entry of await this.readdir()) {
      const stat = await this.lstat(entry.name);
      if (!stat) continue;
      if (stat.isDirectory() && depth < 256) {
        const sub = await this.openDir(entry.name);
        if (sub) {
          try {
            await sub.emptyTree(depth + 1);
          } finally {
            await sub.close();
          }
          await this.rmdir(entry.name);
          continue;
        }
      }
      await unlink(this.child(entry.name)).catch(ignoreMiss);
    }
  }
}

/** Errors that mean "not there, or not what was asked for" rather than a failure. */
function isExpectedMiss(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  // ELOOP: a link where O_NOFOLLOW was asked; ENOTDIR: a file where a directory was;
  // ENXIO: a socket opened as a file.
  return code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR' || code === 'ENXIO';
}

function ignoreMiss(err: unknown): void {
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== 'ENOENT' && code !== 'EISDIR') throw err;
}
