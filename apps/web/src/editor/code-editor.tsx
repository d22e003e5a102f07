import { useEffect, useRef, useState } from 'react';
import type * as Monaco from 'monaco-editor';
import { languageOf } from '../lib/languages.ts';
import { MonacoBinding } from './collab-binding.ts';
import type { Doc, DocumentStore } from './documents.ts';

type MonacoModule = typeof Monaco;

let monacoPromise: Promise<MonacoModule> | undefined;

/** Loads Monaco once (its own chunk). */
export function loadMonaco(): Promise<MonacoModule> {
  monacoPromise ??= import('./monaco.ts').then((m) => m.monaco);
  return monacoPromise;
}

/**
 * The Monaco editor for the active document. One editor, one model per open file (undo history
 * and cursor survive tab switches); edits go to the DocumentStore, Ctrl/Cmd+S saves. A file
 * the store opened as a shared document is bound to it ({@link MonacoBinding}): edits go live,
 * others' cursors show, undo/redo undo only your own edits.
 */
export function CodeEditor(props: {
  store: DocumentStore;
  doc: Doc;
  theme: 'dark' | 'light';
  readOnly: boolean;
  onSave(path: string): void;
  /** Line to reveal once (from search or quick open). */
  revealLine?: { path: string; line: number; nonce: number } | undefined;
  /** The assistant's changes in this file nobody has reviewed yet, marked in the gutter. */
  pending?: PendingMark[] | undefined;
  /** A pending mark was clicked: open the review of its turn. */
  onReviewPending?(changesetId: string): void;
}) {
  const host = useRef<HTMLDivElement>(null);
  const editorRef = useRef<Monaco.editor.IStandaloneCodeEditor | null>(null);
  const monacoRef = useRef<MonacoModule | null>(null);
  const models = useRef(new Map<string, Monaco.editor.ITextModel>());
  const bindings = useRef(new Map<string, MonacoBinding>());
  const current = useRef(props);
  current.current = props;
  const [ready, setReady] = useState(false);
  const [loadError, setLoadError] = useState<string | null>(null);

  useEffect(() => {
    let disposed = false;
    loadMonaco()
      .then((monaco) => {
        if (disposed || !host.current) return;
        monacoRef.current = monaco;
        const editor = monaco.editor.create(host.current, {
          automaticLayout: true,
          minimap: { enabled: true },
          fontSize: 13,
          tabSize: 2,
          scrollBeyondLastLine: false,
          theme: current.current.theme === 'dark' ? 'vs-dark' : 'vs',
          ariaLabel: 'Code editor',
        });
        editor.addCommand(monaco.KeyMod.CtrlCmd | monaco.KeyCode.KeyS, () => {
          const model = editor.getModel();
          if (model) current.current.onSave(pathOf(model));
        });
        // In a shared document undo/redo are the person's own (Monaco's stack would also undo
        // what others typed).
        const undoRedo = (redo: boolean) => () => {
          const model = editor.getModel();
          const binding = model ? bindings.current.get(pathOf(model)) : undefined;
          if (!binding) editor.trigger('keyboard', redo ? 'redo' : 'undo', null);
          else if (redo) binding.redoOwn();
          else binding.undoOwn();
        };
        editor.addCommand(monaco.KeyMod.CtrlCmd | monaco.KeyCode.KeyZ, undoRedo(false));
        editor.addCommand(
          monaco.KeyMod.CtrlCmd | monaco.KeyMod.Shift | monaco.KeyCode.KeyZ,
          undoRedo(true),
        );
        editor.addCommand(monaco.KeyMod.CtrlCmd | monaco.KeyCode.KeyY, undoRedo(true));
        // A click on a pending mark opens the review of the turn that made the change.
        editor.onMouseDown((e) => {
          const { type, position } = e.target;
          const gutter = monaco.editor.MouseTargetType;
          if (type !== gutter.GUTTER_LINE_DECORATIONS && type !== gutter.GUTTER_GLYPH_MARGIN)
            return;
          const hit = position && markAt(current.current.pending, position.lineNumber);
          if (hit) current.current.onReviewPending?.(hit.changesetId);
        });
        editor.onDidChangeModelContent(() => {
          const model = editor.getModel();
          if (!model || bindings.current.has(pathOf(model))) return; // the binding reports
          current.current.store.edit(pathOf(model), model.getValue());
        });
        editorRef.current = editor;
        setReady(true);
      })
      .catch((err: Error) => setLoadError(err.message));
    const ownModels = models.current;
    const ownBindings = bindings.current;
    return () => {
      disposed = true;
      for (const b of ownBindings.values()) b.dispose();
      ownBindings.clear();
      editorRef.current?.dispose();
      editorRef.current = null;
      for (const m of ownModels.values()) m.dispose();
      ownModels.clear();
    };
  }, []);

  // Show the active document; keep its model in step with the store (remote reloads, renames).
  useEffect(() => {
    const monaco = monacoRef.current;
    const editor = editorRef.current;
    if (!ready || !monaco || !editor) return;
    const { doc } = props;
    let model = models.current.get(doc.path);
    if (!model) {
      model = monaco.editor.createModel(
        doc.content,
        languageOf(doc.path),
        monaco.Uri.file('/' + doc.path),
      );
      models.current.set(doc.path, model);
    }
    const { store } = props;
    const share = doc.collab ? store.collabDoc(doc.path) : null;
    let binding = bindings.current.get(doc.path);
    if (binding && !share) {
      binding.dispose();
      bindings.current.delete(doc.path);
      binding = undefined;
    }
    if (share && !binding) {
      // The shared document owns the text from now on.
      const path = doc.path;
      binding = new MonacoBinding({
        model,
        share,
        identity: store.collabIdentity(),
        events: {
          onText: (text, pending, local) => store.collabText(path, text, pending, local),
          onRefused: (reason, text) => store.collabRefused(path, reason, text),
          onDeleted: () => store.collabDeleted(path, share),
        },
      });
      bindings.current.set(path, binding);
    } else if (!binding && model.getValue() !== doc.content) {
      // Changed outside the editor (reload, conflict resolution): replace, keeping undo.
      model.pushEditOperations(
        [],
        [{ range: model.getFullModelRange(), text: doc.content }],
        () => null,
      );
    }
    if (editor.getModel() !== model) editor.setModel(model);
    editor.updateOptions({ readOnly: props.readOnly || doc.loading });
    for (const [path, b] of bindings.current) {
      if (path === doc.path) {
        b.setReadOnly(props.readOnly);
        b.attach(editor);
      } else b.detach();
    }
    // Drop models (and bindings) of closed tabs.
    const open = new Set(store.snapshot().docs.map((d) => d.path));
    for (const [path, m] of models.current) {
      if (!open.has(path)) {
        bindings.current.get(path)?.dispose();
        bindings.current.delete(path);
        m.dispose();
        models.current.delete(path);
      }
    }
  }, [ready, props.doc, props.readOnly, props.store]);

  useEffect(() => {
    monacoRef.current?.editor.setTheme(props.theme === 'dark' ? 'vs-dark' : 'vs');
  }, [props.theme, ready]);

  // Pending review marks of the shown file (the server places them in the file as it is now),
  // set again whenever its text is replaced (loaded, reloaded): a full replace would stretch them.
  const { pending } = props;
  useEffect(() => {
    const editor = editorRef.current;
    if (!ready || !editor || !pending?.length) return;
    const marks = editor.createDecorationsCollection(
      pending.flatMap((m) => {
        if (m.line === null) return [];
        const first = Math.max(1, m.line);
        const last = m.lines > 0 ? m.line + m.lines - 1 : first;
        const tooltip = `${m.lines > 0 ? 'Changed' : 'Lines removed here'} by the assistant, not reviewed yet: click to review`;
        return [
          {
            range: { startLineNumber: first, startColumn: 1, endLineNumber: last, endColumn: 1 },
            options: {
              isWholeLine: true,
              stickiness: 1, // NeverGrowsWhenTypingAtEdges
              linesDecorationsClassName: `pending-mark${m.lines > 0 ? '' : ' pending-removal'}`,
              linesDecorationsTooltip: tooltip,
              overviewRuler: { color: '#d19a1f', position: 1 },
            },
          },
        ];
      }),
    );
    return () => marks.clear();
  }, [ready, pending, props.doc.path, props.doc.version, props.doc.loading]);

  useEffect(() => {
    const r = props.revealLine;
    const editor = editorRef.current;
    if (!ready || !r || !editor || r.path !== props.doc.path) return;
    editor.revealLineInCenter(r.line);
    editor.setPosition({ lineNumber: r.line, column: 1 });
    editor.focus();
  }, [props.revealLine, ready, props.doc.path]);

  const { doc, store } = props;
  const collabState = store.snapshot().collab;
  return (
    <div className="code-editor" data-testid="code-editor">
      {props.readOnly && (
        <div className="banner info collab-viewer" role="status" data-testid="view-only">
          View only — you are a viewer
        </div>
      )}
      {doc.collab && collabState !== 'open' && (
        <div className="banner warn" role="status" data-testid="collab-offline">
          Offline — your edits are kept here and sent when the connection is back.
        </div>
      )}
      {doc.collab && doc.collabDraft !== undefined && (
        <div className="banner warn" role="alert" data-testid="collab-draft">
          <span>
            {doc.collabNotice ??
              'You have text of this file on this device that never reached the server.'}{' '}
            Your text is kept as a draft on this device.
          </span>
          <span className="row">
            {!props.readOnly && (
              <button
                onClick={() => {
                  const draft = doc.collabDraft;
                  const b = bindings.current.get(doc.path);
                  if (b && draft !== undefined) b.replaceText(draft);
                  store.dismissCollabDraft(doc.path);
                }}
              >
                Apply my draft
              </button>
            )}
            <button
              onClick={() => {
                if (doc.collabDraft !== undefined)
                  void navigator.clipboard?.writeText(doc.collabDraft).catch(() => undefined);
              }}
            >
              Copy it
            </button>
            <button onClick={() => store.dismissCollabDraft(doc.path)}>Discard it</button>
          </span>
        </div>
      )}
      {!ready && !loadError && (
        <div className="editor-loading" role="status">
          Loading editor…
        </div>
      )}
      {loadError && (
        <p className="error" role="alert">
          The editor could not load: {loadError}
        </p>
      )}
      <div ref={host} className="monaco-host" />
    </div>
  );
}

