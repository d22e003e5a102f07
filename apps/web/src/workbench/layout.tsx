import {
  useCallback,
  useEffect,
  useRef,
  useState,
  useSyncExternalStore,
  type KeyboardEvent,
  type PointerEvent,
  type ReactNode,
} from 'react';
import type { Schemas } from '@vaporform/sdk';
import type { DocumentStore } from '../editor/documents.ts';
import { isBinaryPath } from '../lib/languages.ts';
import { useApiQueries } from '../lib/queries.ts';
import { errorMessage } from '../lib/client.ts';
import './layout.css';

/** The sizes a person gives the workbench's panes by dragging their borders (px). */
export interface PaneSizes {
  /** The side bar (explorer, search, history, settings). */
  side: number;
  /** The side bar while it shows a conversation (the assistant, the session chat). */
  wide: number;
  /** The preview on the right. */
  preview: number;
  /** The bottom panel (terminal, output). */
  panel: number;
}
export type Pane = keyof PaneSizes;

export const defaultSizes: PaneSizes = { side: 260, wide: 380, preview: 420, panel: 240 };
const minSizes: PaneSizes = { side: 160, wide: 240, preview: 240, panel: 80 };

const layoutKey = (projectId: string) => `vf.layout:${projectId}`;

function readSizes(projectId: string): PaneSizes {
  try {
    const raw = JSON.parse(localStorage.getItem(layoutKey(projectId)) ?? '{}') as unknown;
    const saved = (typeof raw === 'object' && raw ? raw : {}) as Record<string, unknown>;
    const pick = (k: Pane) =>
      typeof saved[k] === 'number' && Number.isFinite(saved[k]) ? saved[k] : defaultSizes[k];
    return {
      side: pick('side'),
      wide: pick('wide'),
      preview: pick('preview'),
      panel: pick('panel'),
    };
  } catch {
    return { ...defaultSizes };
  }
}

/** The largest a pane may be in the window as it is now (the editor keeps room). */
function maxSize(pane: Pane): number {
  return pane === 'panel'
    ? Math.max(minSizes.panel, window.innerHeight - 200)
    : Math.max(minSizes[pane], Math.round(window.innerWidth * (pane === 'preview' ? 0.6 : 0.4)));
}

function clamp(pane: Pane, size: number): number {
  return Math.round(Math.min(maxSize(pane), Math.max(minSizes[pane], size)));
}

/**
 * Pane sizes of one project, remembered in this browser (`vf.layout:<project>`): set by a
 * drag, back to the default by a double-click on the border.
 */
export function usePaneSizes(projectId: string): {
  sizes: PaneSizes;
  resize(pane: Pane, size: number): void;
  reset(pane: Pane): void;
} {
  const [sizes, setSizes] = useState(() => readSizes(projectId));
  useEffect(() => setSizes(readSizes(projectId)), [projectId]);
  const write = useCallback(
    (next: (s: PaneSizes) => PaneSizes) =>
      setSizes((s) => {
        const n = next(s);
        localStorage.setItem(layoutKey(projectId), JSON.stringify(n));
        return n;
      }),
    [projectId],
  );
  const resize = useCallback(
    (pane: Pane, size: number) => write((s) => ({ ...s, [pane]: clamp(pane, size) })),
    [write],
  );
  const reset = useCallback(
    (pane: Pane) => write((s) => ({ ...s, [pane]: defaultSizes[pane] })),
    [write],
  );
  return { sizes, resize, reset };
}

/**
 * The border between two panes: drag it (pointer or arrow keys) to resize `pane`, double-click
 * it to give the pane its default size. `grow` says which way the pane grows: 1 when it is
 * left of (or above) the border, -1 when right of (or below) it.
 */
export function Splitter(props: {
  pane: Pane;
  label: string;
  size: number;
  grow: 1 | -1;
  onResize(size: number): void;
  onReset(): void;
}) {
  const vertical = props.pane !== 'panel';
  const start = useRef<{ at: number; size: number } | null>(null);
  const coord = (e: PointerEvent) => (vertical ? e.clientX : e.clientY);
  return (
    <div
      className={`splitter ${vertical ? 'splitter-v' : 'splitter-h'}`}
      role="separator"
      aria-orientation={vertical ? 'vertical' : 'horizontal'}
      aria-label={props.label}
      aria-valuenow={props.size}
      aria-valuemin={minSizes[props.pane]}
      tabIndex={0}
      title="Drag to resize, double-click to reset"
      data-pane={props.pane}
      onPointerDown={(e) => {
        if (e.button !== 0) return;
        e.preventDefault();
        e.currentTarget.setPointerCapture(e.pointerId);
        start.current = { at: coord(e), size: props.size };
        document.body.classList.add('resizing');
      }}
      onPointerMove={(e) => {
        if (!start.current) return;
        props.onResize(start.current.size + props.grow * (coord(e) - start.current.at));
      }}
      onPointerUp={(e) => {
        start.current = null;
        document.body.classList.remove('resizing');
        e.currentTarget.releasePointerCapture(e.pointerId);
      }}
      onLostPointerCapture={() => {
        start.current = null;
        document.body.classList.remove('resizing');
      }}
      onDoubleClick={props.onReset}
      onKeyDown={(e: KeyboardEvent) => {
        const step = e.shiftKey ? 50 : 10;
        const less = vertical ? 'ArrowLeft' : 'ArrowUp';
        const more = vertical ? 'ArrowRight' : 'ArrowDown';
        if (e.key === less || e.key === more) {
          e.preventDefault();
          props.onResize(props.size + (e.key === more ? step : -step) * props.grow);
        } else if (e.key === 'Enter') props.onReset();
      }}
    />
  );
}

