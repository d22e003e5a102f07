import { useQueryClient } from '@tanstack/react-query';
import type { ProjectEventData, Schemas } from '@vaporform/sdk';
import { useEffect, useState } from 'react';
import { useApp } from '../context.tsx';
import { errorMessage } from '../lib/client.ts';
import type { ProjectSocket } from '../lib/project-socket.ts';
import { useApiQueries } from '../lib/queries.ts';
import { TerminalView } from './terminal-panel.tsx';

type Deployment = Schemas['Deployment'];
type CommandResult = Schemas['CommandResult'];

/**
 * A machine's name without the deployment's prefix (`vf-<deployment id>-0` → `machine 0`):
 * the full name stays in the machines table and in tooltips.
 */
export function shortName(deployment: Deployment, machine: string): string {
  const prefix = `vf-${deployment.id}-`;
  return machine.startsWith(prefix) ? `machine ${machine.slice(prefix.length)}` : machine;
}

/** Deploy history of a deployment, newest first. */
function useDeploys(deploymentId: string) {
  const $api = useApiQueries();
  return $api.useQuery('get', '/api/infrastructure/{deploymentId}/deploys', {
    params: { path: { deploymentId }, query: { limit: 20 } },
  });
}

/** The machines: name, addresses, agent online/offline (live), the deployed app's URL. */
export function MachinesView(props: {
  deployment: Deployment;
  readOnly: string | null;
  onTerminal: (machine: string) => void;
}) {
  const d = props.deployment;
  if (d.machines.length === 0) {
    return (
      <p className="muted small pad">
        {d.status === 'destroyed' ? 'Destroyed: no machine left.' : 'No machine yet.'}
      </p>
    );
  }
  return (
    <table className="infra-table" aria-label="Machines">
      <thead>
        <tr>
          <th scope="col">Machine</th>
          <th scope="col">Agent</th>
          <th scope="col">Address</th>
          <th scope="col">App</th>
          <th scope="col">
            <span className="sr-only">Actions</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {d.machines.map((m) => {
          return (
            <tr key={m.name} data-testid={`machine-${m.name}`} data-agent={m.agent}>
              <td>
                <strong>{m.name}</strong>
                <div className="muted small">{m.id.slice(0, 12)}</div>
              </td>
              <td>
                <span className={`infra-agent agent-${m.agent}`}>
                  <span className="res-dot" aria-hidden="true" /> {m.agent}
                </span>
              </td>
              <td>
                <code>{m.address || '—'}</code>
                {m.publicAddress && <div className="small">public {m.publicAddress}</div>}
              </td>
              <td>
                {m.app?.url && m.app.status === 'running' ? (
                  <a href={m.app.url} target="_blank" rel="noreferrer">
                    {m.app.url}
                  </a>
                ) : (
                  <span className={m.app ? 'error small' : 'muted small'}>
                    {m.app ? m.app.status : 'not deployed'}
                  </span>
                )}
                {m.app && (
                  <div className="muted small">
                    {m.app.release}
                    {m.app.rolledBack ? ' (rolled back to the previous release)' : ''}
                  </div>
                )}
              </td>
              <td className="actions">
                <button
                  className="small-btn"
                  disabled={!!props.readOnly || m.agent !== 'online'}
                  title={
                    props.readOnly ??
                    (m.agent !== 'online' ? 'The agent is not connected' : 'Open a shell')
                  }
                  onClick={() => props.onTerminal(m.name)}
                >
                  Terminal
                </button>
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function MachinePicker(props: {
  machines: string[];
  chosen: Set<string> | null;
  onChange: (chosen: Set<string> | null) => void;
}) {
  return (
    <div className="infra-picker" role="group" aria-label="Machines to run on">
      <label className="inline">
        <input
          type="checkbox"
          checked={props.chosen === null}
          onChange={(e) => props.onChange(e.target.checked ? null : new Set(props.machines))}
        />
        all machines
      </label>
      {props.chosen !== null &&
        props.machines.map((m) => (
          <label key={m} className="inline">
            <input
              type="checkbox"
              checked={props.chosen!.has(m)}
              onChange={(e) => {
                const next = new Set(props.chosen);
                if (e.target.checked) next.add(m);
                else next.delete(m);
                props.onChange(next);
              }}
            />
            {m}
          </label>
        ))}
    </div>
  );
}

/** Run a command on every machine (or chosen ones); per-machine results side by side. */
export function CommandBox(props: { deployment: Deployment; readOnly: string | null }) {
  const d = props.deployment;
  const $api = useApiQueries();
  const queryClient = useQueryClient();
  const [command, setCommand] = useState('');
  const [chosen, setChosen] = useState<Set<string> | null>(null);
  const [timeout, setTimeoutS] = useState(30);
  const [results, setResults] = useState<{ command: string; results: CommandResult[] } | null>(
    null,
  );
  const [error, setError] = useState<string | null>(null);
  const run = $api.useMutation('post', '/api/infrastructure/{deploymentId}/command');
  const history = $api.useQuery('get', '/api/infrastructure/{deploymentId}/commands', {
    params: { path: { deploymentId: d.id }, query: { limit: 10 } },
  });
  const blocked =
    props.readOnly ??
    (d.status !== 'ready'
      ? `The deployment is ${d.status}`
      : d.machines.length === 0
        ? 'No machine'
        : null);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    if (!command.trim()) return;
    setError(null);
    try {
      const r = await run.mutateAsync({
        params: { path: { deploymentId: d.id } },
        body: {
          command: command.trim(),
          timeoutMs: timeout * 1000,
          ...(chosen ? { machines: [...chosen] } : {}),
        },
      });
      setResults({ command: command.trim(), results: r.results });
      await queryClient.invalidateQueries({
        queryKey: ['get', '/api/infrastructure/{deploymentId}/commands'],
      });
    } catch (err) {
      setError(errorMessage(err, 'The command could not run'));
    }
  }

  return (
    <div className="infra-commands">
      <form className="infra-command-form" onSubmit={(e) => void submit(e)}>
        <span className="infra-prompt" aria-hidden="true">
          $
        </span>
        <input
          className="infra-command-input"
          aria-label="Command"
          placeholder={blocked ?? 'A shell command, e.g. uptime'}
          value={command}
          onChange={(e) => setCommand(e.target.value)}
          disabled={!!blocked}
        />
        <label className="inline" title="Timeout per machine">
          <select
            aria-label="Timeout"
            value={timeout}
            onChange={(e) => setTimeoutS(Number(e.target.value))}
          >
            {[5, 30, 120, 600].map((s) => (
              <option key={s} value={s}>
                {s} s
              </option>
            ))}
          </select>
        </label>
        <button
          type="submit"
          className="primary"
          disabled={!!blocked || run.isPending || !command.trim() || chosen?.size === 0}
          title={blocked ?? undefined}
        >
          {run.isPending ? 'Running…' : 'Run'}
        </button>
      </form>
      <MachinePicker
        machines={d.machines.map((m) => m.name)}
        chosen={chosen}
        onChange={setChosen}
      />
      {error && (
        <p className="error small" role="alert">
          {error}
        </p>
      )}
      {results && (
        <CommandResults deployment={d} command={results.command} results={results.results} />
      )}
      <h3 className="infra-subhead">Recent commands</h3>
      {(history.data?.commands ?? []).length === 0 ? (
        <p className="muted small">None yet.</p>
      ) : (
        <ul className="infra-history">
          {history.data!.commands.map((c) => {
            const ok = c.results.filter((r) => r.status === 'succeeded').length;
            return (
              <li key={c.id}>
                <button
                  className="linklike"
                  onClick={() =>
                    setResults({
                      command: [c.command, ...(c.args ?? [])].join(' '),
                      results: c.results,
                    })
                  }
                >
                  <code>{[c.command, ...(c.args ?? [])].join(' ')}</code>
                </button>{' '}
                <span className={`small ${ok === c.results.length ? 'ok-text' : 'warn-text'}`}>
                  {ok}/{c.results.length} succeeded
                </span>{' '}
                <span className="muted small">{new Date(c.createdAt).toLocaleString()}</span>
              </li>
            );
          })}
        </ul>
      )}
    </div>
  );
}

function CommandResults(props: {
  deployment: Deployment;
  command: string;
  results: CommandResult[];
}) {
  return (
    <div className="infra-results" aria-label={`Results of ${props.command}`} role="region">
      {props.results.map((r) => (
        <article
          key={r.machine}
          className={`infra-result status-${r.status}`}
          data-testid={`result-${r.machine}`}
          data-status={r.status}
        >
          <header className="row">
            <strong title={r.machine}>{shortName(props.deployment, r.machine)}</strong>
            <span className={`infra-run-status tone-${r.status === 'succeeded' ? 'ok' : 'bad'}`}>
              {r.status}
            </span>
            <div className="spacer" />
            <span
              className={`infra-exit ${r.exitCode === 0 ? 'zero' : r.exitCode === null ? 'none' : 'nonzero'}`}
              data-testid="exit-code"
            >
              exit {r.exitCode ?? '—'}
            </span>
            <span className="muted small">{r.durationMs} ms</span>
          </header>
          {r.error && <p className="error small">{r.error}</p>}
          <Output label="stdout" text={r.stdout} />
          <Output label="stderr" text={r.stderr} />
          {r.truncated && <p className="muted small">Output truncated.</p>}
        </article>
      ))}
    </div>
  );
}

function Output(props: { label: string; text: string }) {
  if (!props.text) return <p className="muted small">no {props.label}</p>;
  const lines = props.text.replace(/\n$/, '').split('\n').length;
  return (
    <details open={props.text.length < 600 && lines <= 8}>
      <summary className="small">
        {props.label} ({lines} line{lines === 1 ? '' : 's'})
      </summary>
      <pre className="infra-output">{props.text}</pre>
    </details>
  );
}

type DeployStage = { stage: string; message: string };

/** Deploy button, live per-machine progress (`deploy_progress`) and deploy history. */
export function DeploysView(props: {
  deployment: Deployment;
  socket: ProjectSocket | null;
  readOnly: string | null;
}) {
  const d = props.deployment;
  const { notify } = useApp();
  const $api = useApiQueries();
  const queryClient = useQueryClient();
  const deploys = useDeploys(d.id);
  const start = $api.useMutation('post', '/api/infrastructure/{deploymentId}/deploy');
  const [live, setLive] = useState<{ deployId: string; stages: Map<string, DeployStage> } | null>(
    null,
  );
  useEffect(() => {
    if (!props.socket) return;
    return props.socket.on((e) => {
      if (e.type !== 'deploy_progress' || e.data.deploymentId !== d.id) return;
      const data: ProjectEventData<'deploy_progress'> = e.data;
      if ('machine' in data) {
        setLive((old) => {
          const stages = new Map(old?.deployId === data.deployId ? old.stages : []);
          stages.set(data.machine, { stage: data.stage, message: data.message });
          return { deployId: data.deployId, stages };
        });
      } else {
        // The deploys and each machine's app (URL, release) changed.
        void queryClient.invalidateQueries({
          queryKey: ['get', '/api/infrastructure/{deploymentId}/deploys'],
        });
        void queryClient.invalidateQueries({ queryKey: ['get', '/api/infrastructure'] });
      }
    });
  }, [props.socket, d.id, queryClient]);
  const list = deploys.data?.deploys ?? [];
  const running = list.find((x) => x.status === 'running');
  const blocked =
    props.readOnly ??
    (d.status !== 'ready'
      ? `The deployment is ${d.status}`
      : running
        ? 'A deploy is running'
        : d.machines.length === 0
          ? 'No machine'
          : null);

  async function deploy() {
    try {
      const r = await start.mutateAsync({ params: { path: { deploymentId: d.id } } });
      setLive({ deployId: r.deploy.id, stages: new Map() });
      await queryClient.invalidateQueries({
        queryKey: ['get', '/api/infrastructure/{deploymentId}/deploys'],
      });
    } catch (err) {
      notify(`Deploy: ${errorMessage(err)}`, 'error');
    }
  }

  const showLive = running ?? list.find((x) => x.id === live?.deployId);
  return (
    <div className="infra-deploys">
      <div className="row">
        <button
          className="primary"
          disabled={!!blocked || start.isPending}
          title={blocked ?? 'Ship the project’s files to every machine and start them'}
          onClick={() => void deploy()}
        >
          {running || start.isPending ? 'Deploying…' : 'Deploy'}
        </button>
        <span className="muted small">
          {blocked ??
            `Ships the project’s current files to ${d.machines.length} machine${d.machines.length === 1 ? '' : 's'}; a release that does not answer is rolled back.`}
        </span>
      </div>
      {showLive && (
        <div className="infra-results" aria-label="Deploy progress" role="region">
          {d.machines.map((m) => {
            const result = showLive.results.find((r) => r.machine === m.name);
            const stage = live?.deployId === showLive.id ? live.stages.get(m.name) : undefined;
            const status = result?.status ?? 'running';
            return (
              <article
                key={m.name}
                className={`infra-result status-${status}`}
                data-testid={`deploy-${m.name}`}
                data-status={status}
              >
                <header className="row">
                  <strong title={m.name}>{shortName(d, m.name)}</strong>
                  <span
                    className={`infra-run-status tone-${status === 'succeeded' ? 'ok' : status === 'running' ? 'busy' : 'bad'}`}
                  >
                    {status}
                  </span>
                  <div className="spacer" />
                  {result && <span className="muted small">{result.durationMs} ms</span>}
                </header>
                {!result && (
                  <p className="small">
                    {stage ? (
                      <>
                        <strong>{stage.stage}</strong> <code>{stage.message}</code>
                      </>
                    ) : (
                      'uploading…'
                    )}
                  </p>
                )}
                {result?.url && (
                  <p className="small">
                    <a href={result.url} target="_blank" rel="noreferrer">
                      {result.url}
                    </a>
                  </p>
                )}
                {result?.error && <p className="error small">{result.error}</p>}
              </article>
            );
          })}
        </div>
      )}
      <h3 className="infra-subhead">Deploy history</h3>
      {list.length === 0 ? (
        <p className="muted small">No deploy yet.</p>
      ) : (
        <table className="infra-table" aria-label="Deploy history">
          <thead>
            <tr>
              <th scope="col">Release</th>
              <th scope="col">Status</th>
              <th scope="col">Machines</th>
              <th scope="col">Started</th>
            </tr>
          </thead>
          <tbody>
            {list.map((x) => (
              <tr key={x.id}>
                <td>
                  <code>{x.release}</code>
                  <div className="muted small">{x.sha256?.slice(0, 12)}</div>
                </td>
                <td>
                  <span
                    className={`infra-run-status tone-${x.status === 'succeeded' ? 'ok' : x.status === 'running' ? 'busy' : 'bad'}`}
                  >
                    {x.status}
                  </span>
                </td>
                <td className="small">
                  {x.results.map((r) => `${shortName(d, r.machine)}: ${r.status}`).join(', ') ||
                    '—'}
                </td>
                <td className="small">{new Date(x.createdAt).toLocaleString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

/** A shell on one machine (xterm over the machine terminal WebSocket; admins). */
export function MachineTerminal(props: {
  deployment: Deployment;
  machine: string | null;
  onMachine: (m: string) => void;
  readOnly: string | null;
  theme: 'dark' | 'light';
}) {
  const d = props.deployment;
  const machine = props.machine ?? d.machines.find((m) => m.agent === 'online')?.name ?? null;
  const m = d.machines.find((x) => x.name === machine);
  if (props.readOnly) return <p className="muted small pad">{props.readOnly}</p>;
  if (!m) return <p className="muted small pad">No machine to open a shell on.</p>;
  return (
    <div className="infra-terminal">
      <div className="row">
        <label className="inline">
          Shell on
          <select value={m.name} onChange={(e) => props.onMachine(e.target.value)}>
            {d.machines.map((x) => (
              <option key={x.name} value={x.name}>
                {x.name} ({x.agent})
              </option>
            ))}
          </select>
        </label>
      </div>
      <div className="infra-xterm">
        <TerminalView
          key={m.name}
          projectId={d.projectId}
          visible
          up={m.agent === 'online'}
          theme={props.theme}
          path={`/api/infrastructure/${d.id}/machines/${encodeURIComponent(m.name)}/terminal`}
          waiting="The machine’s agent is offline: the shell opens when it connects."
        />
      </div>
    </div>
  );
}
