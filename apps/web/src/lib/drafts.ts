/** An unsaved editor buffer kept in localStorage so that no sign-out or crash loses it. */
export interface Draft {
  content: string;
  /** The version the edit started from (null: a file not yet saved). */
  baseVersion: number | null;
  savedAt: number;
}

const prefix = 'vf.draft:';

/** Unsaved editor text per project and path, in localStorage (survives sign-out and reload). */
export class DraftStore {
  readonly #storage: Storage;

  constructor(storage: Storage = localStorage) {
    this.#storage = storage;
  }

  get(projectId: string, path: string): Draft | null {
    const raw = this.#storage.getItem(prefix + projectId + ':' + path);
    if (!raw) return null;
    try {
      return JSON.parse(raw) as Draft;
    } catch {
      return null;
    }
  }

  put(projectId: string, path: string, content: string, baseVersion: number | null): void {
    const draft: Draft = { content, baseVersion, savedAt: Date.now() };
    try {
      this.#storage.setItem(prefix + projectId + ':' + path, JSON.stringify(draft));
    } catch {
      // Storage full: the buffer still lives in memory.
    }
  }

  delete(projectId: string, path: string): void {
    this.#storage.removeItem(prefix + projectId + ':' + path);
  }

  /** Paths of a project with a draft. */
  paths(projectId: string): string[] {
    const out: string[] = [];
    const p = prefix + projectId + ':';
    for (let i = 0; i < this.#storage.length; i++) {
      const k = this.#storage.key(i);
      if (k?.startsWith(p)) out.push(k.slice(p.length));
    }
    return out.sort();
  }
}
