import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { DiffView } from '../editor/code-editor.tsx';
import { useApp } from '../context.tsx';
import { errorMessage, unwrap } from '../lib/client.ts';
import { readVersion } from '../lib/files.ts';
import { useApiQueries } from '../lib/queries.ts';
import { useEscape } from '../lib/use-escape.ts';
import { relativeTime } from '../screens/dashboard.tsx';

/** Versions of one file: diff any against the current text, restore one (a new version). */
export function HistoryPanel(props: {
  projectId: string;
  path: string | null;
  current: string | null;
  canEdit: boolean;
  theme: 'dark' | 'light';
  onRestored(path: string): void;
}) {
  const { api, notify } = useApp();
  const $api = useApiQueries();
  const queryClient = useQueryClient();
  const [diff, setDiff] = useState<{ version: number; content: string; current: string } | null>(
    null,
  );
  const { path } = props;
  useEscape(diff !== null, () => setDiff(null));

  // Kept fresh by `file_changed` events (useProjectEventInvalidation).
  const history = $api.useQuery(
    'get',
    '/api/projects/{id}/history/{path}',
    { params: { path: { id: props.projectId, path: path ?? '' } } },
    { enabled: path !== null },
  );
  const listed = history.data && 'versions' in history.data ? history.data.versions : null;
  const versions = listed && [...listed].sort((a, b) => b.version - a.version);
  useEffect(() => setDiff(null), [path]);
  useEffect(() => {
    if (history.error) notify(errorMessage(history.error), 'error');
  }, [history.error, notify]);

  async function show(version: number) {
    if (!path) return;
    try {
      const v = await readVersion(api.client, props.projectId, path, version);
      const current =
        props.current ??
        unwrap(
          await api.client.GET('/api/projects/{id}/files/{path}', {
            params: { path: { id: props.projectId, path } },
          }),
        ).content;
      setDiff({ version, content: v.encoding === 'base64' ? '(binary)' : v.content, current });
    } catch (err) {
      notify(errorMessage(err), 'error');
    }
  }

  async function restore(version: number) {
    if (!path) return;
    try {
      const r = unwrap(
        await api.client.POST('/api/projects/{id}/restore', {
          params: { path: { id: props.projectId } },
          body: { path, version },
        }),
      );
      notify(`Restored ${path} to v${version} (now v${r.file.version})`);
      setDiff(null);
      props.onRestored(path);
      void queryClient.invalidateQueries({
        queryKey: ['get', '/api/projects/{id}/history/{path}'],
      });
    } catch (err) {
      notify(errorMessage(err), 'error');
    }
  }

  return (
    <section className="side-panel" aria-label="History">
      <div className="panel-head">
        <h2>History</h2>
      </div>
      {!path ? (
        <p className="muted small pad">Open a file to see its versions.</p>
      ) : (
        <>
          <p className="small pad">{path}</p>
          {versions === null ? (
            <p className="muted small pad">Loading…</p>
          ) : (
            <ul className="versions">
              {versions.map((v, i) => (
                <li key={v.version} className={diff?.version === v.version ? 'selected' : ''}>
                  <button
                    className="linklike"
                    onClick={() => void show(v.version)}
                    aria-label={`Compare version ${v.version} with the current text`}
                  >
                    v{v.version}
                    {i === 0 && ' (current)'}
                  </button>
                  <span className="muted small">
                    {relativeTime(v.createdAt)} · {v.source ?? 'user'} · {v.size} B
                  </span>
                  {props.canEdit && i > 0 && (
                    <button className="small-btn" onClick={() => void restore(v.version)}>
                      Restore
                    </button>
                  )}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
      {diff && path && (
        <div className="modal-backdrop" role="presentation">
          <div className="modal wide" role="dialog" aria-modal="true" aria-labelledby="hist-title">
            <div className="row between">
              <h2 id="hist-title">
                {path}: v{diff.version} ↔ current
              </h2>
              <span className="row">
                {props.canEdit && (
                  <button className="primary" onClick={() => void restore(diff.version)}>
                    Restore v{diff.version}
                  </button>
                )}
                <button autoFocus onClick={() => setDiff(null)}>
                  Close
                </button>
              </span>
            </div>
            <DiffView
              path={path}
              original={diff.content}
              modified={diff.current}
              theme={props.theme}
              originalLabel={`v${diff.version}`}
              modifiedLabel="Current"
            />
          </div>
        </div>
      )}
    </section>
  );
}
