import { useQueryClient } from '@tanstack/react-query';
import type { Schemas } from '@vaporform/sdk';
import { useEffect, useMemo, useState } from 'react';
import { useApp } from '../context.tsx';
import { errorMessage } from '../lib/client.ts';
import type { ProjectSocket } from '../lib/project-socket.ts';
import { useApiQueries } from '../lib/queries.ts';
import { useEscape } from '../lib/use-escape.ts';
import {
  CommandBox,
  DeploysView,
  MachinesView,
  MachineTerminal,
} from './infrastructure-machines.tsx';
import './infrastructure-panel.css';
import { RunHistory, RunProgress } from './infrastructure-progress.tsx';
import { currentRun, isRunning, loadRunEvents, type InfraLogEvent } from './infrastructure-runs.ts';

type Deployment = Schemas['Deployment'];
type Provider = Deployment['provider'];
type Tab = 'machines' | 'commands' | 'deploys' | 'runs' | 'terminal';

const PROVIDERS: { id: Provider; label: string; regions: string[] }[] = [
  { id: 'local', label: 'Local (Docker on this server)', regions: ['local'] },
  {
    id: 'aws',
    label: 'Amazon Web Services',
    regions: ['us-east-1', 'eu-west-1', 'ap-southeast-1'],
  },
  { id: 'gcp', label: 'Google Cloud', regions: ['us-central1', 'europe-west1', 'asia-east1'] },
  { id: 'azure', label: 'Microsoft Azure', regions: ['eastus', 'westeurope', 'southeastasia'] },
];

const deploymentsKey = ['get', '/api/infrastructure'] as const;

/**
 * The infrastructure manager of a project: its deployments (status, machines online/offline,
 * the app's URL per machine), a provision form, Terraform's live progress and raw log, drift,
 * re-apply, destroy, run history, commands on machines, deploys and a machine terminal.
 * Admins act; members read (actions disabled with the reason).
 */
export function InfrastructurePanel(props: {
  projectId: string;
  role: string | undefined;
  socket: ProjectSocket | null;
  theme: 'dark' | 'light';
  onClose: () => void;
}) {
  const { projectId, socket } = props;
  const $api = useApiQueries();
  const queryClient = useQueryClient();
  const isAdmin = props.role === 'owner' || props.role === 'admin';
  const readOnly = isAdmin ? null : 'Only the project’s admins can change its infrastructure.';
  const list = $api.useQuery('get', '/api/infrastructure', {
    params: { query: { projectId } },
  });
  const deployments = useMemo(
    () =>
      [...(list.data?.deployments ?? [])]
        .map(settled)
        .sort((a, b) => b.createdAt.localeCompare(a.createdAt)),
    [list.data],
  );
  const [selectedId, setSelectedId] = useState<string | 'new' | null>(null);
  const live = deployments.filter((d) => d.status !== 'destroyed');
  const selected =
    selectedId === 'new'
      ? null
      : (deployments.find((d) => d.id === selectedId) ?? live[0] ?? deployments[0] ?? null);

  // Status changes, agents coming and going, deploys ending: straight from the project socket.
  // The workbench reads the list again on each of them (`staleQueries`); an agent's change is
  // also shown at once here, before that read answers.
  useEffect(() => {
    if (!socket) return;
    return socket.on((e) => {
      if (e.type === 'integration_changed') {
        void queryClient.invalidateQueries({ queryKey: ['get', '/api/infrastructure/targets'] });
      } else if (e.type === 'agent_status') {
        queryClient.setQueriesData<{ deployments: Deployment[] }>(
          { queryKey: deploymentsKey },
          (old) =>
            old && {
              deployments: old.deployments.map((d) =>
                d.id !== e.data.deploymentId
                  ? d
                  : {
                      ...d,
                      machines: d.machines.map((m) =>
                        m.name === e.data.machine ? { ...m, agent: e.data.agent } : m,
                      ),
                    },
              ),
            },
        );
      }
    });
  }, [socket, queryClient]);

  return (
    <section className="infra" aria-label="Infrastructure">
      <header className="infra-head">
        <h1>Infrastructure</h1>
        <span className="muted small">
          Machines provisioned by Terraform, their agents, commands and deploys
        </span>
        <div className="spacer" />
        {readOnly && (
          <span className="badge" title={readOnly}>
            read-only ({props.role ?? 'member'})
          </span>
        )}
        <button className="icon" aria-label="Close infrastructure" onClick={props.onClose}>
          ×
        </button>
      </header>
      <div className="infra-body">
        <nav className="infra-list" aria-label="Deployments">
          <div className="infra-list-head">
            <h2>Deployments</h2>
            <button
              className="small-btn"
              onClick={() => setSelectedId('new')}
              disabled={!!readOnly}
              title={readOnly ?? 'Provision new machines'}
            >
              + New
            </button>
          </div>
          {list.isPending && <p className="muted small pad">Loading…</p>}
          {list.error && (
            <p className="error small pad" role="alert">
              {errorMessage(list.error, 'Could not load the deployments')}
            </p>
          )}
          {deployments.length === 0 && !list.isPending && (
            <p className="muted small pad">No deployment yet.</p>
          )}
          <ul>
            {deployments.map((d) => (
              <li key={d.id}>
                <button
                  className={`infra-item ${selected?.id === d.id ? 'selected' : ''}`}
                  aria-current={selected?.id === d.id}
                  onClick={() => setSelectedId(d.id)}
                >
                  <span className="row">
                    <StatusBadge status={d.status} />
                    <strong>{d.provider}</strong>
                    <span className="muted small">{machinesText(d)}</span>
                  </span>
                  <span className="muted small">
                    {d.id.slice(0, 8)} · {new Date(d.createdAt).toLocaleString()}
                  </span>
                </button>
              </li>
            ))}
          </ul>
        </nav>
        <div className="infra-main">
          {selectedId === 'new' || (!selected && !list.isPending) ? (
            <ProvisionForm
              projectId={projectId}
              readOnly={readOnly}
              onProvisioned={(d) => setSelectedId(d.id)}
            />
          ) : selected ? (
            <DeploymentView
              key={selected.id}
              deployment={selected}
              projectId={projectId}
              socket={socket}
              readOnly={readOnly}
              theme={props.theme}
            />
          ) : null}
        </div>
      </div>
    </section>
  );
}

