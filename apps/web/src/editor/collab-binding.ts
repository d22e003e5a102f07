import type * as Monaco from 'monaco-editor';
import type { LocalPresence } from 'sharedb/lib/client';
import type { CollabDoc, CollabPresenceValue } from './collab-connection.ts';
import {
  applyOp,
  diffOp,
  dominantEol,
  editsFromOp,
  offsetsToPositions,
  opFromChanges,
  positionsToOffsets,
  withEol,
  type TextOp,
} from './collab-text.ts';
import { CollabUndoStack } from './collab-undo.ts';

/** Who we are to the others (presence). */
export interface CollabIdentity {
  name: string;
  color: string;
}

/** What the binding tells its owner. */
export interface CollabBindingEvents {
  /**
   * The document's text changed: `local` when by us (typing, undo, a draft), `pending` while
   * own edits wait for the server's acknowledgement.
   */
  onText?(text: string, pending: boolean, local: boolean): void;
  /** The server refused our edits: why, and the text as we had it (keep it as a draft). */
  onRefused?(reason: string, text: string): void;
  /** The document was deleted on the server; `text` as we had it. */
  onDeleted?(text: string): void;
}

/** A source marker on our own submits, so their `op` events are never applied twice. */
const OWN = { binding: true };

const EOL_LF = 0;
const EOL_CRLF = 1;

/**
 * Binds a Monaco text model to a ShareDB `ot-text-unicode` document. Every content-change event
 * becomes one op (code points, deletes carry their text); remote ops go into the model with
 * `applyEdits` (outside Monaco's undo stack, no echo). Undo/redo are our own
 * ({@link CollabUndoStack}): they undo only this person's edits. Never waits for the server:
 * ShareDB applies locally and queues. While attached to an editor it publishes the cursor as
 * presence and draws the others' cursors with their names.
 */
export class MonacoBinding {
  readonly #model: Monaco.editor.ITextModel;
  readonly #share: CollabDoc;
  readonly #events: CollabBindingEvents;
  readonly #identity: CollabIdentity;
  readonly undo = new CollabUndoStack();
  /** The document text as the binding knows it (equals `doc.data`). */
  #text: string;
  #eol: '\n' | '\r\n';
  #applying = false;
  #rollbackText: string | null = null;
  #lastRefusal = 0;
  #disposables: { dispose(): void }[] = [];
  #local: LocalPresence<CollabPresenceValue | null> | null = null;
  #editor: Monaco.editor.ICodeEditor | null = null;
  #editorDisposables: { dispose(): void }[] = [];
  #cursors: RemoteCursors | null = null;
  #readOnly = false;
  #disposed = false;

  constructor(opts: {
    model: Monaco.editor.ITextModel;
    share: CollabDoc;
    identity: CollabIdentity;
    events?: CollabBindingEvents;
  }) {
    this.#model = opts.model;
    this.#share = opts.share;
    this.#events = opts.events ?? {};
    this.#identity = opts.identity;
    const doc = this.#share.doc;
    this.#text = doc.data;
    this.#eol = dominantEol(this.#text);
    this.#model.setEOL(this.#eol === '\r\n' ? EOL_CRLF : EOL_LF);
    this.#resync();

    this.#disposables.push(this.#model.onDidChangeContent((e) => this.#onLocal(e)));
    const onBeforeOp = (_op: unknown, source: unknown, src?: string): void => {
      // ShareDB's rollback of a refused op arrives as a "remote" op from ourselves: remember
      // the text as the person had it, for the draft.
      if (!source && src && src === this.#share.connectionId()) this.#rollbackText ??= this.#text;
    };
    const onOp = (op: unknown, source: unknown): void => {
      if (source) return; // our own: already in the model
      this.#onRemote(op as TextOp);
    };
    const onLoad = (): void => {
      // A hard rollback or a reload: the document was replaced.
      if (doc.hasPending() || this.#text !== doc.data) this.#rollbackText ??= this.#text;
      if (typeof doc.data === 'string') {
        this.#text = doc.data;
        this.undo.clear();
        this.#applyingDo(() => this.#resync());
        this.#notify();
      }
    };
    const onDel = (): void => this.#events.onDeleted?.(this.#text);
    const onNothingPending = (): void => this.#notify();
    doc.on('before op', onBeforeOp);
    doc.on('op', onOp);
    doc.on('load', onLoad);
    doc.on('del', onDel);
    doc.on('nothing pending', onNothingPending);
    this.#disposables.push({
      dispose: () => {
        doc.off('before op', onBeforeOp);
        doc.off('op', onOp);
        doc.off('load', onLoad);
        doc.off('del', onDel);
        doc.off('nothing pending', onNothingPending);
      },
    });
    const onReceive = (): void => this.#cursors?.schedule();
    this.#share.presence.on('receive', onReceive);
    this.#disposables.push({ dispose: () => this.#share.presence.off('receive', onReceive) });
  }

