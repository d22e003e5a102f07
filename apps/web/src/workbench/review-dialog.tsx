import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type * as Monaco from 'monaco-editor';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import type { VaporformClient } from '@vaporform/sdk';
import { useApp } from '../context.tsx';
import { ApiError, errorMessage } from '../lib/client.ts';
import { pendingReviewKey, useApiQueries } from '../lib/queries.ts';
import { readVersion } from '../lib/files.ts';
import { languageOf } from '../lib/languages.ts';
import { useEscape } from '../lib/use-escape.ts';
import { loadMonaco } from '../editor/code-editor.tsx';
import {
  reviewApi,
  type Changeset,
  type ChangesetFile,
  type ChangesetHunk,
  type Decision,
} from './review-api.ts';
import './review-dialog.css';

type HunkState = ChangesetHunk['state'];

/** How many hunks of `files` are in each state. */
export function countStates(files: ChangesetFile[]): Record<HunkState, number> {
  const counts: Record<HunkState, number> = { pending: 0, accepted: 0, rejected: 0 };
  for (const f of files) for (const h of f.hunks) counts[h.state]++;
  return counts;
}

function describeCounts(c: Record<HunkState, number>): string {
  return [
    c.pending && `${c.pending} pending`,
    c.accepted && `${c.accepted} accepted`,
    c.rejected && `${c.rejected} rejected`,
  ]
    .filter(Boolean)
    .join(' · ');
}

/**
 * An assistant turn reviewed hunk by hunk: its files side by side in Monaco's diff editor (the
 * file before the turn ↔ after it), each hunk with Accept / Reject above it, per file and for
 * the whole turn; a decided hunk shows its state and can be changed back. Viewers see the
 * states only.
 */