/**
 * A deployment whose last run was a finished drift check is what that check found it (a server
 * that leaves the deployment `planning` after a refresh must not lock every action).
 */
function settled(d: Deployment): Deployment {
  const last = d.lastRun;
  if (last?.kind === 'refresh' && last.finishedAt && isRunning(d.status))
    return { ...d, status: last.status };
  return d;
}

/** How many machines the deployment has, or will have once its run applies. */
function machineCount(d: Deployment): number {
  const planned = Number(d.variables.machine_count);
  return d.machines.length || (Number.isFinite(planned) ? planned : 0);
}

function machinesText(d: Deployment): string {
  const n = d.status === 'destroyed' ? 0 : machineCount(d);
  return `${n} machine${n === 1 ? '' : 's'}`;
}

/** A deployment status as a coloured badge. */
export function StatusBadge(props: { status: string }) {
  const tone =
    props.status === 'ready' || props.status === 'succeeded'
      ? 'ok'
      : props.status === 'failed' || props.status === 'canceled' || props.status === 'partial'
        ? 'bad'
        : props.status === 'destroyed'
          ? 'off'
          : 'busy';
  return <span className={`badge infra-badge tone-${tone}`}>{props.status}</span>;
}

type Target = Schemas['InfrastructureTarget'];

/** The targets this project can provision: credentials configured/missing, provider here. */
function useTargets(projectId: string, enabled: boolean): Map<Provider, Target> | null {
  const $api = useApiQueries();
  const targets = $api.useQuery(
    'get',
    '/api/infrastructure/targets',
    { params: { query: { projectId } } },
    { retry: false, enabled },
  );
  return useMemo(
    () => (targets.data ? new Map(targets.data.targets.map((t) => [t.target, t])) : null),
    [targets.data],
  );
}

