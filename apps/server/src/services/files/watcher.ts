import path from 'node:path';
import watcher, { type AsyncSubscription } from '@parcel/watcher';
import type { Logger } from '../../common/logger.ts';
import { isInside } from './paths.ts';
import { tempPrefix } from './workspace.ts';

/** Receives the workspace-relative paths that changed on disk (deduplicated, any order). */
export type DiskChangeHandler = (projectId: string, paths: string[]) => Promise<void>;

/** What the files service needs of a watcher: inotify ({@link WorkspaceWatcher}) or polling. */
export interface DiskWatcher {
  /** Starts watching `dir`, the workspace of `projectId` (no-op when already watching). */
  watch(projectId: string, dir: string): Promise<void>;
  /** Stops watching one project. */
  unwatch(projectId: string): Promise<void>;
  /** True while `projectId`'s workspace is watched. */
  isWatching(projectId: string): boolean;
  /** Stops everything; later `watch` calls do nothing. */
  close(): Promise<void>;
}

/**
 * Watches project workspaces (inotify through @parcel/watcher) and hands changed paths to the
 * files service, one batch at a time per project. Ignored directories are not even watched.
 */
export class WorkspaceWatcher implements DiskWatcher {
  readonly #subscriptions = new Map<string, AsyncSubscription>();
  readonly #ignore: string[];
  readonly #log: Logger;
  readonly #onChange: DiskChangeHandler;
  #closed = false;

  constructor(deps: { ignore: string[]; log: Logger; onChange: DiskChangeHandler }) {
    this.#ignore = [
      ...deps.ignore.flatMap((name) => [`**/${name}`, `**/${name}/**`]),
      `**/${tempPrefix}*`,
    ];
    this.#log = deps.log;
    this.#onChange = deps.onChange;
  }

  /** True while `projectId`'s workspace is watched. */
  isWatching(projectId: string): boolean {
    return this.#subscriptions.has(projectId);
  }

  /** Starts watching `dir` for `projectId` (no-op when already watching). */
  async watch(projectId: string, dir: string): Promise<void> {
    if (this.#closed || this.#subscriptions.has(projectId)) return;
    const root = path.resolve(dir);
    const subscription = await watcher.subscribe(
      root,
      (err, events) => {
        if (err) {
          this.#log.warn({ err: err.message, projectId }, 'workspace watcher error');
          return;
        }
        if (!this.#subscriptions.has(projectId)) return;
        const paths = new Set<string>();
        for (const event of events) {
          if (event.path === root || !isInside(root, event.path)) continue;
          const rel = path.relative(root, event.path);
          paths.add(rel.split(path.sep).join('/'));
        }
        if (paths.size === 0) return;
        this.#onChange(projectId, [...paths]).catch((e: unknown) =>
          this.#log.warn({ err: e, projectId }, 'importing workspace changes failed'),
        );
      },
      { ignore: this.#ignore },
    );
    if (this.#closed || this.#subscriptions.has(projectId)) {
      await subscription.unsubscribe();
      return;
    }
    this.#subscriptions.set(projectId, subscription);
  }

  /** Stops watching one project. */
  async unwatch(projectId: string): Promise<void> {
    const subscription = this.#subscriptions.get(projectId);
    this.#subscriptions.delete(projectId);
    await subscription?.unsubscribe().catch(() => undefined);
  }

  /** Stops every watcher; later `watch` calls do nothing. */
  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#subscriptions.keys()];
    await Promise.all(all.map((id) => this.unwatch(id)));
  }
}
