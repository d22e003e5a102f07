import { useEffect, useState } from 'react';
import { useApp } from '../context.tsx';
import type { SearchResult } from '../lib/types.ts';

/** Project-wide search (the files API's full-text and path search). */
export function SearchPanel(props: {
  projectId: string;
  onOpen(path: string, line: number): void;
}) {
  const { api } = useApp();
  const [q, setQ] = useState('');
  const [results, setResults] = useState<SearchResult[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const query = q.trim();
    if (!query) {
      setResults(null);
      return;
    }
    let alive = true;
    const t = setTimeout(() => {
      api
        .search(props.projectId, query)
        .then((r) => alive && (setResults(r.results), setError(null)))
        .catch((err: Error) => alive && setError(err.message));
    }, 250);
    return () => {
      alive = false;
      clearTimeout(t);
    };
  }, [api, props.projectId, q]);

  const byFile = new Map<string, SearchResult[]>();
  for (const r of results ?? []) byFile.set(r.path, [...(byFile.get(r.path) ?? []), r]);

  return (
    <section className="side-panel" aria-label="Search">
      <div className="panel-head">
        <h2>Search</h2>
      </div>
      <input
        className="panel-input"
        type="search"
        placeholder="Search in files"
        aria-label="Search in files"
        value={q}
        onChange={(e) => setQ(e.target.value)}
        autoFocus
      />
      {error && <p className="error small pad">{error}</p>}
      {results && (
        <p className="muted small pad" role="status">
          {results.length} result{results.length === 1 ? '' : 's'} in {byFile.size} file
          {byFile.size === 1 ? '' : 's'}
        </p>
      )}
      <ul className="search-results">
        {[...byFile].map(([path, hits]) => (
          <li key={path}>
            <div className="search-file">{path}</div>
            <ul>
              {hits.map((h, i) => (
                <li key={i}>
                  <button className="search-hit" onClick={() => props.onOpen(h.path, h.line)}>
                    <span className="muted small">{h.line > 0 ? h.line : ''}</span>{' '}
                    {h.preview.trim()}
                  </button>
                </li>
              ))}
            </ul>
          </li>
        ))}
      </ul>
    </section>
  );
}
