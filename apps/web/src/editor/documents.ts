import type { Schemas } from '@vaporform/sdk';
import { ApiError } from '../lib/client.ts';
import type { DraftStore } from '../lib/drafts.ts';
import type { FileAccess } from '../lib/files.ts';
import { isBinaryPath } from '../lib/languages.ts';
import { NotCollaborative, type CollabDoc, type CollabState } from './collab-connection.ts';
import type { CollabIdentity } from './collab-binding.ts';

/** The live co-editing channel (`WS /api/collab`; the real CollabClient satisfies it). */
export interface CollabSource {
  readonly state: CollabState;
  onState(listener: (s: CollabState) => void): () => void;
  /** @throws NotCollaborative when the file is not a shared text document (binary, too big…). */
  open(projectId: string, path: string): Promise<CollabDoc>;
  /** Who we are to the others (name and colour of our cursor). */
  identity(): CollabIdentity;
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
  conflict?: { theirs: string; theirsVersion: number; by?: ChangeAuthor };
  /** The file changed on the server while this buffer had unsaved edits. */
  remoteChanged?: boolean;
  /** Who made that change (from the `file_changed` event). */
  remoteChangedBy?: ChangeAuthor;
  /** The file was deleted on the server. */
  deleted?: boolean;
  /** Unsaved text was restored from a local draft when the file opened. */
  restoredDraft?: boolean;
  error?: string;
  /**
   * The text lives in a shared document (ShareDB): edits go live as operations, `saved` is the
   * text the server has acknowledged, and a save makes a named version.
   */
  collab?: boolean;
  /** Shared document: text of ours the server did not take (kept as a draft), to re-apply. */
  collabDraft?: string;
  /** Shared document: why the server refused our edits. */
  collabNotice?: string;
}

