import { useQueryClient } from '@tanstack/react-query';
import type { Schemas } from '@vaporform/sdk';
import { useMemo, useRef, useState, type DragEvent, type KeyboardEvent } from 'react';
import { useApp } from '../context.tsx';
import { errorMessage, unwrap } from '../lib/client.ts';
import { httpFiles } from '../lib/files.ts';
import { useApiQueries } from '../lib/queries.ts';
import { useEscape } from '../lib/use-escape.ts';
import { relativeTime } from '../screens/dashboard.tsx';
import { baseName, fileBlob, formatBytes, saveBlob } from './binary-view.tsx';
import { Icon } from './icons.tsx';
import { FileCollaborators, type Collaborator } from './presence.tsx';

type FileEntry = Schemas['FileMeta'];
type DeletedFile = Schemas['DeletedFile'];

/** A file to upload and where it goes (relative to the folder it is dropped on). */
interface Upload {
  file: File;
  path: string;
}

interface TreeNode {
  name: string;
  path: string;
  dir: boolean;
  children: TreeNode[];
}

/** Builds a folder tree from flat paths (folders first, then names). */
export function buildTree(files: FileEntry[]): TreeNode[] {
  const root: TreeNode = { name: '', path: '', dir: true, children: [] };
  for (const f of files) {
    const parts = f.path.split('/');
    let node = root;
    parts.forEach((part, i) => {
      const path = parts.slice(0, i + 1).join('/');
      const dir = i < parts.length - 1;
      let child = node.children.find((c) => c.name === part && c.dir === dir);
      if (!child) {
        child = { name: part, path, dir, children: [] };
        node.children.push(child);
      }
      node = child;
    });
  }
  const sort = (n: TreeNode) => {
    n.children.sort((a, b) => (a.dir === b.dir ? a.name.localeCompare(b.name) : a.dir ? -1 : 1));
    n.children.forEach(sort);
  };
  sort(root);
  return root.children;
}

type Pending = { kind: 'file' | 'folder'; parent: string } | { kind: 'rename'; path: string };

/** How many pending review changes are in files under folder `dir`. */
function pendingUnder(pending: Map<string, number> | undefined, dir: string): number {
  let n = 0;
  for (const [path, count] of pending ?? []) if (path.startsWith(dir + '/')) n += count;
  return n;
}

/** The assistant's unreviewed changes in a file (or under a folder), like unsaved edits. */
function PendingReviewMark(props: { count: number; dir: boolean }) {
  if (props.count === 0) return null;
  const what = `${props.count} change${props.count === 1 ? '' : 's'} by the assistant not reviewed yet`;
  return (
    <span
      className={`pending-review-mark${props.dir ? ' in-folder' : ''}`}
      data-testid="pending-review-mark"
      title={props.dir ? `${what} in this folder` : what}
      aria-label={what}
    >
      {props.dir ? '•' : props.count}
    </span>
  );
}

/**
 * The file tree with new file/folder, rename, delete (and Recently deleted, to restore), upload
 * by button or drag and drop (files and folders; a `.zip` can be imported), a context menu
 * (download a file, history, rename, delete) and the project's zip download.
 */
