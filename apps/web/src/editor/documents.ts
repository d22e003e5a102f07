import { ApiError } from '../lib/api.ts';
import type { DraftStore } from '../lib/drafts.ts';
import type { FileContent, FileEntry } from '../lib/types.ts';

/** The part of the API the editor needs (the real Api satisfies it). */
export interface FileAccess {
  readFile(projectId: string, path: string): Promise<FileContent>;
  writeFile(
    projectId: string,
    path: string,
    content: string,
    opts?: { baseVersion?: number; encoding?: 'utf-8' | 'base64' },
  ): Promise<{ file: FileEntry }>;
}

/** One open editor buffer. */
export interface Doc {
  path: string;
  /** The text in the editor. */
  content: string;
  /** The text as last loaded or saved: `content !== saved` means dirty. */
  saved: string;
  /** Server version `saved` corresponds to (null: not on the server yet). */
  version: number | null;
  encoding: 'utf-8' | 'base64';
  loading: boolean;
  saving: boolean;
  /** A save was refused because someone else saved first: their text, to diff and choose. */
  conflict?: { theirs: string; theirsVersion: number };
  /** The file changed on the server while this buffer had unsaved edits. */
  remoteChanged?: boolean;
  /** The file was deleted on the server. */
  deleted?: boolean;
  /** Unsaved text was restored from a local draft when the file opened. */
  restoredDraft?: boolean;
  error?: string;
}

/** True when the buffer has unsaved edits. */
export function isDirty(doc: Doc): boolean {
  return doc.content !== doc.saved;
}

/** What `save` did. */
export type SaveResult = 'saved' | 'unchanged' | 'conflict' | 'error';

/**
 * Open files of one project: loading, editing, saving with `baseVersion` (optimistic
 * concurrency), conflicts (a 409 keeps both texts until the user chooses), live changes from
 * others, and local drafts so unsaved text survives a sign-out or reload. Framework-free; React
 * reads it through `subscribe`/`snapshot` (useSyncExternalStore).
 */
export class DocumentStore {
  readonly #files: FileAccess;
  readonly #drafts: DraftStore;
  readonly #projectId: string;
  #docs = new Map<string, Doc>();
  #order: string[] = [];
  #active: string | null = null;
  readonly #listeners = new Set<() => void>();
  #snapshot: { docs: Doc[]; active: string | null } = { docs: [], active: null };

  constructor(deps: { files: FileAccess; drafts: DraftStore; projectId: string }) {
    this.#files = deps.files;
    this.#drafts = deps.drafts;
    this.#projectId = deps.projectId;
  }

