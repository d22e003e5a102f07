import type { Logger } from '../../common/logger.ts';

interface Pending {
  timer: NodeJS.Timeout;
  firstAt: number;
  /** The last person who edited since the last flush (the new file version's author). */
  editor: string | null;
  attempts: number;
}

/**
 * Debounces writing documents back to their files: a flush runs once typing in a document has
 * paused for `idleMs`, or after `maxWaitMs` of continuous typing — one file version per burst,
 * not per keystroke. A flush that must wait (another instance holds the document, or the file
 * changed underneath) is tried again, a bounded number of times.
 */
export class FlushScheduler {
  readonly #pending = new Map<string, Pending>();
  readonly #running = new Map<string, Promise<void>>();
  readonly #flush: (projectId: string, path: string, editor: string | null) => Promise<boolean>;
  readonly #log: Logger;
  readonly #idleMs: number;
  readonly #maxWaitMs: number;
  #closed = false;

  constructor(deps: {
    flush: (projectId: string, path: string, editor: string | null) => Promise<boolean>;
    log: Logger;
    idleMs: number;
    maxWaitMs: number;
  }) {
    this.#flush = deps.flush;
    this.#log = deps.log;
    this.#idleMs = deps.idleMs;
    this.#maxWaitMs = deps.maxWaitMs;
  }

  /** Someone edited the document (or it needs writing back): flush after the next pause. */
  touch(projectId: string, path: string, editor?: string | null): void {
    if (this.#closed) return;
    const key = `${projectId}\u0000${path}`;
    const now = Date.now();
    const pending = this.#pending.get(key);
    if (pending) clearTimeout(pending.timer);
    const firstAt = pending?.firstAt ?? now;
    const wait = Math.max(0, Math.min(this.#idleMs, firstAt + this.#maxWaitMs - now));
    this.#pending.set(key, {
      timer: setTimeout(() => void this.#run(key, projectId, path), wait),
      firstAt,
      editor: editor ?? pending?.editor ?? null,
      attempts: pending?.attempts ?? 0,
    });
  }

  /**
   * Writes one document to its file now (Ctrl+S), whichever instance took the edits; the saver
   * is the author unless someone else's edits here were waiting.
   * @returns true when the file holds the document's text; false when the write must wait (it
   *   stays scheduled, as a paused flush would).
   */
  async flushOne(projectId: string, path: string, editor: string | null): Promise<boolean> {
    const key = `${projectId}\u0000${path}`;
    if (!this.#pending.has(key)) this.touch(projectId, path, editor);
    await this.#run(key, projectId, path);
    return !this.#pending.has(key);
  }

  /** Flushes everything pending now (shutdown, or "end of an assistant run"). */
  async flushAll(filter?: (projectId: string) => boolean): Promise<void> {
    const keys = [...this.#pending.keys()].filter((k) => !filter || filter(k.split('\u0000')[0]!));
    await Promise.all(
      keys.map((key) => {
        const p = this.#pending.get(key);
        if (p) clearTimeout(p.timer);
        const [projectId, path] = key.split('\u0000') as [string, string];
        return this.#run(key, projectId, path);
      }),
    );
    await Promise.all(this.#running.values());
  }

  /** Stops scheduling; what is pending is flushed once (bounded by the caller's patience). */
  async close(): Promise<void> {
    await this.flushAll();
    this.#closed = true;
    for (const p of this.#pending.values()) clearTimeout(p.timer);
    this.#pending.clear();
  }

  get pending(): number {
    return this.#pending.size;
  }

  async #run(key: string, projectId: string, path: string): Promise<void> {
    // One flush of a document at a time here: wait for the one under way.
    const running = this.#running.get(key);
    if (running) await running;
    const pending = this.#pending.get(key);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.#pending.delete(key);
    const work = (async () => {
      let done = false;
      try {
        done = await this.#flush(projectId, path, pending.editor);
      } catch (err) {
        this.#log.warn({ err, projectId, path }, 'collab flush failed');
      }
      if (!done && !this.#closed && pending.attempts < 20 && !this.#pending.has(key)) {
        this.#pending.set(key, {
          timer: setTimeout(() => void this.#run(key, projectId, path), 200 + Math.random() * 300),
          firstAt: Date.now(),
          editor: pending.editor,
          attempts: pending.attempts + 1,
        });
      }
    })();
    this.#running.set(key, work);
    try {
      await work;
    } finally {
      if (this.#running.get(key) === work) this.#running.delete(key);
    }
  }
}