function ProvisionForm(props: {
  projectId: string;
  readOnly: string | null;
  onProvisioned: (d: Deployment) => void;
}) {
  const { notify } = useApp();
  const $api = useApiQueries();
  const queryClient = useQueryClient();
  const targets = useTargets(props.projectId, !props.readOnly);
  const [provider, setProvider] = useState<Provider>('local');
  const [machines, setMachines] = useState(2);
  const [size, setSize] = useState<'small' | 'medium' | 'large'>('small');
  const [region, setRegion] = useState('local');
  const [error, setError] = useState<string | null>(null);
  const provision = $api.useMutation('post', '/api/provision');
  const target = PROVIDERS.find((p) => p.id === provider)!;

  function credentialState(id: Provider): { ok: boolean; text: string } {
    const t = targets?.get(id);
    if (!t)
      return id === 'local'
        ? { ok: true, text: 'no credentials needed' }
        : { ok: false, text: 'credentials unknown' };
    const text =
      t.credentials === 'not_needed'
        ? 'no credentials needed'
        : t.credentials === 'configured'
          ? 'credentials configured'
          : 'credentials missing';
    const ok = t.credentials !== 'missing' && t.available;
    return { ok, text: t.available ? text : `${text} · provider not installed here` };
  }

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setError(null);
    try {
      const r = await provision.mutateAsync({
        body: {
          projectId: props.projectId,
          provider,
          machines,
          size,
          ...(provider === 'local' ? {} : { region }),
        },
      });
      await queryClient.invalidateQueries({ queryKey: deploymentsKey });
      notify(`Provisioning ${machines} ${provider} machine${machines === 1 ? '' : 's'}`);
      props.onProvisioned(r.deployment);
    } catch (err) {
      setError(errorMessage(err, 'Could not provision'));
    }
  }

  return (
    <form className="infra-card infra-provision" onSubmit={(e) => void submit(e)}>
      <h2>Provision machines</h2>
      <fieldset>
        <legend>Target</legend>
        <div className="infra-targets">
          {PROVIDERS.map((p) => {
            const cred = credentialState(p.id);
            return (
              <label key={p.id} className={`infra-target ${provider === p.id ? 'on' : ''}`}>
                <input
                  type="radio"
                  name="provider"
                  value={p.id}
                  checked={provider === p.id}
                  onChange={() => {
                    setProvider(p.id);
                    setRegion(p.regions[0]!);
                  }}
                />
                <span>
                  <strong>{p.id}</strong> <span className="muted small">{p.label}</span>
                  <br />
                  <span className={`small ${cred.ok ? 'ok-text' : 'warn-text'}`}>
                    {cred.ok ? '✓' : '!'} {cred.text}
                  </span>
                </span>
              </label>
            );
          })}
        </div>
      </fieldset>
      <div className="infra-fields">
        <label>
          Machines
          <input
            type="number"
            min={1}
            max={20}
            value={machines}
            onChange={(e) => setMachines(Math.max(1, Math.min(20, Number(e.target.value) || 1)))}
          />
        </label>
        <label>
          Size
          <select value={size} onChange={(e) => setSize(e.target.value as typeof size)}>
            <option value="small">small</option>
            <option value="medium">medium</option>
            <option value="large">large</option>
          </select>
        </label>
        <label>
          Region
          <select
            value={region}
            onChange={(e) => setRegion(e.target.value)}
            disabled={provider === 'local'}
          >
            {target.regions.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
      </div>
      {!credentialState(provider).ok && targets && (
        <p className="infra-note small">
          {targets.get(provider)?.credentials === 'missing'
            ? `No ${provider} credentials: add the project’s ${provider} integration (Settings › Integrations). `
            : ''}
          {targets.get(provider)?.available === false
            ? `This server cannot install the ${provider} Terraform provider: provisioning would fail.`
            : ''}
        </p>
      )}
      {error && (
        <p className="error small" role="alert">
          {error}
        </p>
      )}
      <div className="row">
        <button
          type="submit"
          className="primary"
          disabled={!!props.readOnly || provision.isPending}
          title={props.readOnly ?? undefined}
        >
          {provision.isPending ? 'Provisioning…' : 'Provision'}
        </button>
        {props.readOnly && <span className="muted small">{props.readOnly}</span>}
      </div>
    </form>
  );
}

/** The events of one deployment: stored ones, then live ones from the project socket. */
function useRunEvents(deployment: Deployment, socket: ProjectSocket | null): InfraLogEvent[] {
  const { api } = useApp();
  const [events, setEvents] = useState<Map<number, InfraLogEvent>>(new Map());
  const add = (list: InfraLogEvent[]) =>
    setEvents((old) => {
      const next = new Map(old);
      for (const e of list) next.set(e.seq, e);
      return next;
    });
  useEffect(() => {
    if (!socket) return;
    return socket.on((e) => {
      if (e.type === 'infrastructure_event' && e.data.deploymentId === deployment.id) add([e.data]);
    });
  }, [socket, deployment.id]);
  // Stored events: on open, and again each time a run changes status (catches what the socket
  // missed while reconnecting).
  const runKey = `${deployment.lastRun?.id}:${deployment.status}`;
  useEffect(() => {
    let stop = false;
    loadRunEvents(api, deployment.id)
      .then((list) => !stop && add(list))
      .catch(() => undefined);
    return () => {
      stop = true;
    };
  }, [api, deployment.id, runKey]);
  return useMemo(() => [...events.values()], [events]);
}

