import type { Logger } from '../../common/logger.ts';
import type { Db } from '../../db/index.ts';
import { FilesStore } from './store.ts';
import { codeWords } from './words.ts';

/** Files per query while finding stale ones; bytes of content per indexing batch. */
const PAGE = 500;
const BATCH_BYTES = 8 * 1024 * 1024;

/**
 * Keeps `file_search` in step with the files, shortly after each commit rather than inside it
 * (tokenising a large file costs more than saving it). Refreshes wait `delayMs` so a burst of
 * saves (an editor's autosave, an AI turn) is indexed once; a search runs the project's pending
 * refresh at once, so in one process a search always sees the writes that came before it.
 */
export class SearchIndexer {
  readonly #store: FilesStore;
  readonly #log: Logger;
  readonly #delayMs: number;
  /** Paths waiting per project; `all` means reconcile every file. */
  readonly #pending = new Map<string, Set<string> | 'all'>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #running = new Map<string, Promise<void>>();

  constructor(db: Db, log: Logger, delayMs = 200) {
    this.#store = new FilesStore(db);
    this.#log = log;
    this.#delayMs = delayMs;
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
    if (!this.#timers.has(projectId)) {
      const timer = setTimeout(() => void this.#start(projectId), this.#delayMs);
      timer.unref();
      this.#timers.set(projectId, timer);
    }
  }

  /** Runs the project's pending refresh now and resolves when everything queued is indexed. */
  async flush(projectId: string): Promise<void> {
    for (;;) {
      const run = this.#pending.has(projectId)
        ? this.#start(projectId)
        : this.#running.get(projectId);
      if (!run) return;
      await run;
    }
  }

  /** Indexes everything pending, then resolves. */
  async close(): Promise<void> {
    const projects = () => new Set([...this.#pending.keys(), ...this.#running.keys()]);
    while (projects().size) await Promise.all([...projects()].map((id) => this.flush(id)));
  }

  #start(projectId: string): Promise<void> {
    clearTimeout(this.#timers.get(projectId));
    this.#timers.delete(projectId);
    let run = this.#running.get(projectId);
    if (!run) {
      run = this.#run(projectId).finally(() => this.#running.delete(projectId));
      this.#running.set(projectId, run);
    }
    return run;
  }

  async #run(projectId: string): Promise<void> {
    for (
      let pending = this.#pending.get(projectId);
      pending;
      pending = this.#pending.get(projectId)
    ) {
      this.#pending.delete(projectId);
      try {
        await this.#refresh(projectId, pending === 'all' ? undefined : [...pending]);
      } catch (err) {
        this.#log.warn({ err, projectId }, 'search index refresh failed');
      }
    }
  }

  /** Recomputes the words of stale files (in bounded batches) and drops vanished ones. */
  async #refresh(projectId: string, paths: string[] | undefined): Promise<void> {
    let after: string | undefined;
    for (;;) {
      const stale = await this.#store.staleSearch(projectId, paths, after, PAGE);
      for (let i = 0; i < stale.length;) {
        const batch: string[] = [];
        let bytes = 0;
        while (i < stale.length && (batch.length === 0 || bytes + stale[i]!.size <= BATCH_BYTES)) {
          bytes += stale[i]!.size;
          batch.push(stale[i++]!.path);
        }
        const sources = await this.#store.searchSources(projectId, batch);
        const entries = [];
        let since = 0;
        for (const f of sources) {
          entries.push({ path: f.path, hash: f.hash, words: codeWords(f.text) });
          since += f.text.length;
          if (since > 512 * 1024) {
            // Tokenising runs on the event loop: let requests through between chunks.
            await new Promise((resolve) => setImmediate(resolve));
            since = 0;
          }
        }
        await this.#store.upsertSearch(projectId, entries);
      }
      if (stale.length < PAGE) break;
      after = stale.at(-1)!.path;
    }
    await this.#store.dropVanishedSearch(projectId, paths);
  }
}