/** Who wrote a version: its source (a person, the assistant, the container…) and the user. */
export interface ChangeAuthor {
  source: Schemas['FileMeta']['source'];
  userId?: string;
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
  readonly #collab: CollabSource | null;
  readonly #shares = new Map<string, CollabDoc>();
  #collabState: CollabState | null = null;
  #docs = new Map<string, Doc>();
  #order: string[] = [];
  #active: string | null = null;
  readonly #listeners = new Set<() => void>();
  #snapshot: { docs: Doc[]; active: string | null; collab: CollabState | null } = {
    docs: [],
    active: null,
    collab: null,
  };

  constructor(deps: {
    files: FileAccess;
    drafts: DraftStore;
    projectId: string;
    /** Live co-editing; without it (or for files it refuses) files load and save over HTTP. */
    collab?: CollabSource | null;
  }) {
    this.#files = deps.files;
    this.#drafts = deps.drafts;
    this.#projectId = deps.projectId;
    this.#collab = deps.collab ?? null;
    if (this.#collab) {
      this.#collabState = this.#collab.state;
      this.#collab.onState((s) => {
        this.#collabState = s;
        this.#emit();
      });
    }
  }

  /** The project these documents belong to. */
  get projectId(): string {
    return this.#projectId;
  }

  /** The shared document behind an open file (null: edited over HTTP). */
  collabDoc(path: string): CollabDoc | null {
    return this.#shares.get(path) ?? null;
  }

  /** Who we are to collaborators. */
  collabIdentity(): CollabIdentity {
    return this.#collab?.identity() ?? { name: 'Me', color: '#888888' };
  }

  /** Subscribes to changes; returns an unsubscribe. */
  subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  };

  /**
   * Open documents in tab order, the active path and the collab socket's state (a stable
   * object between changes).
   */
  snapshot = (): { docs: Doc[]; active: string | null; collab: CollabState | null } =>
    this.#snapshot;

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
    const shared = await this.#openShared(path);
    if (shared) return shared;
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
    if (doc.collab) return; // the binding reports shared text (collabText)
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
    if (doc.collab) return this.#saveShared(doc);
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
            conflict: {
              theirs: theirs.content,
              theirsVersion: theirs.version,
              by: { source: theirs.source, userId: theirs.updatedBy },
            },
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
   * Ctrl+S on a shared document: every own edit acknowledged means it is committed on the
   * server (durable); then the server is asked to write the document to its file now (a new
   * file version, so the workspace and the preview have it at once, not after the pause in
   * typing), and the version shown is read back — waited for briefly if another writer was
   * mid-write. No PUT: the file is the document's, and a PUT would arrive as a second copy of
   * the ops.
   */
  async #saveShared(doc: Doc): Promise<SaveResult> {
    const share = this.#shares.get(doc.path);
    if (!share) return 'unchanged';
    if (this.#collabState !== 'open') {
      this.#patch(doc.path, {
        error: 'Offline: your edits are kept here and sent when the connection is back.',
      });
      return 'error';
    }
    this.#patch(doc.path, { saving: true, error: undefined });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error('the server did not acknowledge your edits in time')),
          10_000,
        );
        share.doc.whenNothingPending(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      const text = share.doc.data;
      await this.#files.saveShared(this.#projectId, doc.path);
      const deadline = Date.now() + 8_000;
      while (Date.now() < deadline) {
        const file = await this.#files.readFile(this.#projectId, doc.path).catch(() => null);
        if (file && (file.content === text || share.doc.data !== text)) {
          const now = this.#docs.get(doc.path);
          this.#patch(doc.path, {
            version: file.version,
            ...(file.content === now?.content ? { saved: file.content } : {}),
          });
          break;
        }
        await new Promise((r) => setTimeout(r, 300));
      }
      this.#patch(doc.path, { saving: false, deleted: false });
      return 'saved';
    } catch (err) {
      this.#patch(doc.path, { saving: false, error: errorText(err) });
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
  async remoteChanged(path: string, version: number | undefined, by?: ChangeAuthor): Promise<void> {
    const doc = this.#docs.get(path);
    if (doc?.collab) {
      // Its text arrives as operations. A new version is the server's write-back of the
      // document: what we had acknowledged is in the file now.
      if (version !== undefined && (doc.version === null || version > doc.version)) {
        const pending = this.#shares.get(path)?.doc.hasPending() ?? false;
        this.#patch(path, { version, ...(pending ? {} : { saved: doc.content }) });
      }
      return;
    }
    if (!doc || doc.loading || doc.saving) return;
    if (version !== undefined && doc.version !== null && version <= doc.version) return;
    if (isDirty(doc)) {
      this.#patch(path, { remoteChanged: true, remoteChangedBy: by });
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
    if (doc.collab) {
      // One shared document per path: follow the file to its new one.
      this.#release(from);
      void this.#openShared(to).catch(() => undefined);
    }
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
    this.#release(path);
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

  /**
   * Opens the file's shared document when the collab channel takes it. A local draft that
   * differs (text typed offline and never sent, or refused) is offered, not applied.
   */
  async #openShared(path: string): Promise<Doc | null> {
    if (!this.#collab || isBinaryPath(path)) return null;
    let share: CollabDoc;
    try {
      share = await this.#collab.open(this.#projectId, path);
    } catch (err) {
      if (err instanceof NotCollaborative) return null;
      throw err;
    }
    if (!this.#docs.has(path) || this.#shares.has(path)) {
      share.release(); // closed (or opened twice) meanwhile
      return this.#docs.get(path) ?? null;
    }
    this.#shares.set(path, share);
    const text = share.doc.data;
    const doc: Doc = {
      path,
      content: text,
      saved: text,
      version: this.#docs.get(path)?.version ?? null,
      encoding: 'utf-8',
      loading: false,
      saving: false,
      collab: true,
    };
    const draft = this.#drafts.get(this.#projectId, path);
    if (draft && draft.content !== text) doc.collabDraft = draft.content;
    else if (draft) this.#drafts.delete(this.#projectId, path);
    this.#put(doc);
    return doc;
  }

  /**
   * A shared document's text changed (ours or theirs). Own edits leave the tab dirty until the
   * server has written the document to its file (a flush: `file_changed`, or Ctrl+S); others'
   * edits alone do not. While own edits are unacknowledged and the channel is down they are
   * also kept as a draft, so closing the tab loses nothing.
   */
  collabText(path: string, text: string, pending: boolean, local = false): void {
    const doc = this.#docs.get(path);
    if (!doc?.collab) return;
    if (pending && this.#collabState !== 'open')
      this.#drafts.put(this.#projectId, path, text, null);
    else if (!pending && doc.collabDraft === undefined) this.#drafts.delete(this.#projectId, path);
    if (doc.content === text) return;
    const clean = !isDirty(doc) && !local;
    this.#patch(path, { content: text, saved: clean ? text : doc.saved });
  }

  /** The server refused our edits: the text as we had it is kept as a draft, and why. */
  collabRefused(path: string, reason: string, text: string): void {
    if (!this.#docs.get(path)?.collab) return;
    this.#drafts.put(this.#projectId, path, text, null);
    this.#patch(path, {
      collabDraft: text,
      collabNotice: `The server did not take your edits: ${reason}`,
    });
  }

  /**
   * A shared document was deleted on the server (its file deleted or moved). A move is also
   * announced as `file_changed` with `from`, which moves the tab: so a clean tab closes only if
   * it is still here a moment later.
   */
  collabDeleted(path: string, share: CollabDoc): void {
    if (this.#shares.get(path) !== share) return;
    this.#release(path);
    const doc = this.#docs.get(path);
    if (!doc) return;
    if (isDirty(doc) || doc.collabDraft !== undefined) {
      this.#drafts.put(this.#projectId, path, doc.content, null);
      this.#patch(path, { deleted: true, collab: false, version: null, saved: '' });
      return;
    }
    setTimeout(() => {
      const now = this.#docs.get(path);
      if (now && !this.#shares.has(path)) this.close(path, { force: true });
    }, 1500);
  }

  /** Forgets a kept draft of a shared document (applied or discarded). */
  dismissCollabDraft(path: string): void {
    this.#drafts.delete(this.#projectId, path);
    this.#patch(path, { collabDraft: undefined, collabNotice: undefined });
  }

  #release(path: string): void {
    this.#shares.get(path)?.release();
    this.#shares.delete(path);
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
      collab: this.#collabState,
    };
    for (const l of this.#listeners) l();
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