/**
 * The deployment's runs as the server recorded them (`GET …/runs`), refetched when a run of it
 * changes status, or when an event names a run not in the list yet (a missed status).
 */
function useRunHistory(deploymentId: string, socket: ProjectSocket | null) {
  const $api = useApiQueries();
  const queryClient = useQueryClient();
  const runs = $api.useQuery('get', '/api/infrastructure/{deploymentId}/runs', {
    params: { path: { deploymentId } },
  });
  const known = runs.data?.runs;
  useEffect(() => {
    if (!socket) return;
    const init = { params: { path: { deploymentId } } };
    const stale = () =>
      void queryClient.invalidateQueries({
        queryKey: ['get', '/api/infrastructure/{deploymentId}/runs', init],
      });
    return socket.on((e) => {
      if (e.type === 'infrastructure_status' && e.data.deploymentId === deploymentId) stale();
      else if (
        e.type === 'infrastructure_event' &&
        e.data.deploymentId === deploymentId &&
        known &&
        !known.some((r) => r.id === e.data.runId)
      )
        stale();
    });
  }, [socket, queryClient, deploymentId, known]);
  return runs;
}

function DeploymentView(props: {
  deployment: Deployment;
  projectId: string;
  socket: ProjectSocket | null;
  readOnly: string | null;
  theme: 'dark' | 'light';
}) {
  const d = props.deployment;
  const { notify } = useApp();
  const $api = useApiQueries();
  const queryClient = useQueryClient();
  const events = useRunEvents(d, props.socket);
  const current = useMemo(() => d.lastRun && currentRun(events, d.lastRun), [events, d.lastRun]);
  const runs = useRunHistory(d.id, props.socket);
  const [tab, setTab] = useState<Tab>('machines');
  const [terminalFor, setTerminalFor] = useState<string | null>(null);
  const [count, setCount] = useState(machineCount(d) || 1);
  const [confirmDestroy, setConfirmDestroy] = useState(false);
  const [drift, setDrift] = useState(d.drift);
  useEffect(() => setDrift(d.drift), [d.drift]);
  const path = { params: { path: { deploymentId: d.id } } };
  const apply = $api.useMutation('post', '/api/infrastructure/{deploymentId}/apply');
  const refresh = $api.useMutation('post', '/api/infrastructure/{deploymentId}/refresh');
  const cancel = $api.useMutation('post', '/api/infrastructure/{deploymentId}/cancel');
  const destroy = $api.useMutation('delete', '/api/infrastructure/{deploymentId}');
  const running = isRunning(d.status);
  const destroyed = d.status === 'destroyed';
  const busy = props.readOnly ?? (running ? 'A Terraform run is in progress' : null);
  useEscape(confirmDestroy, () => setConfirmDestroy(false));

  async function act(what: string, fn: () => Promise<unknown>) {
    try {
      await fn();
      await queryClient.invalidateQueries({ queryKey: deploymentsKey });
    } catch (err) {
      notify(`${what}: ${errorMessage(err)}`, 'error');
    }
  }

  return (
    <div className="infra-deployment">
      <div className="infra-summary">
        <div>
          <div className="row">
            <StatusBadge status={d.status} />
            <strong className="infra-title">
              {d.provider} · {machinesText(d)}
            </strong>
          </div>
          <div className="muted small" title={d.id}>
            {d.id.slice(0, 8)} · created {new Date(d.createdAt).toLocaleString()}
            {d.lastRun &&
              ` · last run: ${d.lastRun.kind} ${d.lastRun.status}${d.lastRun.finishedAt ? ` at ${new Date(d.lastRun.finishedAt).toLocaleTimeString()}` : ''}`}
          </div>
        </div>
        <div className="spacer" />
        {!destroyed && (
          <div className="row infra-actions">
            <button
              disabled={!!busy || refresh.isPending}
              title={busy ?? 'Compare the machines with Terraform’s state'}
              onClick={() =>
                void act('Refresh', async () => {
                  const r = await refresh.mutateAsync(path);
                  setDrift({ ...r, checkedAt: new Date().toISOString() });
                })
              }
            >
              {refresh.isPending ? 'Checking drift…' : 'Refresh'}
            </button>
            <label className="inline infra-count" title="Machine count of the next apply">
              <span className="muted small">Machines</span>
              <input
                type="number"
                min={0}
                max={20}
                value={count}
                aria-label="Machine count"
                onChange={(e) => setCount(Math.max(0, Math.min(20, Number(e.target.value) || 0)))}
              />
            </label>
            <button
              disabled={!!busy || apply.isPending}
              title={busy ?? 'Apply again with this machine count'}
              onClick={() =>
                void act('Re-apply', () =>
                  apply.mutateAsync({ ...path, body: { machines: count } }),
                )
              }
            >
              Re-apply
            </button>
            {running && (
              <button
                disabled={!!props.readOnly}
                title={props.readOnly ?? 'Stop the run (Terraform is interrupted)'}
                onClick={() => void act('Cancel', () => cancel.mutateAsync(path))}
              >
                Cancel run
              </button>
            )}
            <button
              className="ghost danger"
              disabled={!!busy}
              title={busy ?? 'Destroy every machine and the state'}
              onClick={() => setConfirmDestroy(true)}
            >
              Destroy
            </button>
          </div>
        )}
      </div>
      {drift && (
        <div className={`infra-drift ${drift.drift ? 'drifted' : ''}`} role="status">
          {drift.drift ? (
            <>
              <strong>Drift:</strong> {drift.changes.length} resource
              {drift.changes.length === 1 ? '' : 's'} changed outside Terraform —{' '}
              {drift.changes.map((c) => `${c.address} (${c.action})`).join(', ')}. Re-apply to
              restore them.
            </>
          ) : (
            <>No drift: the machines match Terraform’s state.</>
          )}{' '}
          <span className="muted small">
            checked {new Date(drift.checkedAt).toLocaleTimeString()}
          </span>
        </div>
      )}
      {current && <RunProgress run={current} />}
      <div className="subtabs infra-tabs" role="tablist" aria-label="Deployment">
        {(['machines', 'commands', 'deploys', 'runs', 'terminal'] as Tab[]).map((t) => (
          <span key={t} className={`subtab ${tab === t ? 'active' : ''}`}>
            <button role="tab" aria-selected={tab === t} onClick={() => setTab(t)}>
              {t === 'runs' ? 'Run history' : t[0]!.toUpperCase() + t.slice(1)}
            </button>
          </span>
        ))}
      </div>
      <div className="infra-tab-body">
        {tab === 'machines' && (
          <MachinesView
            deployment={d}
            readOnly={props.readOnly}
            onTerminal={(m) => {
              setTerminalFor(m);
              setTab('terminal');
            }}
          />
        )}
        {tab === 'commands' && <CommandBox deployment={d} readOnly={props.readOnly} />}
        {tab === 'deploys' && (
          <DeploysView deployment={d} socket={props.socket} readOnly={props.readOnly} />
        )}
        {tab === 'runs' &&
          (runs.error ? (
            <p className="error small pad" role="alert">
              {errorMessage(runs.error, 'Could not load the run history')}
            </p>
          ) : runs.data ? (
            <RunHistory runs={runs.data.runs} events={events} />
          ) : (
            <p className="muted small pad">Loading…</p>
          ))}
        {tab === 'terminal' && (
          <MachineTerminal
            deployment={d}
            machine={terminalFor}
            onMachine={setTerminalFor}
            readOnly={props.readOnly}
            theme={props.theme}
          />
        )}
      </div>
      {confirmDestroy && (
        <div className="modal-backdrop" role="presentation">
          <div className="modal" role="dialog" aria-modal="true" aria-labelledby="infra-destroy">
            <h2 id="infra-destroy">Destroy this deployment?</h2>
            <p>
              Its {d.machines.length} machine{d.machines.length === 1 ? '' : 's'} (
              {d.machines.map((m) => m.name).join(', ') || 'none'}), their data and Terraform’s
              state are removed. This cannot be undone.
            </p>
            <div className="row end">
              <button autoFocus onClick={() => setConfirmDestroy(false)}>
                Keep it
              </button>
              <button
                className="danger"
                disabled={destroy.isPending}
                onClick={() =>
                  void act('Destroy', () => destroy.mutateAsync(path)).finally(() =>
                    setConfirmDestroy(false),
                  )
                }
              >
                Destroy
              </button>
            </div>
          </div>
        </div>
      )}
    </div>
  );
}
