import type { Logger } from '../../common/logger.ts';
import type { DiskChangeHandler, DiskWatcher } from './watcher.ts';
import { maxWalkFiles, type DiskFile, type Workspaces } from './workspace.ts';

/** One project being polled. */
interface Polled {
  /** path → stamp of the last walk; undefined until the first walk (in `watch`) is over. */
  snapshot: Map<string, string> | undefined;
  /** The last batch is still being imported: the project is not walked until it is done. */
  importing: boolean;
  /** The walk hit the file limit (warned once). */
  truncated: boolean;
  /** When its last walk started (`performance.now()`). */
  walkedAt: number;
}

/**
 * Notices changes in project workspaces by walking them every `intervalMs` and comparing each
 * walk with the previous one (size, mtime, ctime, inode): for a data dir on a network volume,
 * where inotify does not see what containers on other machines write. Walks go through
 * {@link Workspaces.walk} (anchored, never following links, ignored names skipped), one project
 * at a time; a tick that runs long delays the next one. Added, changed and removed paths go to
 * `onChange`, one batch per project and tick.
 */
export class PollingWatcher implements DiskWatcher {
  readonly #workspaces: Workspaces;
  readonly #log: Logger;
  readonly #onChange: DiskChangeHandler;
  readonly #intervalMs: number;
  readonly #idleIntervalMs: number;
  readonly #isActive: (projectId: string) => boolean;
  readonly #maxFiles: number;
  readonly #polled = new Map<string, Polled>();
  #timer: NodeJS.Timeout | undefined;
  #tick: Promise<void> | undefined;
  #closed = false;

  /**
   * `intervalMs`: pause between the end of one tick and the start of the next (2000). Only the
   * workspaces `isActive` names (projects whose code runs: only running code writes there) are
   * walked at every tick; the others once per `idleIntervalMs` (60,000). Without `isActive`,
   * every workspace is active.
   */
  constructor(deps: {
    workspaces: Workspaces;
    log: Logger;
    onChange: DiskChangeHandler;
    intervalMs?: number;
    idleIntervalMs?: number;
    isActive?: (projectId: string) => boolean;
    maxFiles?: number;
  }) {
    this.#workspaces = deps.workspaces;
    this.#log = deps.log;
    this.#onChange = deps.onChange;
    this.#intervalMs = deps.intervalMs ?? 2000;
    this.#idleIntervalMs = deps.idleIntervalMs ?? 60_000;
    this.#isActive = deps.isActive ?? (() => true);
    this.#maxFiles = deps.maxFiles ?? maxWalkFiles;
  }

  isWatching(projectId: string): boolean {
    return this.#polled.has(projectId);
  }

  /**
   * Takes the project's first snapshot (no events: what is on disk now is the baseline), then
   * polls it. The workspace is the one of `Workspaces.dir(projectId)`.
   */
  async watch(projectId: string): Promise<void> {
    if (this.#closed || this.#polled.has(projectId)) return;
    const entry: Polled = {
      snapshot: undefined,
      importing: false,
      truncated: false,
      walkedAt: performance.now(),
    };
    this.#polled.set(projectId, entry);
    let files: DiskFile[];
    try {
      files = await this.#workspaces.walk(projectId, undefined, this.#maxFiles);
    } catch (err) {
      if (this.#polled.get(projectId) === entry) this.#polled.delete(projectId);
      throw err;
    }
    if (this.#polled.get(projectId) !== entry) return; // unwatched (or closed) meanwhile
    entry.snapshot = new Map(files.map((f) => [f.path, stamp(f)]));
    this.#schedule();
  }

  async unwatch(projectId: string): Promise<void> {
    this.#polled.delete(projectId);
  }

  /** Stops polling and waits for a tick in progress (not for the imports it handed over). */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#tick;
    this.#polled.clear();
  }

  #schedule(): void {
    if (this.#closed || this.#timer || this.#tick) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#tick = this.#pollAll().finally(() => {
        this.#tick = undefined;
        if (this.#polled.size) this.#schedule();
      });
    }, this.#intervalMs);
    this.#timer.unref();
  }

  async #pollAll(): Promise<void> {
    for (const [projectId, entry] of [...this.#polled]) {
      if (this.#closed) return;
      if (!entry.snapshot || entry.importing) continue;
      const idle = !this.#isActive(projectId);
      if (idle && performance.now() - entry.walkedAt < this.#idleIntervalMs) continue;
      entry.walkedAt = performance.now();
      try {
        await this.#poll(projectId, entry);
      } catch (err) {
        this.#log.warn({ err, projectId }, 'workspace poll failed');
      }
    }
  }

  async #poll(projectId: string, entry: Polled): Promise<void> {
    const files = await this.#workspaces.walk(projectId, undefined, this.#maxFiles);
    // A workspace that is gone (its project being deleted) walks as empty: it has not lost
    // every file. Only an empty walk needs the check.
    if (files.length === 0 && !(await this.#workspaces.exists(projectId))) return;
    if (this.#closed || this.#polled.get(projectId) !== entry) return;
    const previous = entry.snapshot!;
    // Past the limit the walk saw only part of the tree: what it did not see is not removed.
    const truncated = files.length >= this.#maxFiles;
    if (truncated && !entry.truncated) {
      this.#log.warn(
        { projectId, limit: this.#maxFiles },
        'workspace has too many files to poll; removals are not noticed',
      );
    }
    entry.truncated = truncated;
    const next = truncated ? new Map(previous) : new Map<string, string>();
    const changed: string[] = [];
    for (const f of files) {
      const now = stamp(f);
      if (previous.get(f.path) !== now) changed.push(f.path);
      next.set(f.path, now);
    }
    if (!truncated) for (const p of previous.keys()) if (!next.has(p)) changed.push(p);
    entry.snapshot = next;
    if (changed.length === 0) return;
    entry.importing = true;
    this.#onChange(projectId, changed)
      .catch((err: unknown) =>
        this.#log.warn({ err, projectId }, 'importing workspace changes failed'),
      )
      .finally(() => {
        entry.importing = false;
      });
  }
}

function stamp(f: DiskFile): string {
  return `${f.size}:${f.mtimeMs}:${f.ctimeMs}:${f.ino}`;
}