export function ReviewDialog(props: {
  projectId: string;
  changesetId: string;
  canEdit: boolean;
  theme: 'dark' | 'light';
  onClose(): void;
  /** Told after every decision (the chat's badge, the explorer). */
  onChanged?(changeset: Changeset): void;
}) {
  const { api, notify } = useApp();
  const { projectId, changesetId } = props;
  const review = useMemo(() => reviewApi(api.client, projectId), [api, projectId]);
  const $api = useApiQueries();
  const queryClient = useQueryClient();
  // Kept fresh by the project socket: `review_changed` (anyone's decision) and changes of the
  // turn's files (`useProjectEventInvalidation`), so another member's Accept shows here.
  const changesetQuery = $api.queryOptions('get', '/api/projects/{id}/changesets/{changesetId}', {
    params: { path: { id: projectId, changesetId } },
  });
  const query = useQuery(changesetQuery);
  const changeset = query.data?.changeset ?? null;
  const error = query.error && !changeset ? errorMessage(query.error) : null;
  const [picked, setSelected] = useState<string | null>(null);
  const selected = picked ?? changeset?.files[0]?.path ?? null;
  useEscape(true, props.onClose);

  const onChanged = props.onChanged;
  const decision = useMutation({
    /** The whole turn (`hunkIds` absent), or these hunks one after the other. */
    mutationFn: async ({ verb, hunkIds }: { verb: Decision; hunkIds?: string[] }) => {
      if (!hunkIds) return review.decideAll(changesetId, verb);
      let latest: Changeset | null = null;
      for (const id of hunkIds) latest = await review.decideHunk(changesetId, id, verb);
      return latest ?? (await review.changeset(changesetId));
    },
    onSuccess: (next) => {
      queryClient.setQueryData(changesetQuery.queryKey, { changeset: next });
      onChanged?.(next);
    },
    onError: (err) => {
      // Part of a file's decisions may have been recorded: read the turn again.
      void queryClient.invalidateQueries({ queryKey: changesetQuery.queryKey });
      notify(
        err instanceof ApiError && err.status === 409
          ? err.message
          : `The decision was not recorded: ${errorMessage(err)}`,
        'error',
      );
    },
    onSettled: () => queryClient.invalidateQueries({ queryKey: pendingReviewKey(projectId) }),
  });
  const busy = decision.isPending;
  const { mutateAsync } = decision;
  const run = useCallback(
    (verb: Decision, hunkIds?: string[]) =>
      mutateAsync({ verb, hunkIds }).then(
        () => undefined,
        () => undefined, // told in onError
      ),
    [mutateAsync],
  );

  const decideHunk = useCallback((hunkId: string, verb: Decision) => run(verb, [hunkId]), [run]);

  /** Every hunk of one file not already in the wanted state, one after the other. */
  const decideFile = (file: ChangesetFile, verb: Decision) => {
    const want = stateAfter[verb];
    // Bottom-up: each decision leaves the positions of the hunks above it unchanged.
    const hunks = [...file.hunks].filter((h) => h.state !== want).reverse();
    return run(
      verb,
      hunks.map((h) => h.id),
    );
  };

  const file = changeset?.files.find((f) => f.path === selected) ?? null;
  const counts = changeset ? countStates(changeset.files) : null;
  const editable = props.canEdit && changeset?.status !== 'reverted';

  return (
    <div className="modal-backdrop" role="presentation">
      <div
        className="modal wide review-dialog"
        role="dialog"
        aria-modal="true"
        aria-labelledby="review-title"
        data-testid="review-dialog"
      >
        <div className="row between">
          <h2 id="review-title">Review the assistant’s changes</h2>
          <span className="row">
            {counts && (
              <span className="muted small" data-testid="review-counts">
                {describeCounts(counts) || 'nothing to review'}
              </span>
            )}
            {editable && changeset && (
              <>
                <button
                  disabled={busy || counts?.accepted === countAll(counts)}
                  onClick={() => void run('accept')}
                >
                  Accept all
                </button>
                <button
                  disabled={busy || counts?.rejected === countAll(counts)}
                  onClick={() => void run('reject')}
                >
                  Reject all
                </button>
                <button
                  disabled={busy || counts?.pending === countAll(counts)}
                  onClick={() => void run('undo')}
                  title="Every change of this turn pending again (rejected text comes back)"
                >
                  Undo all
                </button>
              </>
            )}
            <button autoFocus onClick={props.onClose}>
              Close
            </button>
          </span>
        </div>
        {!props.canEdit && (
          <p className="muted small" role="note">
            Read-only: viewers see the review; editors decide.
          </p>
        )}
        {changeset?.status === 'reverted' && (
          <p className="muted small" role="note">
            This turn was reverted as a whole; there is nothing left to decide.
          </p>
        )}
        {error && (
          <p className="error small" role="alert">
            {error}
          </p>
        )}
        {!changeset && !error && (
          <p className="muted small" role="status">
            Loading the review…
          </p>
        )}
        {changeset && (
          <div className="review-body">
            <ul className="review-files" aria-label="Files of this turn">
              {changeset.files.map((f) => {
                const c = countStates([f]);
                return (
                  <li
                    key={f.path}
                    className={f.path === selected ? 'active' : ''}
                    data-testid="review-file"
                    data-path={f.path}
                  >
                    <button
                      className="linklike review-file-name"
                      aria-current={f.path === selected}
                      onClick={() => setSelected(f.path)}
                    >
                      {f.path}
                    </button>
                    <span className="muted small">
                      {f.operation} · {describeCounts(c) || 'no changes'}
                    </span>
                    {editable && f.hunks.length > 0 && (
                      <span className="row">
                        <button
                          className="small-btn"
                          disabled={busy || c.accepted === f.hunks.length}
                          onClick={() => void decideFile(f, 'accept')}
                          aria-label={`Accept every change in ${f.path}`}
                        >
                          Accept file
                        </button>
                        <button
                          className="small-btn"
                          disabled={busy || c.rejected === f.hunks.length}
                          onClick={() => void decideFile(f, 'reject')}
                          aria-label={`Reject every change in ${f.path}`}
                        >
                          Reject file
                        </button>
                      </span>
                    )}
                  </li>
                );
              })}
            </ul>
            {file && (
              <HunkDiff
                key={file.path}
                projectId={props.projectId}
                file={file}
                theme={props.theme}
                editable={editable && !busy}
                onDecide={decideHunk}
              />
            )}
          </div>
        )}
      </div>
    </div>
  );
}