export function Explorer(props: {
  projectId: string;
  files: FileEntry[] | null;
  canEdit: boolean;
  active: string | null;
  dirty: Set<string>;
  /** Files other people have open (presence): path → who. */
  openBy?: Map<string, Collaborator[]>;
  /** Files with assistant changes nobody has reviewed yet: path → how many. */
  pendingReview?: Map<string, number>;
  onOpen(path: string): void;
  onChanged(): void;
  onRenamed(from: string, to: string): void;
  onDeleted(path: string): void;
  onHistory(path: string): void;
}) {
  const { api, notify } = useApp();
  const { client } = api;
  const fileAccess = useMemo(() => httpFiles(client), [client]);
  const tree = useMemo(() => buildTree(props.files ?? []), [props.files]);
  const [collapsed, setCollapsed] = useState<Set<string>>(new Set());
  const [selected, setSelected] = useState<string | null>(null);
  const [pending, setPending] = useState<Pending | null>(null);
  const [confirmDelete, setConfirmDelete] = useState<string | null>(null);
  useEscape(confirmDelete !== null, () => setConfirmDelete(null));
  const upload = useRef<HTMLInputElement>(null);
  const $api = useApiQueries();
  const queryClient = useQueryClient();
  const [showDeleted, setShowDeleted] = useState(false);
  const byId = { params: { path: { id: props.projectId } } };
  const deleted = $api.useQuery('get', '/api/projects/{id}/deleted', byId, {
    enabled: showDeleted,
    refetchOnMount: 'always',
  });
  const [menu, setMenu] = useState<{ path: string; dir: boolean; x: number; y: number } | null>(
    null,
  );
  useEscape(menu !== null, () => setMenu(null));
  const [zipOffer, setZipOffer] = useState<Upload | null>(null);
  useEscape(zipOffer !== null, () => setZipOffer(null));
  const [dropping, setDropping] = useState(false);
  const isDir = (path: string) => !(props.files ?? []).some((f) => f.path === path);
  const selectedIsDir = selected !== null && !(props.files ?? []).some((f) => f.path === selected);
  const targetDir = selected === null ? '' : selectedIsDir ? selected : parentOf(selected);

  async function commitPending(name: string) {
    const p = pending;
    setPending(null);
    const clean = name.trim().replace(/^\/+|\/+$/g, '');
    if (!p || !clean) return;
    try {
      if (p.kind === 'rename') {
        const to = joinPath(parentOf(p.path), clean);
        if (to === p.path) return;
        const isDir = !(props.files ?? []).some((f) => f.path === p.path);
        const moves = isDir
          ? (props.files ?? [])
              .filter((f) => f.path.startsWith(p.path + '/'))
              .map((f) => [f.path, to + f.path.slice(p.path.length)] as const)
          : [[p.path, to] as const];
        for (const [from, dest] of moves) {
          unwrap(
            await client.POST('/api/projects/{id}/move', {
              params: { path: { id: props.projectId } },
              body: { from, to: dest },
            }),
          );
          props.onRenamed(from, dest);
        }
      } else if (p.kind === 'file') {
        const path = joinPath(p.parent, clean);
        await fileAccess.writeFile(props.projectId, path, '');
        props.onOpen(path);
      } else {
        // Folders exist through their files: keep an empty one with a placeholder file.
        const keep = joinPath(joinPath(p.parent, clean), '.gitkeep');
        await fileAccess.writeFile(props.projectId, keep, '');
      }
      props.onChanged();
    } catch (err) {
      notify(errorMessage(err), 'error');
    }
  }

  async function remove(path: string) {
    setConfirmDelete(null);
    try {
      const isDir = !(props.files ?? []).some((f) => f.path === path);
      const paths = isDir
        ? (props.files ?? []).filter((f) => f.path.startsWith(path + '/')).map((f) => f.path)
        : [path];
      for (const p of paths) {
        unwrap(
          await client.DELETE('/api/projects/{id}/files/{path}', {
            params: { path: { id: props.projectId, path: p } },
          }),
        );
        props.onDeleted(p);
      }
      props.onChanged();
    } catch (err) {
      notify(errorMessage(err), 'error');
    }
  }

  /** Uploads what was chosen or dropped; a single `.zip` is offered for import first. */
  function receive(items: Upload[], dir: string) {
    const placed = items.map((u) => ({ file: u.file, path: joinPath(dir, u.path) }));
    if (placed.length === 1 && /\.zip$/i.test(placed[0]!.file.name)) setZipOffer(placed[0]!);
    else if (placed.length > 0) void writeUploads(placed);
    if (upload.current) upload.current.value = '';
  }

  async function writeUploads(items: Upload[]) {
    setZipOffer(null);
    let done = 0;
    for (const { file, path } of items) {
      try {
        const bytes = new Uint8Array(await file.arrayBuffer());
        const text = decodeUtf8(bytes);
        if (text !== null) await fileAccess.writeFile(props.projectId, path, text);
        else
          await fileAccess.writeFile(props.projectId, path, toBase64(bytes), {
            encoding: 'base64',
          });
        done++;
      } catch (err) {
        notify(`${file.name}: ${errorMessage(err)}`, 'error');
      }
    }
    if (done > 0) notify(done === 1 ? `Uploaded ${items[0]!.path}` : `Uploaded ${done} files`);
    props.onChanged();
  }

  /** Writes the archive's files into the folder it was dropped on (or chosen for). */
  async function importZip({ file, path }: Upload) {
    setZipOffer(null);
    const into = parentOf(path);
    try {
      const result = unwrap(
        await client.POST('/api/projects/{id}/import', {
          params: { path: { id: props.projectId }, query: into ? { into } : {} },
          body: file as unknown as string,
          bodySerializer: (body: unknown) => body as Blob,
          headers: { 'content-type': 'application/zip' },
        }),
      );
      const count = result.imported === 1 ? '1 file' : `${result.imported} files`;
      notify(`Imported ${count} from ${file.name}${into ? ` into ${into}` : ''}`);
      props.onChanged();
    } catch (err) {
      notify(`${file.name}: ${errorMessage(err)}`, 'error');
    }
  }

  function onDrop(e: DragEvent) {
    if (!props.canEdit || !e.dataTransfer.types.includes('Files')) return;
    e.preventDefault();
    setDropping(false);
    const row = (e.target as HTMLElement).closest<HTMLElement>('[data-path]');
    const at = row?.dataset.path ?? '';
    const dir = at === '' || isDir(at) ? at : parentOf(at);
    void droppedFiles(e.dataTransfer).then((items) => receive(items, dir));
  }

  async function downloadFile(path: string) {
    try {
      const file = unwrap(
        await client.GET('/api/projects/{id}/files/{path}', {
          params: { path: { id: props.projectId, path } },
        }),
      );
      saveBlob(fileBlob(file.content, file.encoding, file.mimeType), baseName(path));
    } catch (err) {
      notify(errorMessage(err), 'error');
    }
  }

  async function restoreDeleted(f: DeletedFile) {
    try {
      unwrap(
        await client.POST('/api/projects/{id}/restore', {
          params: { path: { id: props.projectId } },
          body: { path: f.path, version: f.restoreVersion },
        }),
      );
      notify(`Restored ${f.path}`);
      await queryClient.invalidateQueries({ queryKey: ['get', '/api/projects/{id}/deleted'] });
      props.onChanged();
    } catch (err) {
      notify(errorMessage(err), 'error');
    }
  }

  async function download() {
    try {
      const answer = await client.GET('/api/projects/{id}/archive', {
        params: { path: { id: props.projectId } },
        parseAs: 'blob',
      });
      // Named after the project by the server (Content-Disposition).
      const disposition = answer.response.headers.get('content-disposition') ?? '';
      saveBlob(unwrap(answer), /filename="([^"]+)"/.exec(disposition)?.[1] ?? 'project.zip');
    } catch (err) {
      notify(errorMessage(err), 'error');
    }
  }

  function onKey(e: KeyboardEvent, node: TreeNode) {
    if (e.key === 'Enter') {
      e.preventDefault();
      if (node.dir) toggle(node.path);
      else props.onOpen(node.path);
    } else if (e.key === 'F2' && props.canEdit) {
      e.preventDefault();
      setPending({ kind: 'rename', path: node.path });
    } else if (e.key === 'Delete' && props.canEdit) {
      e.preventDefault();
      setConfirmDelete(node.path);
    } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const items = Array.from(
        document.querySelectorAll<HTMLElement>('.tree [role=treeitem] > .tree-row'),
      );
      const i = items.indexOf(e.currentTarget as HTMLElement);
      items[Math.max(0, Math.min(items.length - 1, i + (e.key === 'ArrowDown' ? 1 : -1)))]?.focus();
    } else if (node.dir && (e.key === 'ArrowRight' || e.key === 'ArrowLeft')) {
      e.preventDefault();
      setCollapsed((c) => {
        const n = new Set(c);
        if (e.key === 'ArrowLeft') n.add(node.path);
        else n.delete(node.path);
        return n;
      });
    }
  }

  function toggle(path: string) {
    setCollapsed((c) => {
      const n = new Set(c);
      if (n.has(path)) n.delete(path);
      else n.add(path);
      return n;
    });
  }

  function renderNodes(nodes: TreeNode[], depth: number, parent: string) {
    return (
      <>
        {pending && pending.kind !== 'rename' && pending.parent === parent && (
          <li role="none">
            <NameInput
              depth={depth}
              label={pending.kind === 'file' ? 'New file name' : 'New folder name'}
              initial=""
              onDone={(v) => void commitPending(v)}
              onCancel={() => setPending(null)}
            />
          </li>
        )}
        {nodes
          .filter((n) => !(n.name === '.gitkeep' && !n.dir))
          .map((n) => {
            const open = n.dir && !collapsed.has(n.path);
            return (
              <li
                key={n.path}
                role="treeitem"
                aria-expanded={n.dir ? open : undefined}
                aria-selected={selected === n.path}
              >
                {pending?.kind === 'rename' && pending.path === n.path ? (
                  <NameInput
                    depth={depth}
                    label="New name"
                    initial={n.name}
                    onDone={(v) => void commitPending(v)}
                    onCancel={() => setPending(null)}
                  />
                ) : (
                  <div
                    className={`tree-row ${props.active === n.path ? 'active' : ''} ${selected === n.path ? 'selected' : ''}`}
                    style={{ paddingLeft: 8 + depth * 12 }}
                    tabIndex={0}
                    data-path={n.path}
                    onClick={() => {
                      setSelected(n.path);
                      if (n.dir) toggle(n.path);
                      else props.onOpen(n.path);
                    }}
                    onFocus={() => setSelected(n.path)}
                    onKeyDown={(e) => onKey(e, n)}
                    onContextMenu={(e) => {
                      e.preventDefault();
                      setSelected(n.path);
                      setMenu({ path: n.path, dir: n.dir, x: e.clientX, y: e.clientY });
                    }}
                  >
                    <span className="tree-icon" aria-hidden="true">
                      {n.dir ? (
                        <Icon name={open ? 'chevronDown' : 'chevronRight'} size={12} />
                      ) : (
                        <Icon name="file" size={13} />
                      )}
                    </span>
                    <span className="tree-name">{n.name}</span>
                    <FileCollaborators people={props.openBy?.get(n.path)} />
                    <PendingReviewMark
                      count={
                        n.dir
                          ? pendingUnder(props.pendingReview, n.path)
                          : (props.pendingReview?.get(n.path) ?? 0)
                      }
                      dir={n.dir}
                    />
                    {props.dirty.has(n.path) && (
                      <span className="dirty-dot" aria-label="unsaved">
                        ●
                      </span>
                    )}
                    <span className="tree-actions">
                      {!n.dir && (
                        <button
                          className="icon"
                          title="History"
                          aria-label={`History of ${n.path}`}
                          onClick={(e) => (e.stopPropagation(), props.onHistory(n.path))}
                        >
                          <Icon name="history" size={13} />
                        </button>
                      )}
                      {props.canEdit && (
                        <>
                          <button
                            className="icon"
                            title="Rename (F2)"
                            aria-label={`Rename ${n.path}`}
                            onClick={(e) => (
                              e.stopPropagation(),
                              setPending({ kind: 'rename', path: n.path })
                            )}
                          >
                            <Icon name="rename" size={13} />
                          </button>
                          <button
                            className="icon"
                            title="Delete"
                            aria-label={`Delete ${n.path}`}
                            onClick={(e) => (e.stopPropagation(), setConfirmDelete(n.path))}
                          >
                            <Icon name="trash" size={13} />
                          </button>
                        </>
                      )}
                    </span>
                  </div>
                )}
                {n.dir && open && (
                  <ul role="group">{renderNodes(n.children, depth + 1, n.path)}</ul>
                )}
              </li>
            );
          })}
      </>
    );
  }

  return (
    <section
      className={`explorer${dropping ? ' drop-target' : ''}`}
      aria-label="Explorer"
      onDragOver={(e) => {
        if (!props.canEdit || !e.dataTransfer.types.includes('Files')) return;
        e.preventDefault();
        e.dataTransfer.dropEffect = 'copy';
        setDropping(true);
      }}
      onDragLeave={(e) => {
        if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setDropping(false);
      }}
      onDrop={onDrop}
    >
      <div className="panel-head">
        <h2>Explorer</h2>
        <div className="panel-actions">
          {props.canEdit && (
            <>
              <button
                className="icon"
                title="New file"
                aria-label="New file"
                onClick={() => setPending({ kind: 'file', parent: targetDir })}
              >
                <Icon name="newFile" />
              </button>
              <button
                className="icon"
                title="New folder"
                aria-label="New folder"
                onClick={() => setPending({ kind: 'folder', parent: targetDir })}
              >
                <Icon name="newFolder" />
              </button>
              <button
                className="icon"
                title="Upload files"
                aria-label="Upload files"
                onClick={() => upload.current?.click()}
              >
                <Icon name="upload" />
              </button>
              <input
                ref={upload}
                type="file"
                multiple
                hidden
                aria-hidden="true"
                tabIndex={-1}
                onChange={(e) =>
                  receive(
                    Array.from(e.target.files ?? []).map((file) => ({ file, path: file.name })),
                    targetDir,
                  )
                }
              />
            </>
          )}
          <button
            className={`icon${showDeleted ? ' active' : ''}`}
            title="Recently deleted"
            aria-label="Recently deleted"
            aria-pressed={showDeleted}
            onClick={() => setShowDeleted((v) => !v)}
          >
            <Icon name="trash" />
          </button>
          <button
            className="icon"
            title="Download as zip"
            aria-label="Download as zip"
            onClick={() => void download()}
          >
            <Icon name="download" />
          </button>
          <button
            className="icon"
            title="Refresh"
            aria-label="Refresh files"
            onClick={props.onChanged}
          >
            <Icon name="refresh" />
          </button>
        </div>
      </div>
      {props.files === null ? (
        <p className="muted small pad">Loading files…</p>
      ) : (
        <ul className="tree" role="tree" aria-label="Files">
          {renderNodes(tree, 0, '')}
          {props.files.length === 0 && !pending && (
            <li className="muted small pad">No files yet.</li>
          )}
        </ul>
      )}
      {showDeleted && (
        <section className="deleted-files" aria-label="Recently deleted">
          <div className="panel-head">
            <h2>Recently deleted</h2>
            <button
              className="icon"
              aria-label="Close Recently deleted"
              onClick={() => setShowDeleted(false)}
            >
              <Icon name="close" size={12} />
            </button>
          </div>
          {!deleted.data ? (
            <p className="muted small pad">
              {deleted.error ? errorMessage(deleted.error) : 'Loading…'}
            </p>
          ) : deleted.data.files.length === 0 ? (
            <p className="muted small pad">No deleted files.</p>
          ) : (
            <ul>
              {deleted.data.files.map((f) => (
                <li key={f.path} data-deleted-path={f.path}>
                  <span className="deleted-path" title={`${f.path} · ${formatBytes(f.size)}`}>
                    {f.path}
                  </span>
                  <span className="muted small">{relativeTime(f.deletedAt)}</span>
                  {props.canEdit && (
                    <button
                      className="small"
                      aria-label={`Restore ${f.path}`}
                      onClick={() => void restoreDeleted(f)}
                    >
                      Restore
                    </button>
                  )}
                </li>
              ))}
            </ul>
          )}
        </section>
      )}
      {menu && (
        <div
          className="context-backdrop"
          role="presentation"
          onClick={() => setMenu(null)}
          onContextMenu={(e) => (e.preventDefault(), setMenu(null))}
        >
          <div
            className="context-menu"
            role="menu"
            aria-label={`Actions for ${menu.path}`}
            style={{ left: menu.x, top: menu.y }}
            onClick={() => setMenu(null)}
          >
            {!menu.dir && (
              <>
                <button role="menuitem" autoFocus onClick={() => props.onOpen(menu.path)}>
                  Open
                </button>
                <button role="menuitem" onClick={() => void downloadFile(menu.path)}>
                  Download
                </button>
                <button role="menuitem" onClick={() => props.onHistory(menu.path)}>
                  History
                </button>
              </>
            )}
            {props.canEdit && (
              <>
                {menu.dir && (
                  <button
                    role="menuitem"
                    autoFocus
                    onClick={() => setPending({ kind: 'file', parent: menu.path })}
                  >
                    New file here
                  </button>
                )}
                <button
                  role="menuitem"
                  onClick={() => setPending({ kind: 'rename', path: menu.path })}
                >
                  Rename
                </button>
                <button role="menuitem" onClick={() => setConfirmDelete(menu.path)}>
                  Delete
                </button>
              </>
            )}
          </div>
        </div>
      )}
      {zipOffer && (
        <div className="modal-backdrop" role="presentation">
          <div className="modal" role="dialog" aria-modal="true" aria-labelledby="zip-title">
            <h2 id="zip-title">Import {zipOffer.file.name}?</h2>
            <p>
              Its files can be written into{' '}
              {parentOf(zipOffer.path) ? (
                <code>{parentOf(zipOffer.path)}/</code>
              ) : (
                'the project, at the top'
              )}{' '}
              (checked whole first), or the archive can be uploaded as a file.
            </p>
            <div className="row end">
              <button onClick={() => setZipOffer(null)}>Cancel</button>
              <button onClick={() => void writeUploads([zipOffer])}>Upload the .zip file</button>
              <button className="primary" autoFocus onClick={() => void importZip(zipOffer)}>
                Import its files
              </button>
            </div>
          </div>
        </div>
      )}
      {confirmDelete && (
        <div className="modal-backdrop" role="presentation">
          <div className="modal" role="dialog" aria-modal="true" aria-labelledby="delfile-title">
            <h2 id="delfile-title">Delete {confirmDelete}?</h2>
            <p>Its history is kept: restore it from Recently deleted (the bin above the files).</p>
            <div className="row end">
              <button autoFocus onClick={() => setConfirmDelete(null)}>
                Cancel
              </button>
              <button className="danger" onClick={() => void remove(confirmDelete)}>
                Delete
              </button>
            </div>
          </div>
        </div>
      )}
    </section>
  );
}

