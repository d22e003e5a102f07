import { useEffect, useRef } from 'react';
import { errorMessage } from '../lib/client.ts';
import { useApiQueries } from '../lib/queries.ts';
import { sseSnapshotText } from '../lib/sse.ts';

/**
 * The dev server's recent output: a snapshot, read again every 3 s while visible. A poll on
 * purpose: the project socket carries no log lines (they stream only from `GET …/logs`).
 */
export function LogsView(props: { projectId: string; visible: boolean }) {
  const $api = useApiQueries();
  const pre = useRef<HTMLPreElement>(null);
  const logs = $api.useQuery(
    'get',
    '/api/containers/{projectId}/logs',
    {
      params: { path: { projectId: props.projectId }, query: { follow: 'false' } },
      parseAs: 'text',
    },
    { enabled: props.visible, refetchInterval: props.visible ? 3000 : false, staleTime: 0 },
  );
  const text = logs.data === undefined ? null : sseSnapshotText(logs.data);
  const error = logs.error ? errorMessage(logs.error) : null;

  useEffect(() => {
    pre.current?.scrollTo({ top: pre.current.scrollHeight });
  }, [text]);

  return (
    <div className="logs-view">
      {error && (
        <p className="error small pad" role="alert">
          {error}
        </p>
      )}
      <pre ref={pre} className="logs" data-testid="logs" tabIndex={0} aria-label="Dev server logs">
        {text === null ? 'Loading logs…' : text || 'No output yet.'}
      </pre>
    </div>
  );
}
