import { useCallback, useEffect, useRef, useState } from 'react';
import { useApp } from '../context.tsx';

/** The dev server's recent output (snapshot, refreshed while visible). */
export function LogsView(props: { projectId: string; visible: boolean }) {
  const { api } = useApp();
  const [text, setText] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const pre = useRef<HTMLPreElement>(null);

  const load = useCallback(() => {
    api
      .containerLogs(props.projectId)
      .then((t) => {
        setText(t);
        setError(null);
      })
      .catch((err: Error) => setError(err.message));
  }, [api, props.projectId]);

  useEffect(() => {
    if (!props.visible) return;
    load();
    const t = setInterval(load, 3000);
    return () => clearInterval(t);
  }, [load, props.visible]);

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
