import { useState } from 'react';
import { useEscape } from '../lib/use-escape.ts';
import { CodeEditor, DiffView, type PendingMark } from '../editor/code-editor.tsx';
import { isDirty, type ChangeAuthor, type Doc, type DocumentStore } from '../editor/documents.ts';
import { BinaryView, showsAsBinary } from './binary-view.tsx';

/** Editor tabs (dirty markers, close), the Monaco editor, and the save-conflict view. */
export function EditorArea(props: {
  store: DocumentStore;
  docs: Doc[];
  active: string | null;
  theme: 'dark' | 'light';
  canEdit: boolean;
  onSave(path: string): void;
  revealLine?: { path: string; line: number; nonce: number } | undefined;
  /** Pending review marks by path, and what a click on one does. */
  pending?: Map<string, PendingMark[]>;
  onReviewPending?(changesetId: string): void;
  /** Who made a change, as people say it ("Ada Lovelace", "the assistant"). */
  authorName?(by: ChangeAuthor): string;
}) {
  const { store, docs } = props;
  const doc = docs.find((d) => d.path === props.active) ?? null;
  const [askClose, setAskClose] = useState<string | null>(null);
  const who = (by: ChangeAuthor | undefined) =>
    capitalize((by && props.authorName?.(by)) ?? 'someone else');
  useEscape(askClose !== null, () => setAskClose(null));

  function close(path: string) {
    if (!store.close(path)) setAskClose(path);
  }

  function textEditor(d: Doc) {
    return (
      <CodeEditor
        store={store}
        doc={d}
        theme={props.theme}
        readOnly={!props.canEdit}
        onSave={props.onSave}
        revealLine={props.revealLine}
        pending={props.pending?.get(d.path)}
        onReviewPending={props.onReviewPending}
      />
    );
  }

  return (
    <section className="editor-area" aria-label="Editor">
      <div className="tabs" role="tablist" aria-label="Open files">
        {docs.map((d) => (
          <div
            key={d.path}
            role="tab"
            aria-selected={d.path === props.active}
            tabIndex={d.path === props.active ? 0 : -1}
            className={`tab ${d.path === props.active ? 'active' : ''}`}
            title={d.path}
            onClick={() => store.activate(d.path)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' || e.key === ' ') store.activate(d.path);
            }}
            onAuxClick={(e) => e.button === 1 && close(d.path)}
            data-path={d.path}
          >
            <span className="tab-name">{d.path.split('/').pop()}</span>
            {isDirty(d) ? (
              <span className="dirty-dot" aria-label="unsaved changes" title="Unsaved changes">
                ●
              </span>
            ) : null}
            <button
              className="icon tab-close"
              aria-label={`Close ${d.path}`}
              onClick={(e) => {
                e.stopPropagation();
                close(d.path);
              }}
            >
              ×
            </button>
          </div>
        ))}
      </div>
      {doc ? (
        <>
          <div className="breadcrumbs">
            {doc.path.split('/').join(' › ')}
            {doc.version !== null && <span className="muted small"> · v{doc.version}</span>}
            {doc.saving && <span className="muted small"> · saving…</span>}
          </div>
          {doc.restoredDraft && (
            <div className="banner info" role="status">
              <span>
                Restored your unsaved changes to this file from this device. Save to keep them.
              </span>
              <button onClick={() => store.revert(doc.path)}>Discard them</button>
            </div>
          )}
          {doc.remoteChanged && !doc.conflict && (
            <div className="banner warn" role="status">
              {who(doc.remoteChangedBy)} changed this file. Saving will let you compare and choose.
            </div>
          )}
          {doc.deleted && (
            <div className="banner warn" role="status">
              This file was deleted. Save to create it again with your text.
            </div>
          )}
          {doc.error && (
            <div className="banner error" role="alert">
              {doc.error}
            </div>
          )}
          {doc.conflict ? (
            <div className="conflict" data-testid="conflict">
              <div className="banner warn" role="alert">
                <span>
                  <span data-testid="conflict-author">{who(doc.conflict.by)}</span> saved{' '}
                  <strong>{doc.path}</strong> (v{doc.conflict.theirsVersion}) while you were
                  editing. Compare, then choose.
                </span>
                <span className="row">
                  <button
                    className="primary"
                    onClick={() => void store.resolveConflict(doc.path, 'mine')}
                  >
                    Keep mine (overwrite)
                  </button>
                  <button onClick={() => void store.resolveConflict(doc.path, 'theirs')}>
                    Take theirs
                  </button>
                </span>
              </div>
              <DiffView
                path={doc.path}
                original={doc.conflict.theirs}
                modified={doc.content}
                theme={props.theme}
                originalLabel={`Theirs (v${doc.conflict.theirsVersion})`}
                modifiedLabel="Yours (unsaved)"
              />
            </div>
          ) : showsAsBinary(doc.path, doc.encoding) ? (
            <BinaryView
              key={doc.path}
              path={doc.path}
              content={doc.saved}
              encoding={doc.encoding}
              editText={() => textEditor(doc)}
            />
          ) : (
            textEditor(doc)
          )}
        </>
      ) : (
        <div className="welcome">
          <h2>Vaporform</h2>
          <dl className="shortcuts">
            <dt>Quick open</dt>
            <dd>
              <kbd>Ctrl</kbd>+<kbd>P</kbd>
            </dd>
            <dt>Command palette</dt>
            <dd>
              <kbd>Ctrl</kbd>+<kbd>Shift</kbd>+<kbd>P</kbd>
            </dd>
            <dt>Save</dt>
            <dd>
              <kbd>Ctrl</kbd>+<kbd>S</kbd>
            </dd>
            <dt>Terminal</dt>
            <dd>
              <kbd>Ctrl</kbd>+<kbd>`</kbd>
            </dd>
          </dl>
        </div>
      )}
      {askClose && (
        <div className="modal-backdrop" role="presentation">
          <div className="modal" role="dialog" aria-modal="true" aria-labelledby="close-title">
            <h2 id="close-title">Save changes to {askClose}?</h2>
            <p>Your changes are lost if you close without saving.</p>
            <div className="row end">
              <button onClick={() => setAskClose(null)}>Cancel</button>
              <button
                className="danger"
                onClick={() => {
                  store.close(askClose, { force: true });
                  setAskClose(null);
                }}
              >
                Don’t save
              </button>
              <button
                className="primary"
                autoFocus
                onClick={() => {
                  const path = askClose;
                  setAskClose(null);
                  void store.save(path).then((r) => r === 'saved' && store.close(path));
                }}
              >
                Save
              </button>
            </div>
          </div>
        </div>
      )}
    </section>
  );
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