/** Where a pending hunk is in the file (`line` null: it cannot be placed; 0 lines: a removal). */
export interface PendingMark {
  changesetId: string;
  line: number | null;
  lines: number;
}

/** The pending mark covering `line`, if any. */
function markAt(marks: PendingMark[] | undefined, line: number): PendingMark | undefined {
  return marks?.find(
    (m) =>
      m.line !== null &&
      line >= Math.max(1, m.line) &&
      line <= Math.max(1, m.lines > 0 ? m.line + m.lines - 1 : m.line),
  );
}

function pathOf(model: Monaco.editor.ITextModel): string {
  return model.uri.path.replace(/^\//, '');
}

/** A side-by-side diff (Monaco's diff editor), read-only. */
export function DiffView(props: {
  original: string;
  modified: string;
  path: string;
  theme: 'dark' | 'light';
  originalLabel: string;
  modifiedLabel: string;
}) {
  const host = useRef<HTMLDivElement>(null);
  const [ready, setReady] = useState(false);
  useEffect(() => {
    let disposed = false;
    let cleanup: (() => void) | undefined;
    void loadMonaco().then((monaco) => {
      if (disposed || !host.current) return;
      const lang = languageOf(props.path);
      const original = monaco.editor.createModel(props.original, lang);
      const modified = monaco.editor.createModel(props.modified, lang);
      const diff = monaco.editor.createDiffEditor(host.current, {
        automaticLayout: true,
        readOnly: true,
        originalEditable: false,
        renderSideBySide: true,
        // Its gutter menu re-reads context keys on a debounce, after a dialog closing has
        // disposed them ("AbstractContextKeyService has been disposed"); a read-only diff
        // needs no menu.
        renderGutterMenu: false,
        theme: props.theme === 'dark' ? 'vs-dark' : 'vs',
      });
      diff.setModel({ original, modified });
      setReady(true);
      cleanup = () => {
        diff.dispose();
        original.dispose();
        modified.dispose();
      };
    });
    return () => {
      disposed = true;
      cleanup?.();
    };
  }, [props.original, props.modified, props.path, props.theme]);
  return (
    <div className="diff-view">
      <div className="diff-labels">
        <span>{props.originalLabel}</span>
        <span>{props.modifiedLabel}</span>
      </div>
      {!ready && (
        <div className="editor-loading" role="status">
          Loading diff…
        </div>
      )}
      <div ref={host} className="monaco-host" data-testid="diff-view" />
    </div>
  );
}