  /** Subscribes to changes; returns an unsubscribe. */
  subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  };

  /** Open documents in tab order, and the active path (a stable object between changes). */
  snapshot = (): { docs: Doc[]; active: string | null } => this.#snapshot;

  /** One open document. */
  get(path: string): Doc | undefined {
    return this.#docs.get(path);
  }

  /** Opens (or focuses) a file, loading it and any local draft of it. */
  async open(path: string): Promise<Doc> {
    this.#active = path;
    const existing = this.#docs.get(path);
    if (existing) {
      this.#emit();
      return existing;
    }
    this.#order.push(path);
    this.#put({
      path,
      content: '',
      saved: '',
      version: null,
      encoding: 'utf-8',
      loading: true,
      saving: false,
    });
    try {
      const file = await this.#files.readFile(this.#projectId, path);
      const draft = this.#drafts.get(this.#projectId, path);
      const doc: Doc = {
        path,
        content: file.content,
        saved: file.content,
        version: file.version,
        encoding: file.encoding,
        loading: false,
        saving: false,
      };
      if (draft && draft.content !== file.content && file.encoding === 'utf-8') {
        doc.content = draft.content;
        doc.restoredDraft = true;
        // The draft was written against an older version: saving must surface the conflict.
        if (draft.baseVersion !== null && draft.baseVersion !== file.version) {
          doc.version = draft.baseVersion;
          doc.remoteChanged = true;
        }
      } else if (draft) {
        this.#drafts.delete(this.#projectId, path);
      }
      if (this.#docs.has(path)) this.#put(doc);
      return doc;
    } catch (err) {
      const draft = this.#drafts.get(this.#projectId, path);
      if (err instanceof ApiError && err.status === 404 && draft) {
        // A new file that was never saved: its draft is all there is.
        const doc: Doc = {
          path,
          content: draft.content,
          saved: '',
          version: null,
          encoding: 'utf-8',
          loading: false,
          saving: false,
          restoredDraft: true,
        };
        this.#put(doc);
        return doc;
      }
      this.#patch(path, { loading: false, error: errorText(err) });
      throw err;
    }
  }

  /** Opens a buffer for a file that does not exist yet (saved on first save). */
  openNew(path: string, content = ''): Doc {
    this.#active = path;
    if (!this.#docs.has(path)) this.#order.push(path);
    const doc: Doc = {
      path,
      content,
      saved: '',
      version: null,
      encoding: 'utf-8',
      loading: false,
      saving: false,
    };
    this.#put(doc);
    return doc;
  }

  /** Makes an open file the active tab. */
  activate(path: string): void {
    if (!this.#docs.has(path)) return;
    this.#active = path;
    this.#emit();
  }

  /** Records an edit; unsaved text is also kept as a local draft. */
  edit(path: string, content: string): void {
    const doc = this.#docs.get(path);
    if (!doc || doc.content === content) return;
    if (content === doc.saved) this.#drafts.delete(this.#projectId, path);
    else this.#drafts.put(this.#projectId, path, content, doc.version);
    this.#patch(path, { content, restoredDraft: false });
  }

  /** Drops unsaved edits (and their draft): back to the last loaded or saved text. */
  revert(path: string): void {
    const doc = this.#docs.get(path);
    if (!doc) return;
    this.#drafts.delete(this.#projectId, path);
    this.#patch(path, { content: doc.saved, restoredDraft: false });
  }

  /**
   * Saves the buffer with `baseVersion` = the version it was loaded at. If someone else saved
   * first the server answers 409; the buffer then holds a `conflict` with their text.
   */
  async save(path: string): Promise<SaveResult> {
    const doc = this.#docs.get(path);
    if (!doc || doc.loading || doc.saving) return 'unchanged';
    if (doc.conflict) return 'conflict';
    if (!isDirty(doc) && doc.version !== null && !doc.remoteChanged) return 'unchanged';
    const content = doc.content;
    this.#patch(path, { saving: true, error: undefined });
    try {
      const { file } = await this.#files.writeFile(this.#projectId, path, content, {
        ...(doc.version !== null ? { baseVersion: doc.version } : {}),
        encoding: doc.encoding,
      });
      const now = this.#docs.get(path);
      // Typing may have continued during the request: only what was sent is saved.
      if (now) {
        this.#patch(path, {
          saved: content,
          version: file.version,
          saving: false,
          remoteChanged: false,
          deleted: false,
        });
        if (now.content === content) this.#drafts.delete(this.#projectId, path);
      }
      return 'saved';
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) {
        try {
          const theirs = await this.#files.readFile(this.#projectId, path);
          this.#patch(path, {
            saving: false,
            conflict: { theirs: theirs.content, theirsVersion: theirs.version },
          });
        } catch (readErr) {
          this.#patch(path, { saving: false, error: errorText(readErr) });
          return 'error';
        }
        return 'conflict';
      }
      this.#patch(path, { saving: false, error: errorText(err) });
      return 'error';
    }
  }

  /**
   * Ends a conflict: `mine` saves the buffer over their version, `theirs` drops local edits and
   * takes their text.
   */
  async resolveConflict(path: string, choice: 'mine' | 'theirs'): Promise<SaveResult> {
    const doc = this.#docs.get(path);
    if (!doc?.conflict) return 'unchanged';
    const { theirs, theirsVersion } = doc.conflict;
    if (choice === 'theirs') {
      this.#drafts.delete(this.#projectId, path);
      this.#patch(path, {
        content: theirs,
        saved: theirs,
        version: theirsVersion,
        conflict: undefined,
        remoteChanged: false,
      });
      return 'saved';
    }
    this.#patch(path, { saved: theirs, version: theirsVersion, conflict: undefined });
    return this.save(path);
  }

  /**
   * A file changed on the server (`file_changed`). A clean buffer reloads; a dirty one is
   * flagged, and its next save reports the conflict.
   */
  async remoteChanged(path: string, version: number | undefined): Promise<void> {
    const doc = this.#docs.get(path);
    if (!doc || doc.loading || doc.saving) return;
    if (version !== undefined && doc.version !== null && version <= doc.version) return;
    if (isDirty(doc)) {
      this.#patch(path, { remoteChanged: true });
      return;
    }
    try {
      const file = await this.#files.readFile(this.#projectId, path);
      const now = this.#docs.get(path);
      if (!now || isDirty(now)) return;
      this.#patch(path, {
        content: file.content,
        saved: file.content,
        version: file.version,
        deleted: false,
      });
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) this.#patch(path, { deleted: true });
    }
  }

  /** A file was deleted on the server: a clean buffer closes, a dirty one is kept and flagged. */
  remoteDeleted(path: string): void {
    const doc = this.#docs.get(path);
    if (!doc) return;
    if (isDirty(doc)) this.#patch(path, { deleted: true, version: null });
    else this.close(path, { force: true });
  }

  /** A file was moved: its buffer follows. */
  renamed(from: string, to: string): void {
    const doc = this.#docs.get(from);
    if (!doc) return;
    this.#docs.delete(from);
    this.#docs.set(to, { ...doc, path: to });
    this.#order = this.#order.map((p) => (p === from ? to : p));
    if (this.#active === from) this.#active = to;
    const draft = this.#drafts.get(this.#projectId, from);
    if (draft) {
      this.#drafts.delete(this.#projectId, from);
      this.#drafts.put(this.#projectId, to, draft.content, draft.baseVersion);
    }
    this.#emit();
  }

  /**
   * Closes a tab. A dirty one stays open unless forced (the UI asks first).
   * @returns false when it was not closed.
   */
  close(path: string, opts: { force?: boolean } = {}): boolean {
    const doc = this.#docs.get(path);
    if (!doc) return true;
    if (isDirty(doc) && !opts.force) return false;
    if (opts.force) this.#drafts.delete(this.#projectId, path);
    this.#docs.delete(path);
    const i = this.#order.indexOf(path);
    this.#order.splice(i, 1);
    if (this.#active === path)
      this.#active = this.#order[Math.min(i, this.#order.length - 1)] ?? null;
    this.#emit();
    return true;
  }

  /** Paths with unsaved edits. */
  dirtyPaths(): string[] {
    return this.#order.filter((p) => {
      const d = this.#docs.get(p);
      return d ? isDirty(d) : false;
    });
  }

  #put(doc: Doc): void {
    this.#docs.set(doc.path, doc);
    this.#emit();
  }

  #patch(path: string, patch: Partial<Doc>): void {
    const doc = this.#docs.get(path);
    if (!doc) return;
    this.#put({ ...doc, ...patch });
  }

  #emit(): void {
    this.#snapshot = {
      docs: this.#order.map((p) => this.#docs.get(p)!).filter(Boolean),
      active: this.#active,
    };
    for (const l of this.#listeners) l();
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