  /** The shared text. */
  get text(): string {
    return this.#text;
  }

  /** True while own edits wait for the server's acknowledgement. */
  get pending(): boolean {
    return this.#share.doc.hasPending();
  }

  /** Read-only (viewers): local edits are not possible, presence still is. */
  setReadOnly(readOnly: boolean): void {
    this.#readOnly = readOnly;
  }

  /** Calls back once every own edit is acknowledged (at once when none is pending). */
  whenAcknowledged(): Promise<void> {
    return new Promise((resolve) => this.#share.doc.whenNothingPending(() => resolve()));
  }

  /** Replaces the text with `text` as one edit of ours (e.g. applying a draft). */
  replaceText(text: string): void {
    const target = withEol(text, this.#eol);
    const op = diffOp(this.#text, target);
    if (!op.length) return;
    this.#submitAndApply(op);
  }

  /**
   * Shows this model in `editor`: cursor → presence, others' cursors drawn. (The editor routes
   * its undo/redo keys to {@link undoOwn}/{@link redoOwn}.)
   */
  attach(editor: Monaco.editor.ICodeEditor): void {
    if (this.#editor === editor) return;
    this.detach();
    this.#editor = editor;
    this.#cursors = new RemoteCursors(editor, this.#share, () => this.#text);
    this.#local ??= this.#share.presence.create();
    this.#editorDisposables.push(editor.onDidChangeCursorSelection(() => this.#publishCursor()));
    this.#publishCursor();
    this.#cursors.schedule();
  }

  /** Stops drawing and publishing (another file is shown). */
  detach(): void {
    for (const d of this.#editorDisposables) d.dispose();
    this.#editorDisposables = [];
    this.#cursors?.dispose();
    this.#cursors = null;
    this.#editor = null;
    this.#local?.submit(null, () => undefined);
  }

  /** Undoes this person's last edit (only theirs). */
  undoOwn(): boolean {
    if (this.#readOnly) return false;
    const op = this.undo.undo();
    if (!op) return false;
    this.#submitAndApply(op, { undo: true });
    return true;
  }

  /** Redoes this person's last undone edit. */
  redoOwn(): boolean {
    if (this.#readOnly) return false;
    const op = this.undo.redo();
    if (!op) return false;
    this.#submitAndApply(op, { undo: true });
    return true;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.detach();
    this.#local?.destroy();
    this.#local = null;
    for (const d of this.#disposables) d.dispose();
    this.#disposables = [];
  }

  #onLocal(e: Monaco.editor.IModelContentChangedEvent): void {
    if (this.#applying || this.#disposed) return;
    const changes = e.changes.map((c) => ({ range: c.range, text: withEol(c.text, this.#eol) }));
    let op = opFromChanges(this.#text, changes);
    const after = applyOp(this.#text, op);
    // Whatever Monaco did that the changes do not say (an end-of-line change), say it whole.
    const shown = this.#model.getValue();
    if (withEol(after, this.#eol) !== shown) op = diffOp(this.#text, shown);
    if (!op.length) return;
    this.#text = applyOp(this.#text, op);
    this.undo.local(op);
    this.#submit(op);
    this.#notify(true);
    this.#cursors?.schedule();
  }

  #onRemote(op: TextOp): void {
    if (this.#disposed) return;
    const { edits, touchesLineBreakPair } = editsFromOp(this.#text, op);
    this.#text = this.#share.doc.data;
    this.#applyingDo(() => {
      if (touchesLineBreakPair) this.#resync();
      else
        this.#model.applyEdits(
          edits.map((e) => ({ range: e.range, text: withEol(e.text, this.#eol) })),
        );
    });
    this.undo.remote(op);
    this.#notify();
    this.#cursors?.schedule();
  }

  /** An own op that is not typing (undo, redo, a draft): into the doc, then into the model. */
  #submitAndApply(op: TextOp, opts: { undo?: boolean } = {}): void {
    const { edits, touchesLineBreakPair } = editsFromOp(this.#text, op);
    this.#text = applyOp(this.#text, op);
    this.#applyingDo(() => {
      if (touchesLineBreakPair) this.#resync();
      else
        this.#model.applyEdits(
          edits.map((e) => ({ range: e.range, text: withEol(e.text, this.#eol) })),
        );
    });
    if (!opts.undo) this.undo.local(op);
    this.#submit(op);
    const last = edits[edits.length - 1];
    if (last && this.#editor?.getModel() === this.#model) {
      // The caret goes where the undone/redone text was, as in any editor.
      const at = offsetsToPositions(this.#text, [caretAfter(op)])[0]!;
      this.#editor.setPosition(at);
      this.#editor.revealPositionInCenterIfOutsideViewport(at);
    }
    this.#notify(true);
    this.#cursors?.schedule();
  }

  #submit(op: TextOp): void {
    const doc = this.#share.doc;
    try {
      doc.submitOp(op as never, { source: OWN }, (err) => {
        if (!err) return;
        this.#refused(err.message);
      });
    } catch (err) {
      this.#refused((err as Error).message);
    }
  }

  #refused(reason: string): void {
    const text = this.#rollbackText ?? this.#text;
    this.#rollbackText = null;
    // Every pending op of one refusal calls back: tell the person once.
    const now = Date.now();
    if (now - this.#lastRefusal < 1000) return;
    this.#lastRefusal = now;
    this.#events.onRefused?.(reason, text);
  }

  /** Makes the model show exactly the document (smallest replacement), outside undo. */
  #resync(): void {
    const target = withEol(this.#text, this.#eol);
    const shown = this.#model.getValue();
    if (shown === target) return;
    let start = 0;
    const max = Math.min(shown.length, target.length);
    while (start < max && shown.charCodeAt(start) === target.charCodeAt(start)) start++;
    let endShown = shown.length;
    let endTarget = target.length;
    while (
      endShown > start &&
      endTarget > start &&
      shown.charCodeAt(endShown - 1) === target.charCodeAt(endTarget - 1)
    ) {
      endShown--;
      endTarget--;
    }
    const a = this.#model.getPositionAt(start);
    const b = this.#model.getPositionAt(endShown);
    const wasApplying = this.#applying;
    this.#applying = true;
    try {
      this.#model.applyEdits([
        {
          range: {
            startLineNumber: a.lineNumber,
            startColumn: a.column,
            endLineNumber: b.lineNumber,
            endColumn: b.column,
          },
          text: target.slice(start, endTarget),
        },
      ]);
    } finally {
      this.#applying = wasApplying;
    }
  }

  #applyingDo(fn: () => void): void {
    const was = this.#applying;
    this.#applying = true;
    try {
      fn();
    } finally {
      this.#applying = was;
    }
  }

  #publishCursor(): void {
    const editor = this.#editor;
    if (!editor || editor.getModel() !== this.#model || !this.#local) return;
    const sel = editor.getSelection();
    if (!sel) return;
    const [anchor, head] = positionsToOffsets(this.#text, [
      { lineNumber: sel.selectionStartLineNumber, column: sel.selectionStartColumn },
      { lineNumber: sel.positionLineNumber, column: sel.positionColumn },
    ]);
    this.#local.submit(
      { sel: [anchor!.cp, head!.cp], name: this.#identity.name, color: this.#identity.color },
      () => undefined,
    );
  }

  #notify(local = false): void {
    this.#events.onText?.(this.#text, this.#share.doc.hasPending(), local);
  }
}

/** Where the caret goes after an own non-typing op: after its last change. */
function caretAfter(op: TextOp): number {
  let pos = 0;
  let caret = 0;
  for (const c of op) {
    if (typeof c === 'number') pos += c;
    else if (typeof c === 'string') {
      pos += [...c].length;
      caret = pos;
    } else caret = pos;
  }
  return caret;
}

/** CSS colours we accept from presence (never arbitrary CSS). */
const SAFE_COLOR = /^#[0-9a-f]{3,8}$/i;

let styleSheet: HTMLStyleElement | null = null;
const colorClasses = new Map<string, string>();

/** A class for a colour (caret, selection and label rules are injected once per colour). */
function colorClass(color: string | undefined): string {
  const c = color && SAFE_COLOR.test(color) ? color.toLowerCase() : '#888888';
  let cls = colorClasses.get(c);
  if (cls) return cls;
  cls = `collab-color-${c.slice(1)}`;
  colorClasses.set(c, cls);
  if (!styleSheet) {
    styleSheet = document.createElement('style');
    styleSheet.dataset.collab = 'cursors';
    styleSheet.textContent =
      '.collab-caret{position:absolute;height:100%;box-sizing:border-box;pointer-events:none}' +
      '.collab-label{color:#fff;font:600 11px/16px system-ui,sans-serif;padding:0 5px;' +
      'border-radius:3px 3px 3px 0;white-space:nowrap;pointer-events:none;opacity:.95}';
    document.head.appendChild(styleSheet);
  }
  styleSheet.textContent +=
    `.${cls}.collab-caret{border-left:2px solid ${c}}` +
    `.${cls}.collab-selection{background:${c}33}` +
    `.${cls}.collab-label{background:${c}}`;
  return cls;
}

interface CursorLabel {
  widget: Monaco.editor.IContentWidget;
  pos: Monaco.IPosition;
  node: HTMLElement;
}

/** The others' carets and selections in one editor, with name labels (content widgets). */
class RemoteCursors {
  readonly #editor: Monaco.editor.ICodeEditor;
  readonly #share: CollabDoc;
  readonly #text: () => string;
  readonly #decorations: Monaco.editor.IEditorDecorationsCollection;
  readonly #labels = new Map<string, CursorLabel>();
  #scheduled = false;
  #disposed = false;

  constructor(editor: Monaco.editor.ICodeEditor, share: CollabDoc, text: () => string) {
    this.#editor = editor;
    this.#share = share;
    this.#text = text;
    this.#decorations = editor.createDecorationsCollection();
  }

  /** Redraws after the current event (ShareDB updates presence in its own op listeners). */
  schedule(): void {
    if (this.#scheduled || this.#disposed) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      if (!this.#disposed) this.#render();
    });
  }

  dispose(): void {
    this.#disposed = true;
    this.#decorations.clear();
    for (const { widget } of this.#labels.values()) this.#editor.removeContentWidget(widget);
    this.#labels.clear();
  }

  #render(): void {
    const remotes = Object.entries(this.#share.presence.remotePresences).filter(
      (e): e is [string, CollabPresenceValue] =>
        !!e[1] && Array.isArray(e[1].sel) && e[1].sel.length === 2,
    );
    const offsets: number[] = [];
    for (const [, p] of remotes) offsets.push(p.sel[0], p.sel[1]);
    const positions = offsetsToPositions(this.#text(), offsets);
    const decorations: Monaco.editor.IModelDeltaDecoration[] = [];
    const seen = new Set<string>();
    remotes.forEach(([id, p], k) => {
      const anchor = positions[2 * k]!;
      const head = positions[2 * k + 1]!;
      const cls = colorClass(p.color);
      const name = p.name || 'Someone';
      const [start, end] =
        anchor.lineNumber < head.lineNumber ||
        (anchor.lineNumber === head.lineNumber && anchor.column <= head.column)
          ? [anchor, head]
          : [head, anchor];
      if (start.lineNumber !== end.lineNumber || start.column !== end.column) {
        decorations.push({
          range: {
            startLineNumber: start.lineNumber,
            startColumn: start.column,
            endLineNumber: end.lineNumber,
            endColumn: end.column,
          },
          options: {
            className: `collab-selection ${cls}`,
            stickiness: 1,
            hoverMessage: { value: name },
          },
        });
      }
      decorations.push({
        range: {
          startLineNumber: head.lineNumber,
          startColumn: head.column,
          endLineNumber: head.lineNumber,
          endColumn: head.column,
        },
        options: { beforeContentClassName: `collab-caret ${cls}`, stickiness: 1 },
      });
      seen.add(id);
      let label = this.#labels.get(id);
      if (!label) {
        const node = document.createElement('div');
        const widgetId = `collab-label-${id}`;
        const entry: CursorLabel = {
          pos: head,
          node,
          widget: {
            getId: () => widgetId,
            getDomNode: () => node,
            // ABOVE (1), then BELOW (2) on the first line.
            getPosition: () => ({ position: entry.pos, preference: [1, 2] }),
          } as Monaco.editor.IContentWidget,
        };
        label = entry;
        this.#labels.set(id, entry);
        this.#editor.addContentWidget(entry.widget);
      }
      label.node.className = `collab-label ${cls}`;
      label.node.textContent = name;
      label.node.dataset.collabName = name;
      label.pos = head;
      this.#editor.layoutContentWidget(label.widget);
    });
    for (const [id, { widget }] of this.#labels) {
      if (seen.has(id)) continue;
      this.#editor.removeContentWidget(widget);
      this.#labels.delete(id);
    }
    this.#decorations.set(decorations);
  }
}

export type { TextOp };
