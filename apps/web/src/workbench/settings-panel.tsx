import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { useApp } from '../context.tsx';
import type { Container, Invitation, Member, Project, Role } from '../lib/types.ts';

type Grantable = Exclude<Role, 'owner'>;
const roleRank: Record<Role, number> = { owner: 4, admin: 3, editor: 2, viewer: 1 };

/** Project settings: members and roles, integrations and environment (names only), container. */
export function SettingsPanel(props: {
  project: Project;
  container: Container | null;
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
  container: Container | null;
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
  const [members, setMembers] = useState<Member[]>([]);
  const [invitations, setInvitations] = useState<Invitation[]>([]);
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<Grantable>('editor');
  const id = props.project.id;
  const me = api.session.get()?.user.id;

  const load = useCallback(() => {
    api
      .listMembers(id)
      .then((r) => setMembers(r.members))
      .catch((err: Error) => notify(err.message, 'error'));
    api
      .listInvitations(id)
      .then((r) => setInvitations(r.invitations))
      .catch((err: Error) => notify(err.message, 'error'));
  }, [api, id, notify]);
  useEffect(load, [load]);

  async function add(e: FormEvent) {
    e.preventDefault();
    try {
      const added = await api.addMember(id, email.trim(), role);
      if ('invitation' in added) {
        notify(`Invitation sent: ${added.invitation.email} joins as ${role} on signing up.`);
      }
      setEmail('');
      load();
    } catch (err) {
      notify((err as Error).message, 'error');
    }
  }

  async function revoke(i: Invitation) {
    try {
      await api.revokeInvitation(id, i.id);
      load();
    } catch (err) {
      notify((err as Error).message, 'error');
    }
  }

  async function change(m: Member, r: Grantable) {
    try {
      await api.changeMember(id, m.userId, r);
      load();
    } catch (err) {
      notify((err as Error).message, 'error');
    }
  }

  async function remove(m: Member) {
    try {
      await api.removeMember(id, m.userId);
      load();
    } catch (err) {
      notify((err as Error).message, 'error');
    }
  }

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
  const { api, notify } = useApp();
  const [items, setItems] = useState<Record<string, unknown>[] | null>(null);
  const [unavailable, setUnavailable] = useState(false);
  const [service, setService] = useState('');
  const [key, setKey] = useState('');

  const load = useCallback(() => {
    api
      .listIntegrations(props.projectId)
      .then((r) => setItems(r.integrations))
      .catch(() => setUnavailable(true));
  }, [api, props.projectId]);
  useEffect(load, [load]);

  async function add(e: FormEvent) {
    e.preventDefault();
    try {
      await api.putIntegration(props.projectId, service.trim(), key);
      setService('');
      setKey('');
      load();
    } catch (err) {
      notify((err as Error).message, 'error');
    }
  }

  async function remove(name: string) {
    try {
      await api.deleteIntegration(props.projectId, name);
      load();
    } catch (err) {
      notify((err as Error).message, 'error');
    }
  }

  return (
    <div className="settings-section">
      <h3>Integrations</h3>
      {unavailable ? (
        <p className="muted small">Integrations are not available on this server.</p>
      ) : (
        <>
          <ul className="members">
            {(items ?? []).map((it) => {
              const name = String(it.service ?? it.serviceName ?? '');
              return (
                <li key={name}>
                  <span>
                    {name} <span className="muted small">…{String(it.last4 ?? '')}</span>
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
  const { api, notify } = useApp();
  const [names, setNames] = useState<string[] | null>(null);
  const [unavailable, setUnavailable] = useState(false);
  const [name, setName] = useState('');
  const [value, setValue] = useState('');
  const [restartNeeded, setRestartNeeded] = useState(false);

  // A (re)start or a stop takes the new environment: the notice has done its job.
  useEffect(() => {
    if (props.status === 'starting' || props.status === 'stopped') setRestartNeeded(false);
  }, [props.status]);

  useEffect(() => {
    api
      .envNames(props.projectId)
      .then((r) => setNames(r.names))
      .catch(() => setUnavailable(true));
  }, [api, props.projectId]);

  async function add(e: FormEvent) {
    e.preventDefault();
    try {
      const r = (await api.putEnv(props.projectId, { [name.trim()]: value })) as {
        names: string[];
        restartRequired?: boolean;
      };
      setNames(r.names);
      setName('');
      setValue('');
      if (r.restartRequired) setRestartNeeded(true);
      notify(r.restartRequired ? 'Saved. Restart to apply it.' : 'Saved.');
    } catch (err) {
      notify((err as Error).message, 'error');
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
                  setRestartNeeded(false);
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