function countAll(c: Record<HunkState, number> | null): number {
  return c ? c.pending + c.accepted + c.rejected : 0;
}

/** Text of a file at a version (empty when the file did not exist). */
async function versionText(
  client: VaporformClient,
  projectId: string,
  path: string,
  version: number | null,
): Promise<string> {
  if (version === null) return '';
  const v = await readVersion(client, projectId, path, version);
  return v.encoding === 'base64' ? '(binary file)' : v.content;
}

/**
 * One file of the turn in Monaco's diff editor: before the turn ↔ after it. Above each hunk
 * (in the modified side) a view zone holds its state and Accept / Reject; its lines are
 * marked pending, accepted or rejected in the gutter.
 */
function HunkDiff(props: {
  projectId: string;
  file: ChangesetFile;
  theme: 'dark' | 'light';
  editable: boolean;
  onDecide(hunkId: string, verb: Decision): Promise<void>;
}) {
  const { api } = useApp();
  const host = useRef<HTMLDivElement>(null);
  const [editor, setEditor] = useState<Monaco.editor.IStandaloneDiffEditor | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const { path, beforeVersion, afterVersion } = props.file;

  useEffect(() => {
    let disposed = false;
    let cleanup: (() => void) | undefined;
    Promise.all([
      loadMonaco(),
      versionText(api.client, props.projectId, path, beforeVersion),
      versionText(api.client, props.projectId, path, afterVersion),
    ]).then(
      ([monaco, before, after]) => {
        if (disposed || !host.current) return;
        const lang = languageOf(path);
        const original = monaco.editor.createModel(before, lang);
        const modified = monaco.editor.createModel(after, lang);
        const diff = monaco.editor.createDiffEditor(host.current, {
          automaticLayout: true,
          readOnly: true,
          originalEditable: false,
          renderSideBySide: true,
          // See DiffView: no gutter menu in a dialog (disposed context keys).
          renderGutterMenu: false,
          renderOverviewRuler: false,
          theme: props.theme === 'dark' ? 'vs-dark' : 'vs',
        });
        diff.setModel({ original, modified });
        setEditor(diff);
        cleanup = () => {
          diff.dispose();
          original.dispose();
          modified.dispose();
        };
      },
      (err: unknown) => !disposed && setLoadError(errorMessage(err)),
    );
    return () => {
      disposed = true;
      setEditor(null);
      cleanup?.();
    };
  }, [api, props.projectId, path, beforeVersion, afterVersion, props.theme]);

  // The hunks' bars and line marks follow their states.
  const decide = useRef(props.onDecide);
  decide.current = props.onDecide;
  useEffect(() => {
    if (!editor) return;
    const right = editor.getModifiedEditor();
    const left = editor.getOriginalEditor();
    const zones: string[] = [];
    const widgets: Monaco.editor.IOverlayWidget[] = [];
    const hunks = props.file.hunks;
    // A view zone makes room above the hunk; the bar itself is an overlay widget kept at the
    // zone's top (view zones lie under the text layer, which would take their clicks).
    right.changeViewZones((acc) => {
      hunks.forEach((h, i) => {
        const bar = hunkBar(h, i, hunks.length, props.editable, (verb) => {
          void decide.current(h.id, verb);
        });
        bar.style.position = 'absolute';
        bar.style.left = '0';
        bar.style.right = '14px';
        const widget: Monaco.editor.IOverlayWidget = {
          getId: () => `vf-hunk-${h.id}`,
          getDomNode: () => bar,
          getPosition: () => null,
        };
        widgets.push(widget);
        right.addOverlayWidget(widget);
        zones.push(
          acc.addZone({
            afterLineNumber: h.newLines === 0 ? h.newStart : Math.max(0, h.newStart - 1),
            heightInPx: 34,
            domNode: document.createElement('div'),
            onDomNodeTop: (top) => {
              bar.style.top = `${top}px`;
            },
          }),
        );
      });
    });
    const mark = (state: HunkState, side: 'old' | 'new') =>
      `hunk-mark hunk-${state}${side === 'old' ? ' hunk-old' : ''}`;
    const rightMarks = right.createDecorationsCollection(
      hunks
        .filter((h) => h.newLines > 0)
        .map((h) => ({
          range: {
            startLineNumber: h.newStart,
            startColumn: 1,
            endLineNumber: h.newStart + h.newLines - 1,
            endColumn: 1,
          },
          options: { isWholeLine: true, linesDecorationsClassName: mark(h.state, 'new') },
        })),
    );
    const leftMarks = left.createDecorationsCollection(
      hunks
        .filter((h) => h.oldLines > 0)
        .map((h) => ({
          range: {
            startLineNumber: h.oldStart,
            startColumn: 1,
            endLineNumber: h.oldStart + h.oldLines - 1,
            endColumn: 1,
          },
          options: { isWholeLine: true, linesDecorationsClassName: mark(h.state, 'old') },
        })),
    );
    const first = hunks[0];
    if (first) right.revealLineNearTop(Math.max(1, first.newStart - 2));
    return () => {
      right.changeViewZones((acc) => zones.forEach((z) => acc.removeZone(z)));
      for (const w of widgets) right.removeOverlayWidget(w);
      rightMarks.clear();
      leftMarks.clear();
    };
  }, [editor, props.file.hunks, props.editable]);

  return (
    <div className="diff-view review-diff">
      <div className="diff-labels">
        <span>Before the turn</span>
        <span>After the turn ({props.file.path})</span>
      </div>
      {!editor && !loadError && (
        <div className="editor-loading" role="status">
          Loading diff…
        </div>
      )}
      {loadError && (
        <p className="error small" role="alert">
          {loadError}
        </p>
      )}
      <div ref={host} className="monaco-host" data-testid="review-diff" />
    </div>
  );
}

