import { setRestartNeeded, useRestartNeeded } from './env-notice.ts';
import { useQueryClient } from '@tanstack/react-query';
import type { Schemas } from '@vaporform/sdk';
import { useEffect, useState, type FormEvent } from 'react';
import { useApp } from '../context.tsx';
import { errorMessage } from '../lib/client.ts';
import { useApiQueries } from '../lib/queries.ts';

type Project = Schemas['Project'];
type Container = Schemas['Container'];
type Member = Schemas['ProjectMember'];
type Invitation = Schemas['ProjectInvitation'];
type Role = Schemas['ProjectRole'];

type Grantable = Exclude<Role, 'owner'>;
const roleRank: Record<Role, number> = { owner: 4, admin: 3, editor: 2, viewer: 1 };

/** Project settings: members and roles, integrations and environment (names only), container. */
export function SettingsPanel(props: {
  project: Project;
  /** What is known of the container (null: none yet). */
  container: Partial<Container> | null;
  onContainerAction(action: 'start' | 'stop' | 'restart' | 'rebuild'): void;
  onShowLogs(): void;
}) {
  const { project } = props;
  const isAdmin = roleRank[project.role] >= roleRank.admin;
  return (
    <section className="side-panel settings" aria-label="Project settings">
      <div className="panel-head">
        <h2>Settings</h2>
      </div>
      <div className="settings-body">
        <ContainerSection {...props} />
        <MembersSection project={project} isAdmin={isAdmin} />
        {isAdmin && <IntegrationsSection projectId={project.id} />}
        <EnvSection
          projectId={project.id}
          isAdmin={isAdmin}
          status={props.container?.status}
          onRestart={() => props.onContainerAction('restart')}
        />
      </div>
    </section>
  );
}

function ContainerSection(props: {
  project: Project;
  /** What is known of the container (null: none yet). */
  container: Partial<Container> | null;
  onContainerAction(action: 'start' | 'stop' | 'restart' | 'rebuild'): void;
  onShowLogs(): void;
}) {
  const canRun = roleRank[props.project.role] >= roleRank.editor;
  const c = props.container;
  const res = c?.resources;
  return (
    <div className="settings-section">
      <h3>Container</h3>
      <p className="small">
        Status:{' '}
        <span className={`badge status-${c?.status ?? props.project.status}`}>
          {c?.status ?? props.project.status}
        </span>
        {c?.health && <span className="muted"> · health {c.health}</span>}
      </p>
      {res && (res.cpuPercent !== null || res.memoryMb !== null) && (
        <p className="small muted" data-testid="resources">
          {res.cpuPercent !== null && <>CPU {res.cpuPercent.toFixed(1)}%</>}
          {res.cpuPercent !== null && res.memoryMb !== null && ' · '}
          {res.memoryMb !== null && <>memory {formatBytes(res.memoryMb * 1024 * 1024)}</>}
        </p>
      )}
      {c?.reason && c.status !== 'running' && <p className="small error">{c.reason}</p>}
      {canRun && (
        <div className="row wrap">
          {(['start', 'stop', 'restart', 'rebuild'] as const).map((a) => (
            <button key={a} className="small-btn" onClick={() => props.onContainerAction(a)}>
              {a[0]!.toUpperCase() + a.slice(1)}
            </button>
          ))}
        </div>
      )}
      <button className="linklike small" onClick={props.onShowLogs}>
        Show logs
      </button>
    </div>
  );
}

