import type { Logger } from '../../common/logger.ts';
import type { Db } from '../../db/index.ts';
import { FilesStore } from './store.ts';

/**
 * Keeps `file_search` in step with the files, right after each commit rather than inside it
 * (tokenising a large file costs more than saving it). Search waits for a project's pending
 * refresh, so in one process a search always sees the writes that came before it.
 */
export class SearchIndexer {
  readonly #store: FilesStore;
  readonly #log: Logger;
  /** Paths waiting per project; `all` means reconcile every file. */
  readonly #pending = new Map<string, Set<string> | 'all'>();
  readonly #running = new Map<string, Promise<void>>();

  constructor(db: Db, log: Logger) {
    this.#store = new FilesStore(db);
    this.#log = log;
  }

  /** Queues a refresh of `paths` (every file of the project when omitted). */
  touch(projectId: string, paths?: string[]): void {
    const pending = this.#pending.get(projectId);
    if (!paths) this.#pending.set(projectId, 'all');
    else if (pending !== 'all') {
      const set = pending ?? new Set<string>();
      for (const p of paths) set.add(p);
      this.#pending.set(projectId, set);
    }
    if (!this.#running.has(projectId)) {
      const run = this.#run(projectId).finally(() => this.#running.delete(projectId));
      this.#running.set(projectId, run);
    }
  }

  /** Resolves once every refresh queued for the project so far is done. */
  async flush(projectId: string): Promise<void> {
    while (this.#running.has(projectId)) await this.#running.get(projectId);
  }

  /** Waits for all queued refreshes. */
  async close(): Promise<void> {
    while (this.#running.size) await Promise.all([...this.#running.values()]);
  }

  async #run(projectId: string): Promise<void> {
    // Let the commit's caller finish first; batch what arrives meanwhile.
    await new Promise((resolve) => setImmediate(resolve));
    for (
      let pending = this.#pending.get(projectId);
      pending;
      pending = this.#pending.get(projectId)
    ) {
      this.#pending.delete(projectId);
      try {
        await this.#store.refreshSearch(projectId, pending === 'all' ? undefined : [...pending]);
      } catch (err) {
        this.#log.warn({ err, projectId }, 'search index refresh failed');
      }
    }
  }
}