/**
 * Open editor tabs come back when the person returns to the project: the paths and the active
 * one, per user and project in this browser (`vf.tabs:u:<user>:<project>`).
 */
export function useRememberedTabs(
  store: DocumentStore,
  userId: string | undefined,
  projectId: string,
): void {
  const key = userId ? `vf.tabs:u:${userId}:${projectId}` : null;
  const { docs, active } = useSyncExternalStore(store.subscribe, store.snapshot);
  const restored = useRef<string | null>(null);
  useEffect(() => {
    if (!key || restored.current === key) return;
    restored.current = key;
    let saved: { paths?: unknown; active?: unknown } = {};
    try {
      saved = JSON.parse(localStorage.getItem(key) ?? '{}') as typeof saved;
    } catch {
      // Unreadable: start with no tabs.
    }
    const paths = Array.isArray(saved.paths)
      ? saved.paths.filter((p): p is string => typeof p === 'string' && !isBinaryPath(p))
      : [];
    const wanted = typeof saved.active === 'string' ? saved.active : null;
    // All at once (each tab is there at once, in order; the texts load meanwhile), so a file
    // the person opens while they load stays the active one. A file gone since is dropped.
    for (const p of paths) void store.open(p).catch(() => store.close(p, { force: true }));
    if (wanted && store.get(wanted)) store.activate(wanted);
  }, [key, store]);
  useEffect(() => {
    // Not before the restore began: an empty first snapshot would forget the tabs.
    if (!key || restored.current !== key) return;
    localStorage.setItem(key, JSON.stringify({ paths: docs.map((d) => d.path), active }));
  }, [active, docs, key]);
}

/** True while the window is phone-sized (the read-only layout). */
export function useNarrow(query = '(max-width: 700px)'): boolean {
  const [narrow, setNarrow] = useState(() => window.matchMedia(query).matches);
  useEffect(() => {
    const m = window.matchMedia(query);
    const on = () => setNarrow(m.matches);
    on();
    m.addEventListener('change', on);
    return () => m.removeEventListener('change', on);
  }, [query]);
  return narrow;
}

/**
 * The workbench at phone width: a deliberate read-only layout, not a crushed desktop. The
 * project's files and a viewer of one, or the preview; a switch between the two.
 */
export function PhoneWorkbench(props: {
  projectId: string;
  name: string;
  status: string;
  files: Schemas['FileMeta'][] | null;
  preview: ReactNode;
  onBack(): void;
}) {
  const [view, setView] = useState<'files' | 'preview'>('preview');
  const [path, setPath] = useState<string | null>(null);
  return (
    <div className="phone-workbench" data-testid="phone-workbench">
      <header className="phone-bar">
        <button className="ghost" onClick={props.onBack} aria-label="Back to projects">
          ‹
        </button>
        <span className="title">{props.name}</span>
        <span className="muted small">{props.status}</span>
        <div className="phone-switch" role="tablist" aria-label="Show">
          {(['files', 'preview'] as const).map((v) => (
            <button
              key={v}
              role="tab"
              aria-selected={view === v}
              className={view === v ? 'on' : ''}
              onClick={() => setView(v)}
            >
              {v === 'files' ? 'Files' : 'Preview'}
            </button>
          ))}
        </div>
      </header>
      <main className="phone-body">
        {view === 'preview' ? (
          props.preview
        ) : path ? (
          <FileViewer projectId={props.projectId} path={path} onBack={() => setPath(null)} />
        ) : (
          <ul className="phone-files" aria-label="Files">
            {(props.files ?? []).map((f) => (
              <li key={f.path}>
                <button className="linklike" onClick={() => setPath(f.path)}>
                  {f.path}
                </button>
              </li>
            ))}
            {props.files === null && <li className="muted small">Loading…</li>}
          </ul>
        )}
      </main>
      <footer className="phone-note muted small">
        Read only on a phone: edit on a larger screen.
      </footer>
    </div>
  );
}

/** One file's text, read only (no editor on a phone). */
function FileViewer(props: { projectId: string; path: string; onBack(): void }) {
  const file = useApiQueries().useQuery('get', '/api/projects/{id}/files/{path}', {
    params: { path: { id: props.projectId, path: props.path } },
  });
  const binary = file.data?.encoding === 'base64';
  return (
    <section className="phone-viewer" aria-label={`File ${props.path}`}>
      <div className="phone-viewer-head">
        <button className="ghost" onClick={props.onBack}>
          ‹ Files
        </button>
        <strong className="small">{props.path}</strong>
      </div>
      {file.error ? (
        <p className="error small pad">{errorMessage(file.error)}</p>
      ) : !file.data ? (
        <p className="muted small pad">Loading…</p>
      ) : binary ? (
        <p className="muted small pad">A binary file ({file.data.size} bytes).</p>
      ) : (
        <pre className="phone-code" data-testid="phone-file">
          {file.data.content}
        </pre>
      )}
    </section>
  );
}
