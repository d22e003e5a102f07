import { useQueryClient } from '@tanstack/react-query';
import type { Schemas } from '@vaporform/sdk';
import { useEffect, useState } from 'react';
import { useApp } from '../context.tsx';
import { errorMessage } from '../lib/client.ts';
import { useApiQueries } from '../lib/queries.ts';
import { useUserEvents } from '../lib/user-events.ts';
import { navigate } from '../lib/router.ts';
import { useEscape } from '../lib/use-escape.ts';
import { AccountMenu } from './account-menu.tsx';

type Project = Schemas['Project'];

/**
 * The signed-in user's projects: status, role, last activity; search; delete (owner). Kept
 * fresh by the user's event stream (added to a project, removed, role changed).
 */
export function Dashboard() {
  const { notify } = useApp();
  const $api = useApiQueries();
  const queryClient = useQueryClient();
  const [q, setQ] = useState('');
  // The search asks once typing pauses (200 ms).
  const [search, setSearch] = useState('');
  useEffect(() => {
    const t = setTimeout(() => setSearch(q.trim()), q ? 200 : 0);
    return () => clearTimeout(t);
  }, [q]);
  // Shown at once from the cache, checked again each time the dashboard opens.
  const list = $api.useQuery(
    'get',
    '/api/projects',
    { params: { query: search ? { q: search } : {} } },
    { refetchOnMount: 'always' },
  );
  const projects: Project[] | null = list.data?.projects ?? null;
  // Being added to (or removed from) a project shows here at once, without a reload.
  useUserEvents();
  const [confirming, setConfirming] = useState<Project | null>(null);
  useEscape(confirming !== null, () => setConfirming(null));
  useEffect(() => {
    if (list.error) notify(errorMessage(list.error, 'Could not load the projects'), 'error');
  }, [list.error, notify]);
  const deletion = $api.useMutation('delete', '/api/projects/{id}');

  async function remove(p: Project) {
    try {
      await deletion.mutateAsync({ params: { path: { id: p.id } } });
      await queryClient.invalidateQueries({ queryKey: ['get', '/api/projects'] });
      notify(`Deleted ${p.name}`);
    } catch (err) {
      notify(errorMessage(err), 'error');
    } finally {
      setConfirming(null);
    }
  }

  return (
    <div className="page">
      <header className="topbar">
        <div className="brand">
          <span className="brand-mark" aria-hidden="true">
            V
          </span>
          Vaporform
        </div>
        <div className="spacer" />
        <AccountMenu />
      </header>
      <main className="dashboard">
        <div className="dashboard-head">
          <h1>Projects</h1>
          <input
            type="search"
            className="search"
            placeholder="Search projects"
            aria-label="Search projects"
            value={q}
            onChange={(e) => setQ(e.target.value)}
          />
          <button className="primary" onClick={() => navigate('/new')}>
            New project
          </button>
        </div>
        {projects === null ? (
          <p className="muted" role="status">
            Loading projects…
          </p>
        ) : projects.length === 0 ? (
          <div className="empty">
            <p>{q ? 'No project matches.' : 'No projects yet.'}</p>
            {!q && (
              <button className="primary" onClick={() => navigate('/new')}>
                Create your first project
              </button>
            )}
          </div>
        ) : (
          <table className="projects">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Status</th>
                <th scope="col">Role</th>
                <th scope="col">Last activity</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {projects.map((p) => (
                <tr key={p.id}>
                  <td>
                    <a
                      href={`/projects/${p.id}`}
                      onClick={(e) => {
                        e.preventDefault();
                        navigate(`/projects/${p.id}`);
                      }}
                    >
                      {p.name}
                    </a>
                    <div className="muted small">{p.description || p.type}</div>
                  </td>
                  <td>
                    <span className={`badge status-${p.status}`}>{p.status}</span>
                  </td>
                  <td>{p.role}</td>
                  <td>{relativeTime(p.lastActivityAt ?? p.updatedAt)}</td>
                  <td className="actions">
                    {p.role === 'owner' && (
                      <button
                        className="ghost danger"
                        aria-label={`Delete ${p.name}`}
                        onClick={() => setConfirming(p)}
                      >
                        Delete
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </main>
      {confirming && (
        <div className="modal-backdrop" role="presentation">
          <div className="modal" role="dialog" aria-modal="true" aria-labelledby="del-title">
            <h2 id="del-title">Delete {confirming.name}?</h2>
            <p>Its files, history and container are removed. This cannot be undone.</p>
            <div className="row end">
              <button autoFocus onClick={() => setConfirming(null)}>
                Cancel
              </button>
              <button className="danger" onClick={() => void remove(confirming)}>
                Delete project
              </button>
            </div>
          </div>
        </div>
      )}
    </div>
  );
}

/** "3 minutes ago" style time. */
export function relativeTime(iso: string | undefined): string {
  if (!iso) return '';
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
  if (Math.abs(s) < 60) return rtf.format(-s, 'second');
  if (Math.abs(s) < 3600) return rtf.format(-Math.round(s / 60), 'minute');
  if (Math.abs(s) < 86400) return rtf.format(-Math.round(s / 3600), 'hour');
  return rtf.format(-Math.round(s / 86400), 'day');
}