function NameInput(props: {
  depth: number;
  label: string;
  initial: string;
  onDone(v: string): void;
  onCancel(): void;
}) {
  const [value, setValue] = useState(props.initial);
  const done = useRef(false);
  return (
    <input
      className="tree-input"
      style={{ marginLeft: 8 + props.depth * 12 }}
      aria-label={props.label}
      autoFocus
      value={value}
      onChange={(e) => setValue(e.target.value)}
      onKeyDown={(e) => {
        if (e.key === 'Enter') {
          done.current = true;
          props.onDone(value);
        } else if (e.key === 'Escape') {
          done.current = true;
          props.onCancel();
        }
      }}
      onBlur={() => {
        if (!done.current) props.onCancel();
      }}
    />
  );
}

/** The folder part of a path ('' for the root). */
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

function joinPath(dir: string, name: string): string {
  return dir ? `${dir}/${name}` : name;
}

function decodeUtf8(bytes: Uint8Array): string | null {
  if (bytes.includes(0)) return null;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000)
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/**
 * The files of a drop, folders walked (paths relative to the drop). Entries are taken during
 * the event (the browser empties the DataTransfer after it); a drop without entries (a
 * synthetic one) gives its plain files.
 */
function droppedFiles(dt: DataTransfer): Promise<Upload[]> {
  const entries = Array.from(dt.items, (item) => item.webkitGetAsEntry?.() ?? null);
  const plain = Array.from(dt.files, (file) => ({ file, path: file.name }));
  if (entries.length === 0 || entries.some((e) => e === null)) return Promise.resolve(plain);
  const out: Upload[] = [];
  const walk = async (entry: FileSystemEntry, prefix: string): Promise<void> => {
    if (isFileEntry(entry)) {
      const file = await new Promise<File>((resolve, reject) => entry.file(resolve, reject));
      out.push({ file, path: prefix + file.name });
    } else if (isDirectoryEntry(entry)) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((resolve, reject) =>
          reader.readEntries(resolve, reject),
        );
        if (batch.length === 0) break;
        for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
      }
    }
  };
  return (async () => {
    for (const entry of entries) await walk(entry!, '');
    return out;
  })();
}

function isFileEntry(e: FileSystemEntry): e is FileSystemFileEntry {
  return e.isFile;
}

function isDirectoryEntry(e: FileSystemEntry): e is FileSystemDirectoryEntry {
  return e.isDirectory;
}
