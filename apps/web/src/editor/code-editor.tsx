import { useEffect, useRef, useState } from 'react';
import type * as Monaco from 'monaco-editor';
import { languageOf } from '../lib/languages.ts';
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
 * and cursor survive tab switches); edits go to the DocumentStore, Ctrl/Cmd+S saves.
 */
export function CodeEditor(props: {
  store: DocumentStore;
  doc: Doc;
  theme: 'dark' | 'light';
  readOnly: boolean;
  onSave(path: string): void;
  /** Line to reveal once (from search or quick open). */
  revealLine?: { path: string; line: number; nonce: number } | undefined;
}) {
  const host = useRef<HTMLDivElement>(null);
  const editorRef = useRef<Monaco.editor.IStandaloneCodeEditor | null>(null);
  const monacoRef = useRef<MonacoModule | null>(null);
  const models = useRef(new Map<string, Monaco.editor.ITextModel>());
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
        editor.onDidChangeModelContent(() => {
          const model = editor.getModel();
          if (model) current.current.store.edit(pathOf(model), model.getValue());
        });
        editorRef.current = editor;
        setReady(true);
      })
      .catch((err: Error) => setLoadError(err.message));
    const ownModels = models.current;
    return () => {
      disposed = true;
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
    } else if (model.getValue() !== doc.content) {
      // Changed outside the editor (reload, conflict resolution): replace, keeping undo.
      model.pushEditOperations(
        [],
        [{ range: model.getFullModelRange(), text: doc.content }],
        () => null,
      );
    }
    if (editor.getModel() !== model) editor.setModel(model);
    editor.updateOptions({ readOnly: props.readOnly || doc.loading });
    // Drop models of closed tabs.
    const open = new Set(props.store.snapshot().docs.map((d) => d.path));
    for (const [path, m] of models.current) {
      if (!open.has(path)) {
        m.dispose();
        models.current.delete(path);
      }
    }
  }, [ready, props.doc, props.readOnly, props.store]);

  useEffect(() => {
    monacoRef.current?.editor.setTheme(props.theme === 'dark' ? 'vs-dark' : 'vs');
  }, [props.theme, ready]);

  useEffect(() => {
    const r = props.revealLine;
    const editor = editorRef.current;
    if (!ready || !r || !editor || r.path !== props.doc.path) return;
    editor.revealLineInCenter(r.line);
    editor.setPosition({ lineNumber: r.line, column: 1 });
    editor.focus();
  }, [props.revealLine, ready, props.doc.path]);

  return (
    <div className="code-editor" data-testid="code-editor">
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
