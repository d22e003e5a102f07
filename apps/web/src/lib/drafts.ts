/** An unsaved editor buffer kept in localStorage so that no sign-out or crash loses it. */
export interface Draft {
  content: string;
  /** The version the edit started from (null: a file not yet saved). */
  baseVersion: number | null;
  savedAt: number;
}

const prefix = 'vf.draft:';
/** Keys of one user's drafts: `vf.draft:u:<userId>:<projectId>:<path>`. */
const userPrefix = prefix + 'u:';

/**
 * One user's unsaved editor text per project and path, in localStorage (survives sign-out and
 * reload). Drafts belong to the user who typed them: another person signing in on the same
 * browser never sees them. Without a user (signed out) it keeps nothing.
 */
export class DraftStore {
  readonly #storage: Storage;
  readonly #userId: string | null;

  constructor(storage: Storage = localStorage, userId: string | null = null) {
    this.#storage = storage;
    this.#userId = userId;
    // Drafts of the former per-browser layout have no owner: offering them to whoever signs
    // in next would hand one person's text to another.
    for (const key of keys(storage)) {
      if (!key.startsWith(userPrefix)) storage.removeItem(key);
    }
  }

  /** The user whose drafts these are. */
  get userId(): string | null {
    return this.#userId;
  }

  #key(projectId: string, path: string): string | null {
    return this.#userId ? `${userPrefix}${this.#userId}:${projectId}:${path}` : null;
  }

  get(projectId: string, path: string): Draft | null {
    const key = this.#key(projectId, path);
    const raw = key ? this.#storage.getItem(key) : null;
    if (!raw) return null;
    try {
      return JSON.parse(raw) as Draft;
    } catch {
      return null;
    }
  }

  put(projectId: string, path: string, content: string, baseVersion: number | null): void {
    const key = this.#key(projectId, path);
    if (!key) return;
    const draft: Draft = { content, baseVersion, savedAt: Date.now() };
    try {
      this.#storage.setItem(key, JSON.stringify(draft));
    } catch {
      // Storage full: the buffer still lives in memory.
    }
  }

  delete(projectId: string, path: string): void {
    const key = this.#key(projectId, path);
    if (key) this.#storage.removeItem(key);
  }

  /** Paths of a project with a draft of this user. */
  paths(projectId: string): string[] {
    if (!this.#userId) return [];
    const p = `${userPrefix}${this.#userId}:${projectId}:`;
    return keys(this.#storage)
      .filter((k) => k.startsWith(p))
      .map((k) => k.slice(p.length))
      .sort();
  }

  /** How many drafts this user has, over all projects. */
  count(): number {
    if (!this.#userId) return 0;
    const p = `${userPrefix}${this.#userId}:`;
    return keys(this.#storage).filter((k) => k.startsWith(p)).length;
  }
}

function keys(storage: Storage): string[] {
  const out: string[] = [];
  for (let i = 0; i < storage.length; i++) {
    const k = storage.key(i);
    if (k?.startsWith(prefix)) out.push(k);
  }
  return out;
}
