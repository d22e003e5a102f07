import type { Schemas } from '@vaporform/sdk';
import { useEffect, useMemo, useRef, useState } from 'react';
import {
  isRunning,
  runLog,
  type ChangeSummary,
  type InfraLogEvent,
  type RunView,
} from './infrastructure-runs.ts';

type Run = Schemas['InfrastructureRun'];

function planText(add: number, change: number, destroy: number): string {
  return `${add} to add, ${change} to change, ${destroy} to destroy`;
}

function summaryText(s: ChangeSummary | null): string | null {
  return s && planText(s.add, s.change, s.remove);
}

function duration(from: string | null, to: string | null): string | null {
  if (!from) return null;
  const ms = (to ? Date.parse(to) : Date.now()) - Date.parse(from);
  if (!Number.isFinite(ms) || ms < 0) return null;
  return formatMs(ms);
}

function formatMs(ms: number): string {
  return ms < 60_000
    ? `${Math.round(ms / 1000)} s`
    : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

const STAGES = ['init', 'plan', 'apply'];

/**
 * The current run: a progress bar, the stage, the plan summary, resources as they appear and
 * complete, errors, and the raw log one click away.
 */
export function RunProgress(props: { run: RunView }) {
  const { run } = props;
  const [showLog, setShowLog] = useState(false);
  const log = useRef<HTMLPreElement>(null);
  const active = isRunning(run.status);
  useEffect(() => {
    if (showLog) log.current?.scrollTo({ top: log.current.scrollHeight });
  }, [showLog, run.lines.length]);
  const plan = summaryText(run.plan);
  const stages = run.kind === 'refresh' ? ['init', 'refresh'] : STAGES;
  const reached = run.stage ? stages.indexOf(run.stage) : -1;
  return (
    <div className="infra-card infra-run" data-testid="run-progress" data-status={run.status}>
      <div className="row">
        <strong>
          {run.kind === 'destroy' ? 'Destroy' : run.kind === 'refresh' ? 'Drift check' : 'Apply'}
        </strong>
        <span className={`infra-run-status tone-${toneOf(run.status)}`}>{run.status}</span>
        <ol className="infra-stages" aria-label="Stages">
          {stages.map((s, i) => (
            <li
              key={s}
              className={
                i < reached || (i === reached && !active) ? 'done' : i === reached ? 'current' : ''
              }
            >
              {s}
            </li>
          ))}
        </ol>
        <div className="spacer" />
        <span className="muted small">{duration(run.startedAt, active ? null : run.endedAt)}</span>
        <button className="small-btn" aria-expanded={showLog} onClick={() => setShowLog((v) => !v)}>
          {showLog ? 'Hide raw log' : 'Raw log'}
        </button>
      </div>
      <div
        className={`infra-bar ${active ? 'active' : ''}`}
        role="progressbar"
        aria-label="Run progress"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={run.percent}
      >
        <span style={{ width: `${run.percent}%` }} className={`tone-${toneOf(run.status)}`} />
      </div>
      {plan && (
        <p className="small infra-plan">
          <strong>Plan:</strong> {plan}
          {run.applied && (
            <>
              {' '}
              · <strong>Applied:</strong> {run.applied.add} added, {run.applied.change} changed,{' '}
              {run.applied.remove} destroyed
            </>
          )}
        </p>
      )}
      {run.resources.length > 0 && (
        <ul className="infra-resources" aria-label="Resources">
          {run.resources.map((r) => (
            <li key={r.addr} className={`res-${r.state}`}>
              <span className="res-dot" aria-hidden="true" />
              <code>{r.addr}</code>
              <span className="muted small">
                {r.action}
                {r.state === 'running'
                  ? '…'
                  : r.state === 'done'
                    ? ' ✓'
                    : r.state === 'error'
                      ? ' ✗'
                      : ''}
                {r.elapsed !== undefined ? ` ${r.elapsed}s` : ''}
              </span>
            </li>
          ))}
        </ul>
      )}
      {run.errors.map((e, i) => (
        <p key={i} className="error small" role="alert">
          {e}
        </p>
      ))}
      {showLog && (
        <pre ref={log} className="infra-log" aria-label="Terraform log" tabIndex={0}>
          {run.lines.join('\n') || 'No output yet.'}
        </pre>
      )}
    </div>
  );
}

function toneOf(status: string): string {
  if (status === 'ready' || status === 'destroyed') return 'ok';
  if (status === 'failed' || status === 'canceled') return 'bad';
  return 'busy';
}

/**
 * Every run of the deployment as the server recorded it (`GET …/runs`, newest first): kind,
 * outcome, who started it, the plan, exit code and duration, each with its stored log.
 */
export function RunHistory(props: { runs: Run[]; events: InfraLogEvent[] }) {
  const [open, setOpen] = useState<string | null>(null);
  if (props.runs.length === 0) return <p className="muted small pad">No run yet.</p>;
  return (
    <table className="infra-table" aria-label="Run history">
      <thead>
        <tr>
          <th scope="col">Started</th>
          <th scope="col">Kind</th>
          <th scope="col">Outcome</th>
          <th scope="col">By</th>
          <th scope="col">Plan</th>
          <th scope="col">Exit</th>
          <th scope="col">Duration</th>
          <th scope="col">
            <span className="sr-only">Log</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {props.runs.map((r) => (
          <FragmentRow
            key={r.id}
            run={r}
            events={props.events}
            open={open === r.id}
            onToggle={setOpen}
          />
        ))}
      </tbody>
    </table>
  );
}

function FragmentRow(props: {
  run: Run;
  events: InfraLogEvent[];
  open: boolean;
  onToggle: (id: string | null) => void;
}) {
  const r = props.run;
  const lines = useMemo(
    () => (props.open ? runLog(props.events, r.id) : []),
    [props.open, props.events, r.id],
  );
  const p = r.planSummary;
  return (
    <>
      <tr data-status={r.status}>
        <td>{new Date(r.startedAt).toLocaleString()}</td>
        <td>{r.kind}</td>
        <td>
          <span className={`infra-run-status tone-${toneOf(r.status)}`}>{r.status}</span>
          {r.error && (
            <span className="error small" title={r.error}>
              {' '}
              {r.error.slice(0, 80)}
            </span>
          )}
        </td>
        <td className="small">{r.startedBy?.name ?? '—'}</td>
        <td className="small">{p ? planText(p.add, p.change, p.destroy) : '—'}</td>
        <td className="small">{r.exitCode ?? '—'}</td>
        <td className="small">
          {r.durationMs !== null ? formatMs(r.durationMs) : (duration(r.startedAt, null) ?? '—')}
        </td>
        <td>
          <button
            className="small-btn"
            aria-expanded={props.open}
            onClick={() => props.onToggle(props.open ? null : r.id)}
          >
            {props.open ? 'Hide log' : 'Log'}
          </button>
        </td>
      </tr>
      {props.open && (
        <tr>
          <td colSpan={8}>
            <pre className="infra-log">{lines.join('\n') || 'No output stored.'}</pre>
          </td>
        </tr>
      )}
    </>
  );
}