const stateAfter: Record<Decision, HunkState> = {
  accept: 'accepted',
  reject: 'rejected',
  undo: 'pending',
};

const stateLabel: Record<HunkState, string> = {
  pending: 'Pending',
  accepted: 'Accepted',
  rejected: 'Rejected: the old text is back in the file',
};

/** The bar above a hunk (a Monaco view zone: plain DOM, not React). */
function hunkBar(
  h: ChangesetHunk,
  index: number,
  total: number,
  editable: boolean,
  decide: (verb: Decision) => void,
): HTMLElement {
  const bar = document.createElement('div');
  bar.className = `hunk-bar hunk-bar-${h.state}`;
  bar.dataset.testid = 'hunk-bar';
  bar.dataset.hunkId = h.id;
  bar.dataset.state = h.state;
  const label = document.createElement('span');
  label.className = 'hunk-label';
  const lines =
    h.newLines > 0
      ? `lines ${h.newStart}–${h.newStart + h.newLines - 1}`
      : `${h.oldLines} line${h.oldLines === 1 ? '' : 's'} removed`;
  label.textContent = `Change ${index + 1} of ${total} · ${lines} · ${stateLabel[h.state]}`;
  bar.append(label);
  if (editable) {
    const button = (text: string, verb: Decision, aria: string) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = `small-btn hunk-${verb}`;
      b.textContent = text;
      b.setAttribute('aria-label', aria);
      // Monaco would take the mouse down (cursor, focus) before the click.
      b.addEventListener('mousedown', (e) => e.stopPropagation());
      b.addEventListener('click', (e) => {
        e.preventDefault();
        e.stopPropagation();
        decide(verb);
      });
      bar.append(b);
    };
    const n = index + 1;
    const decided = h.state !== 'pending';
    if (h.state !== 'accepted') {
      button(decided ? 'Accept instead' : 'Accept', 'accept', `Accept change ${n}`);
    }
    if (h.state !== 'rejected') {
      button(decided ? 'Reject instead' : 'Reject', 'reject', `Reject change ${n}`);
    }
    // Back to pending: the decision is forgotten (an undone reject puts the new text back).
    if (decided) button('Undo', 'undo', `Return change ${n} to pending`);
  }
  return bar;
}