function MembersSection(props: { project: Project; isAdmin: boolean }) {
  const { api, notify } = useApp();
  const $api = useApiQueries();
  const queryClient = useQueryClient();
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<Grantable>('editor');
  const id = props.project.id;
  const me = api.session.get()?.user.id;
  const project = { params: { path: { id } } };
  // Kept fresh by the project socket's `membership` events (useProjectEventInvalidation).
  const membersQuery = $api.useQuery('get', '/api/projects/{id}/members', project);
  const invitationsQuery = $api.useQuery('get', '/api/projects/{id}/invitations', project);
  const members = membersQuery.data?.members ?? [];
  const invitations = invitationsQuery.data?.invitations ?? [];
  const loadError = membersQuery.error ?? invitationsQuery.error;
  useEffect(() => {
    if (loadError) notify(errorMessage(loadError, 'Could not load the members'), 'error');
  }, [loadError, notify]);
  const addition = $api.useMutation('post', '/api/projects/{id}/members');
  const revocation = $api.useMutation('delete', '/api/projects/{id}/invitations/{invitationId}');
  const roleChange = $api.useMutation('patch', '/api/projects/{id}/members/{userId}');
  const removal = $api.useMutation('delete', '/api/projects/{id}/members/{userId}');

  /** Runs a change, then reads the members and invitations again; a refusal is told. */
  async function run(change: () => Promise<unknown>): Promise<void> {
    try {
      await change();
    } catch (err) {
      notify(errorMessage(err), 'error');
    } finally {
      void queryClient.invalidateQueries({ queryKey: ['get', '/api/projects/{id}/members'] });
      void queryClient.invalidateQueries({ queryKey: ['get', '/api/projects/{id}/invitations'] });
    }
  }

  function add(e: FormEvent) {
    e.preventDefault();
    void run(async () => {
      const added = await addition.mutateAsync({ ...project, body: { email: email.trim(), role } });
      if ('invitation' in added) {
        notify(`Invitation sent: ${added.invitation.email} joins as ${role} on signing up.`);
      }
      setEmail('');
    });
  }

  const revoke = (i: Invitation) =>
    run(() => revocation.mutateAsync({ params: { path: { id, invitationId: i.id } } }));
  const change = (m: Member, r: Grantable) =>
    run(() =>
      roleChange.mutateAsync({ params: { path: { id, userId: m.userId } }, body: { role: r } }),
    );
  const remove = (m: Member) =>
    run(() => removal.mutateAsync({ params: { path: { id, userId: m.userId } } }));

  const grantable: Grantable[] =
    props.project.role === 'owner' ? ['admin', 'editor', 'viewer'] : ['editor', 'viewer'];
  return (
    <div className="settings-section">
      <h3>Members</h3>
      <ul className="members">
        {members.map((m) => (
          <li key={m.userId}>
            <span>
              {m.name} <span className="muted small">{m.email}</span>
            </span>
            {props.isAdmin &&
            m.role !== 'owner' &&
            (props.project.role === 'owner' || m.role !== 'admin') ? (
              <span className="row">
                <select
                  aria-label={`Role of ${m.email}`}
                  value={m.role}
                  onChange={(e) => void change(m, e.target.value as Grantable)}
                >
                  {grantable.map((r) => (
                    <option key={r}>{r}</option>
                  ))}
                </select>
                <button
                  className="icon"
                  aria-label={`Remove ${m.email}`}
                  onClick={() => void remove(m)}
                >
                  ×
                </button>
              </span>
            ) : (
              <span className="muted small">
                {m.role}
                {m.userId === me && m.role !== 'owner' && (
                  <button className="linklike small" onClick={() => void remove(m)}>
                    {' '}
                    leave
                  </button>
                )}
              </span>
            )}
          </li>
        ))}
        {invitations.map((i) => (
          <li key={i.id} data-testid="invitation">
            <span>
              {i.email} <span className="muted small">invited · {i.role}</span>
            </span>
            {props.isAdmin && (props.project.role === 'owner' || i.role !== 'admin') && (
              <button
                className="small-btn"
                aria-label={`Revoke the invitation of ${i.email}`}
                onClick={() => void revoke(i)}
              >
                Revoke
              </button>
            )}
          </li>
        ))}
      </ul>
      {props.isAdmin && (
        <form className="row" onSubmit={add}>
          <input
            type="email"
            required
            placeholder="email@example.com"
            aria-label="Member email"
            value={email}
            onChange={(e) => setEmail(e.target.value)}
          />
          <select
            aria-label="Role"
            value={role}
            onChange={(e) => setRole(e.target.value as Grantable)}
          >
            {grantable.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
          <button className="small-btn" type="submit">
            Add
          </button>
        </form>
      )}
    </div>
  );
}

function IntegrationsSection(props: { projectId: string }) {
  const { notify } = useApp();
  const $api = useApiQueries();
  const queryClient = useQueryClient();
  const [service, setService] = useState('');
  const [key, setKey] = useState('');
  const project = { params: { path: { id: props.projectId } } };
  // Kept fresh by `integration_changed` events; not there on a server without the service.
  const list = $api.useQuery('get', '/api/projects/{id}/integrations', project, { retry: false });
  const items = list.data?.integrations ?? null;
  const unavailable = list.isError;
  const saving = $api.useMutation('put', '/api/projects/{id}/integrations/{service}');
  const deletion = $api.useMutation('delete', '/api/projects/{id}/integrations/{service}');

  async function run(change: () => Promise<unknown>): Promise<boolean> {
    try {
      await change();
      return true;
    } catch (err) {
      notify(errorMessage(err), 'error');
      return false;
    } finally {
      void queryClient.invalidateQueries({
        queryKey: ['get', '/api/projects/{id}/integrations'],
      });
    }
  }

  async function add(e: FormEvent) {
    e.preventDefault();
    const params = { path: { id: props.projectId, service: service.trim() } };
    if (await run(() => saving.mutateAsync({ params, body: { apiKey: key } }))) {
      setService('');
      setKey('');
    }
  }

  const remove = (name: string) =>
    run(() => deletion.mutateAsync({ params: { path: { id: props.projectId, service: name } } }));

  return (
    <div className="settings-section">
      <h3>Integrations</h3>
      {unavailable ? (
        <p className="muted small">Integrations are not available on this server.</p>
      ) : (
        <>
          <ul className="members">
            {(items ?? []).map((it) => {
              const name = it.service;
              return (
                <li key={name}>
                  <span>
                    {name} <span className="muted small">…{it.last4 ?? ''}</span>
                  </span>
                  <button
                    className="icon"
                    aria-label={`Remove ${name}`}
                    onClick={() => void remove(name)}
                  >
                    ×
                  </button>
                </li>
              );
            })}
            {items?.length === 0 && <li className="muted small">None yet.</li>}
          </ul>
          <form className="row wrap" onSubmit={add}>
            <input
              required
              placeholder="service (e.g. stripe)"
              aria-label="Service"
              value={service}
              onChange={(e) => setService(e.target.value)}
            />
            <input
              required
              type="password"
              autoComplete="off"
              placeholder="API key"
              aria-label="API key"
              value={key}
              onChange={(e) => setKey(e.target.value)}
            />
            <button className="small-btn" type="submit">
              Save
            </button>
          </form>
        </>
      )}
    </div>
  );
}

/** A change reaches a running container only when it restarts: say so, and offer it. */
function EnvSection(props: {
  projectId: string;
  isAdmin: boolean;
  /** The container's status (undefined: none yet). */
  status: string | undefined;
  onRestart(): void;
}) {
  const { notify } = useApp();
  const $api = useApiQueries();
  const queryClient = useQueryClient();
  const [name, setName] = useState('');
  const [value, setValue] = useState('');
  // Set by our save, or by anyone's (environment_changed, env-notice.ts).
  const restartNeeded = useRestartNeeded(props.projectId) !== null;
  const setRestart = (needed: boolean) => setRestartNeeded(queryClient, props.projectId, needed);
  const project = { params: { path: { id: props.projectId } } };
  // Kept fresh by `environment_changed` events; not there on a server without the service.
  const list = $api.useQuery('get', '/api/projects/{id}/env', project, { retry: false });
  const names = list.data?.names ?? null;
  const unavailable = list.isError;
  const saving = $api.useMutation('put', '/api/projects/{id}/env');

  // A (re)start or a stop takes the new environment: the notice has done its job.
  useEffect(() => {
    if (props.status === 'starting' || props.status === 'stopped')
      setRestartNeeded(queryClient, props.projectId, false);
  }, [props.status, queryClient, props.projectId]);

  async function add(e: FormEvent) {
    e.preventDefault();
    try {
      const r = await saving.mutateAsync({ ...project, body: { vars: { [name.trim()]: value } } });
      queryClient.setQueryData(['get', '/api/projects/{id}/env', project], { names: r.names });
      setName('');
      setValue('');
      if (r.restartRequired) setRestart(true);
      notify(r.restartRequired ? 'Saved. Restart to apply it.' : 'Saved.');
    } catch (err) {
      notify(errorMessage(err), 'error');
    }
  }

  return (
    <div className="settings-section">
      <h3>Environment</h3>
      {unavailable ? (
        <p className="muted small">Environment variables are not available on this server.</p>
      ) : (
        <>
          <p className="muted small">
            Values are encrypted and never shown again; only names are listed.
          </p>
          {restartNeeded && (
            <p className="small row" role="status" data-testid="env-restart">
              <span>Restart to apply: the running container has the previous values.</span>
              <button
                className="small-btn"
                type="button"
                onClick={() => {
                  setRestart(false);
                  props.onRestart();
                }}
              >
                Restart
              </button>
            </p>
          )}
          <ul className="env-names">
            {(names ?? []).map((n) => (
              <li key={n}>
                <code>{n}</code>
              </li>
            ))}
            {names?.length === 0 && <li className="muted small">None yet.</li>}
          </ul>
          {props.isAdmin && (
            <form className="row wrap" onSubmit={add}>
              <input
                required
                pattern="[A-Za-z_][A-Za-z0-9_]*"
                placeholder="NAME"
                aria-label="Variable name"
                value={name}
                onChange={(e) => setName(e.target.value)}
              />
              <input
                required
                type="password"
                autoComplete="off"
                placeholder="value"
                aria-label="Variable value"
                value={value}
                onChange={(e) => setValue(e.target.value)}
              />
              <button className="small-btn" type="submit">
                Set
              </button>
            </form>
          )}
        </>
      )}
    </div>
  );
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
