import type { paths } from '@vaporform/sdk';
import { useEffect, useState } from 'react';
import { errorMessage } from '../lib/client.ts';
import { useApiQueries } from '../lib/queries.ts';

type SearchResult =
  paths['/api/projects/{id}/search']['get']['responses'][200]['content']['application/json']['results'][number];

/** Project-wide search (the files API's full-text and path search). */
export function SearchPanel(props: {
  projectId: string;
  onOpen(path: string, line: number): void;
}) {
  const $api = useApiQueries();
  const [q, setQ] = useState('');
  // The search asks once typing pauses (250 ms).
  const [query, setQuery] = useState('');
  useEffect(() => {
    const t = setTimeout(() => setQuery(q.trim()), 250);
    return () => clearTimeout(t);
  }, [q]);
  const search = $api.useQuery(
    'get',
    '/api/projects/{id}/search',
    { params: { path: { id: props.projectId }, query: { q: query } } },
    { enabled: query !== '' && q.trim() !== '', staleTime: 0, placeholderData: (prev) => prev },
  );
  const results: SearchResult[] | null = q.trim() ? (search.data?.results ?? null) : null;
  const error = search.error ? errorMessage(search.error) : null;

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
